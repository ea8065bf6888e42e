package pieces

import (
	"bytes"
	"context"
	"errors"
	"io"
	"log/slog"
	"math/rand/v2"
	"os"
	"path/filepath"
	"sync"
	"testing"
	"time"

	"github.com/ipfs/go-cid"
	"go.uber.org/goleak"

	"github.com/aropeer/aropeer/storage"
	"github.com/aropeer/aropeer/store"
)

func TestMain(m *testing.M) {
	goleak.VerifyTestMain(m)
}

var quiet = slog.New(slog.DiscardHandler)

// fixture is a store in a temporary data directory that a test can close
// and reopen.
type fixture struct {
	t    *testing.T
	base string
	db   *store.DB
	s    *Store
}

func newFixture(t *testing.T) *fixture {
	f := &fixture{t: t, base: t.TempDir()}
	f.open()
	t.Cleanup(func() { _ = f.db.Close() })
	return f
}

var epoch = time.Date(2026, 1, 2, 3, 4, 5, 6, time.UTC)

func (f *fixture) open() {
	f.t.Helper()
	db, err := store.Open(filepath.Join(f.base, "db"), store.WithLogger(quiet))
	if err != nil {
		f.t.Fatal(err)
	}
	s, err := Open(db, filepath.Join(f.base, "pieces"), WithLogger(quiet), WithClock(func() time.Time { return epoch }))
	if err != nil {
		f.t.Fatal(err)
	}
	f.db, f.s = db, s
}

func (f *fixture) reopen() {
	f.t.Helper()
	if err := f.db.Close(); err != nil {
		f.t.Fatal(err)
	}
	f.open()
}

func (f *fixture) files() []string {
	f.t.Helper()
	entries, err := os.ReadDir(f.s.dir)
	if err != nil {
		f.t.Fatal(err)
	}
	var names []string
	for _, e := range entries {
		names = append(names, e.Name())
	}
	return names
}

func payload(seed byte, n int) []byte {
	b := make([]byte, n)
	rand.NewChaCha8([32]byte{seed}).Read(b)
	return b
}

func commitCID(t *testing.T, data []byte) cid.Cid {
	t.Helper()
	tree, err := storage.Commit(bytes.NewReader(data), int64(len(data)), 1, nil)
	if err != nil {
		t.Fatal(err)
	}
	return tree.CID()
}

func TestAddListGetRemove(t *testing.T) {
	f := newFixture(t)
	ctx := context.Background()
	a := payload(1, 3<<20+77)
	b := payload(2, 5000)
	path := filepath.Join(t.TempDir(), "b.bin")
	if err := os.WriteFile(path, b, 0o600); err != nil {
		t.Fatal(err)
	}

	var last, total int64
	pa, err := f.s.Add(ctx, bytes.NewReader(a), int64(len(a)), "a", func(done, tot int64) { last, total = done, tot })
	if err != nil {
		t.Fatal(err)
	}
	if last != int64(len(a)) || total != int64(len(a)) {
		t.Fatalf("progress ended at %d of %d, want %d", last, total, len(a))
	}
	pb, err := f.s.AddFile(ctx, path, nil)
	if err != nil {
		t.Fatal(err)
	}
	if !pa.CID.Equals(commitCID(t, a)) || !pb.CID.Equals(commitCID(t, b)) {
		t.Fatal("piece CIDs differ from storage.Commit's")
	}
	if pb.Name != "b.bin" || pb.Payload != 5000 || pb.Padded != 8192 || !pb.Added.Equal(epoch) {
		t.Fatalf("AddFile: %+v", pb)
	}
	got, err := os.ReadFile(f.s.Path(pa.CID))
	if err != nil || !bytes.Equal(got, a) {
		t.Fatalf("data file of a: %d bytes, %v", len(got), err)
	}

	list, err := f.s.List()
	if err != nil {
		t.Fatal(err)
	}
	if len(list) != 2 || list[0].CID.String() > list[1].CID.String() {
		t.Fatalf("List: %v", list)
	}
	g, err := f.s.Get(pa.CID)
	if err != nil || g.Name != "a" || g.Payload != pa.Payload || g.Padded != pa.Padded || !g.Added.Equal(epoch) {
		t.Fatalf("Get: %+v, %v", g, err)
	}

	// Adding a piece already held returns it.
	again, err := f.s.Add(ctx, bytes.NewReader(a), int64(len(a)), "other name", nil)
	if err != nil || again.Name != "a" {
		t.Fatalf("second Add: %+v, %v", again, err)
	}

	if err := f.s.Remove(pa.CID); err != nil {
		t.Fatal(err)
	}
	if _, err := f.s.Get(pa.CID); !errors.Is(err, store.ErrNotFound) {
		t.Fatalf("Get after Remove: %v", err)
	}
	if err := f.s.Remove(pa.CID); !errors.Is(err, store.ErrNotFound) {
		t.Fatalf("second Remove: %v", err)
	}
	if _, err := f.s.Prove(pa.CID, 0); !errors.Is(err, store.ErrNotFound) {
		t.Fatalf("Prove after Remove: %v", err)
	}
	if list, _ := f.s.List(); len(list) != 1 || !list[0].CID.Equals(pb.CID) {
		t.Fatalf("List after Remove: %v", list)
	}
	if files := f.files(); len(files) != 2 {
		t.Fatalf("files after Remove: %v, want b's data and tree", files)
	}
}

func TestReopenKeepsPieces(t *testing.T) {
	f := newFixture(t)
	data := payload(3, 1<<20)
	p, err := f.s.Add(context.Background(), bytes.NewReader(data), int64(len(data)), "x", nil)
	if err != nil {
		t.Fatal(err)
	}
	f.reopen()
	got, err := f.s.Get(p.CID)
	if err != nil || got.Payload != p.Payload {
		t.Fatalf("Get after reopen: %+v, %v", got, err)
	}
	root, _ := storage.RootOf(p.CID)
	indices := []uint64{0, 1000, p.Padded/storage.LeafSize - 1, 1000}
	for _, i := range indices {
		proof, err := f.s.Prove(p.CID, i)
		if err != nil {
			t.Fatal(err)
		}
		if err := storage.Verify(root, p.Padded, proof); err != nil {
			t.Fatal(err)
		}
	}
	// Several leaves at once: each proves its own, in the order asked.
	proofs, err := f.s.ProveLeaves(p.CID, indices)
	if err != nil || len(proofs) != len(indices) {
		t.Fatalf("ProveLeaves = %d proofs, %v", len(proofs), err)
	}
	for i, proof := range proofs {
		if proof.Index != indices[i] || storage.Verify(root, p.Padded, proof) != nil {
			t.Errorf("ProveLeaves proof %d is of leaf %d, want a valid proof of %d", i, proof.Index, indices[i])
		}
	}
	if ok, err := f.s.Verify(context.Background(), p.CID, nil); !ok || err != nil {
		t.Fatalf("Verify after reopen: %v, %v", ok, err)
	}
}

// TestDamagedData overwrites 4 KiB in the middle of a data file: Verify
// reports it, proofs of the damaged region fail, others still pass.
func TestDamagedData(t *testing.T) {
	f := newFixture(t)
	data := payload(4, 2<<20)
	p, err := f.s.Add(context.Background(), bytes.NewReader(data), int64(len(data)), "x", nil)
	if err != nil {
		t.Fatal(err)
	}
	if ok, err := f.s.Verify(context.Background(), p.CID, nil); !ok || err != nil {
		t.Fatalf("Verify of intact data: %v, %v", ok, err)
	}
	const at = 1 << 20
	file, err := os.OpenFile(f.s.Path(p.CID), os.O_WRONLY, 0)
	if err != nil {
		t.Fatal(err)
	}
	if _, err := file.WriteAt(bytes.Repeat([]byte{0xee}, 4096), at); err != nil {
		t.Fatal(err)
	}
	file.Close()

	ok, err := f.s.Verify(context.Background(), p.CID, nil)
	if ok || err != nil {
		t.Fatalf("Verify of damaged data: ok=%v err=%v; want not ok, no error", ok, err)
	}
	root, _ := storage.RootOf(p.CID)
	damagedLeaf := uint64(at+2048) * 8 / 254
	for i, wantOK := range map[uint64]bool{damagedLeaf: false, 0: true, damagedLeaf + 4096: true} {
		proof, err := f.s.Prove(p.CID, i)
		if err != nil {
			t.Fatal(err)
		}
		if err := storage.Verify(root, p.Padded, proof); (err == nil) != wantOK {
			t.Errorf("leaf %d: Verify = %v, want ok=%v", i, err, wantOK)
		}
	}

	// A data file cut short is damaged too.
	if err := os.Truncate(f.s.Path(p.CID), at); err != nil {
		t.Fatal(err)
	}
	if ok, err := f.s.Verify(context.Background(), p.CID, nil); ok || err != nil {
		t.Fatalf("Verify of truncated data: ok=%v err=%v", ok, err)
	}
	if err := os.Remove(f.s.Path(p.CID)); err != nil {
		t.Fatal(err)
	}
	if ok, err := f.s.Verify(context.Background(), p.CID, nil); ok || err != nil {
		t.Fatalf("Verify of missing data: ok=%v err=%v", ok, err)
	}
}

// TestDamagedTreeFile: a bad tree file fails proofs until Verify, finding
// the data intact, rewrites it.
func TestDamagedTreeFile(t *testing.T) {
	f := newFixture(t)
	data := payload(5, 300000)
	p, err := f.s.Add(context.Background(), bytes.NewReader(data), int64(len(data)), "x", nil)
	if err != nil {
		t.Fatal(err)
	}
	f.reopen() // empties the tree cache
	tp := f.s.treePath(p.CID)
	b, _ := os.ReadFile(tp)
	b[len(b)/2] ^= 1
	if err := os.WriteFile(tp, b, 0o600); err != nil {
		t.Fatal(err)
	}
	if _, err := f.s.Prove(p.CID, 5); !errors.Is(err, storage.ErrBadTree) {
		t.Fatalf("Prove with a damaged tree file: %v", err)
	}
	if ok, err := f.s.Verify(context.Background(), p.CID, nil); !ok || err != nil {
		t.Fatalf("Verify: %v, %v", ok, err)
	}
	f.reopen()
	if _, err := f.s.Prove(p.CID, 5); err != nil {
		t.Fatalf("Prove after Verify rewrote the tree: %v", err)
	}
}

func TestConcurrentAddOfSameData(t *testing.T) {
	f := newFixture(t)
	data := payload(6, 3<<20)
	want := commitCID(t, data)
	var wg sync.WaitGroup
	errs := make([]error, 6)
	for i := range errs {
		wg.Go(func() {
			p, err := f.s.Add(context.Background(), bytes.NewReader(data), int64(len(data)), "same", nil)
			if err == nil && !p.CID.Equals(want) {
				err = errors.New("wrong CID " + p.CID.String())
			}
			errs[i] = err
		})
	}
	wg.Wait()
	if err := errors.Join(errs...); err != nil {
		t.Fatal(err)
	}
	list, err := f.s.List()
	if err != nil || len(list) != 1 {
		t.Fatalf("List: %v, %v", list, err)
	}
	if files := f.files(); len(files) != 2 {
		t.Fatalf("files: %v, want one data and one tree file", files)
	}
	if got, _ := os.ReadFile(f.s.Path(want)); !bytes.Equal(got, data) {
		t.Fatal("data file differs from the data added")
	}
}

func TestCancelledAddLeavesNothing(t *testing.T) {
	f := newFixture(t)
	ctx, cancel := context.WithCancel(context.Background())
	defer cancel()
	const size = 8 << 20
	_, err := f.s.Add(ctx, io.LimitReader(endless{}, size), size, "x", func(done, _ int64) {
		if done >= 2<<20 {
			cancel()
		}
	})
	if !errors.Is(err, context.Canceled) {
		t.Fatalf("Add: %v, want context.Canceled", err)
	}
	if files := f.files(); len(files) != 0 {
		t.Fatalf("files after a cancelled Add: %v", files)
	}
	if list, _ := f.s.List(); len(list) != 0 {
		t.Fatalf("pieces after a cancelled Add: %v", list)
	}
}

type endless struct{}

func (endless) Read(p []byte) (int, error) {
	for i := range p {
		p[i] = byte(i)
	}
	return len(p), nil
}

func TestAddRefuses(t *testing.T) {
	f := newFixture(t)
	ctx := context.Background()
	if _, err := f.s.Add(ctx, bytes.NewReader(make([]byte, 64)), 64, "tiny", nil); !errors.Is(err, storage.ErrPayloadSize) {
		t.Fatalf("Add of 64 bytes: %v", err)
	}
	if _, err := f.s.Add(ctx, endless{}, storage.MaxPayload+1, "huge", nil); !errors.Is(err, storage.ErrPayloadSize) {
		t.Fatalf("Add over MaxPayload: %v", err)
	}
	db, s := f.db, f.s
	capped, err := Open(db, s.dir, WithLogger(quiet), WithMaxPayload(1000))
	if err != nil {
		t.Fatal(err)
	}
	if _, err := capped.Add(ctx, endless{}, 1001, "over cap", nil); !errors.Is(err, storage.ErrPayloadSize) {
		t.Fatalf("Add over the store's cap: %v", err)
	}
	if _, err := f.s.Add(ctx, bytes.NewReader(make([]byte, 500)), 1000, "short", nil); !errors.Is(err, io.ErrUnexpectedEOF) {
		t.Fatalf("Add of a short source: %v", err)
	}
	if files := f.files(); len(files) != 0 {
		t.Fatalf("files after refused adds: %v", files)
	}
}

// TestOpenCleansUp: what a crash can leave (temporary files, files of a
// piece whose record was never committed) is removed by Open.
func TestOpenCleansUp(t *testing.T) {
	f := newFixture(t)
	data := payload(7, 10000)
	p, err := f.s.Add(context.Background(), bytes.NewReader(data), int64(len(data)), "kept", nil)
	if err != nil {
		t.Fatal(err)
	}
	orphan := commitCID(t, payload(8, 10000))
	for _, name := range []string{"add-123.tmp", "tree-9.tmp", orphan.String() + ".data", orphan.String() + ".tree"} {
		if err := os.WriteFile(filepath.Join(f.s.dir, name), []byte("partial"), 0o600); err != nil {
			t.Fatal(err)
		}
	}
	if err := os.WriteFile(filepath.Join(f.s.dir, "README"), nil, 0o600); err != nil {
		t.Fatal(err)
	}
	f.reopen()
	want := map[string]bool{p.CID.String() + ".data": true, p.CID.String() + ".tree": true, "README": true}
	files := f.files()
	if len(files) != len(want) {
		t.Fatalf("files after Open: %v", files)
	}
	for _, name := range files {
		if !want[name] {
			t.Fatalf("files after Open: %v", files)
		}
	}
}

func TestTreeCacheBound(t *testing.T) {
	c := newTreeCache(3 * 2048) // three trees of 64 KiB padded
	var ids []cid.Cid
	for i := range 4 {
		tree, err := storage.Commit(bytes.NewReader(payload(byte(i), 60000)), 60000, 1, nil)
		if err != nil {
			t.Fatal(err)
		}
		if treeMemory(tree) != 2048 {
			t.Fatalf("tree memory %d", treeMemory(tree))
		}
		ids = append(ids, tree.CID())
		c.put(tree.CID(), tree)
		if i == 2 {
			c.get(ids[0]) // now the most recent: ids[1] goes next
		}
	}
	if c.get(ids[1]) != nil || c.get(ids[0]) == nil || c.get(ids[3]) == nil || c.used != 3*2048 {
		t.Fatalf("cache holds the wrong trees (%d bytes used)", c.used)
	}
}
