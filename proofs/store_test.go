package proofs

import (
	"bytes"
	"crypto/rand"
	"errors"
	"log/slog"
	"reflect"
	"slices"
	"sync"
	"testing"

	"github.com/ipfs/go-cid"
	"github.com/libp2p/go-libp2p/core/crypto"
	"github.com/libp2p/go-libp2p/core/peer"
	"go.uber.org/goleak"

	"github.com/aropeer/aropeer/store"
)

// TestMain checks that closing the store stops pebble's goroutines.
func TestMain(m *testing.M) {
	goleak.VerifyTestMain(m)
}

func openDB(t testing.TB, dir string) *store.DB {
	t.Helper()
	db, err := store.Open(dir, store.WithLogger(slog.New(slog.DiscardHandler)))
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() {
		if err := db.Close(); err != nil {
			t.Errorf("Close: %v", err)
		}
	})
	return db
}

// fleet is a few keepers and edges that seal receipts.
type fleet struct {
	keepers []crypto.PrivKey
	edges   []peer.ID
}

func newFleet(t testing.TB, keepers, edges int) fleet {
	var f fleet
	for i := range keepers {
		f.keepers = append(f.keepers, testKey(t, byte(10+i)))
	}
	for i := range edges {
		f.edges = append(f.edges, testID(t, testKey(t, byte(100+i))))
	}
	return f
}

// receipt seals a receipt of keeper k on edge e.
func (f fleet) receipt(t testing.TB, k, e int, epoch, round uint64, kind Kind, result Result) ([]byte, cid.Cid, Receipt) {
	t.Helper()
	c := Challenge{
		Network: "devnet", Epoch: epoch, Round: round,
		Keeper: testID(t, f.keepers[k]), Edge: f.edges[e], Kind: kind,
		Seed: bytes.Repeat([]byte{byte(round)}, SeedSize),
	}
	chID, err := c.ID()
	if err != nil {
		t.Fatal(err)
	}
	r := Receipt{
		Network: c.Network, Epoch: epoch, Round: round, Keeper: c.Keeper, Edge: c.Edge,
		Kind: kind, Challenge: chID, Result: result,
		Measurements: map[string]int64{"rtt_ms": int64(round)},
	}
	if result != Pass {
		r.Reason = "no answer"
	}
	env, id, err := SealReceipt(f.keepers[k], r)
	if err != nil {
		t.Fatal(err)
	}
	return env, id, r
}

func TestStorePutGet(t *testing.T) {
	s := NewReceiptStore(openDB(t, t.TempDir()))
	f := newFleet(t, 1, 1)
	env, id, want := f.receipt(t, 0, 0, 3, 301, KindLiveness, Pass)

	if _, _, err := s.Get(id); !errors.Is(err, store.ErrNotFound) {
		t.Fatalf("Get before Put: %v, want ErrNotFound", err)
	}
	r, gotID, isNew, err := s.Put(env)
	if err != nil || !isNew || gotID != id || !reflect.DeepEqual(r, want) {
		t.Fatalf("Put = %v, %s, %v, %v; want the receipt, %s, new", r, gotID, isNew, err, id)
	}
	r, gotEnv, err := s.Get(id)
	if err != nil || !reflect.DeepEqual(r, want) || !bytes.Equal(gotEnv, env) {
		t.Fatalf("Get = %+v, %v; want the receipt and its envelope", r, err)
	}
	if has, err := s.Has(id); !has || err != nil {
		t.Fatalf("Has = %v, %v", has, err)
	}

	// Idempotent: the second Put is not new and writes nothing.
	before := countKeys(t, s)
	if _, _, isNew, err := s.Put(env); err != nil || isNew {
		t.Fatalf("second Put: new=%v, %v; want not new", isNew, err)
	}
	if after := countKeys(t, s); after != before || before != 3 {
		t.Fatalf("keys before/after second Put: %d/%d; want 3/3", before, after)
	}

	// A bad envelope is refused and not stored.
	bad := bytes.Clone(env)
	bad[len(bad)-1] ^= 1
	if _, _, _, err := s.Put(bad); err == nil {
		t.Fatal("Put of a bad envelope succeeded")
	}
	if after := countKeys(t, s); after != before {
		t.Fatalf("a refused Put wrote %d keys", after-before)
	}
}

func countKeys(t testing.TB, s *ReceiptStore) int {
	t.Helper()
	n := 0
	if err := s.ns.Iterate(nil, func(_, _ []byte) error { n++; return nil }); err != nil {
		t.Fatal(err)
	}
	return n
}

func TestStoreConcurrentPutsOneNew(t *testing.T) {
	s := NewReceiptStore(openDB(t, t.TempDir()))
	f := newFleet(t, 1, 1)
	env, _, _ := f.receipt(t, 0, 0, 1, 101, KindLiveness, Pass)
	var wg sync.WaitGroup
	var mu sync.Mutex
	news := 0
	for range 8 {
		wg.Go(func() {
			_, _, isNew, err := s.Put(env)
			if err != nil {
				t.Error(err)
			}
			if isNew {
				mu.Lock()
				news++
				mu.Unlock()
			}
		})
	}
	wg.Wait()
	if news != 1 {
		t.Fatalf("%d concurrent Puts of one receipt reported new; want 1", news)
	}
}

// TestStoreOtherSignature stores a receipt signed twice by its keeper with
// a randomized signature scheme (ECDSA): one CID, two envelopes. The
// second is checked, not new, and the first copy stays.
func TestStoreOtherSignature(t *testing.T) {
	s := NewReceiptStore(openDB(t, t.TempDir()))
	key, _, err := crypto.GenerateECDSAKeyPair(rand.Reader)
	if err != nil {
		t.Fatal(err)
	}
	r := testReceipt(t)
	r.Keeper = testID(t, key)
	env1, id1, err := SealReceipt(key, r)
	if err != nil {
		t.Fatal(err)
	}
	env2, id2, err := SealReceipt(key, r)
	if err != nil {
		t.Fatal(err)
	}
	if id1 != id2 || bytes.Equal(env1, env2) {
		t.Fatal("want two envelopes of one receipt")
	}
	if _, _, isNew, err := s.Put(env1); err != nil || !isNew {
		t.Fatalf("first Put: new=%v, %v", isNew, err)
	}
	got, _, isNew, err := s.Put(env2)
	if err != nil || isNew || !reflect.DeepEqual(got, r) {
		t.Fatalf("second signature: new=%v, %v", isNew, err)
	}
	if _, env, err := s.Get(id1); err != nil || !bytes.Equal(env, env1) {
		t.Fatalf("Get = %v; want the first envelope", err)
	}
	// A third envelope with a broken signature is refused, not taken for
	// the stored receipt.
	bad := bytes.Clone(env2)
	bad[len(bad)-1] ^= 1
	if _, _, _, err := s.Put(bad); err == nil {
		t.Fatal("Put of a stored receipt under a bad signature succeeded")
	}
}

// TestStoreDurable reopens the store after Close and finds every receipt
// and index entry.
func TestStoreDurable(t *testing.T) {
	dir := t.TempDir()
	f := newFleet(t, 2, 2)
	var envs [][]byte
	var ids []cid.Cid
	for i := range 6 {
		env, id, _ := f.receipt(t, i%2, i/3, 5, uint64(500+i), KindLiveness, Pass)
		envs, ids = append(envs, env), append(ids, id)
	}
	db, err := store.Open(dir, store.WithLogger(slog.New(slog.DiscardHandler)))
	if err != nil {
		t.Fatal(err)
	}
	s := NewReceiptStore(db)
	if _, _, _, err := s.Put(envs[0]); err != nil {
		t.Fatal(err)
	}
	if n, err := s.PutBatch(envs[1:]); err != nil || n != 5 {
		t.Fatalf("PutBatch = %d, %v", n, err)
	}
	if err := db.Close(); err != nil {
		t.Fatal(err)
	}

	s = NewReceiptStore(openDB(t, dir))
	for i, id := range ids {
		if _, env, err := s.Get(id); err != nil || !bytes.Equal(env, envs[i]) {
			t.Errorf("after reopen, Get(%s) = %v", id, err)
		}
	}
	got, err := s.CIDs(5, "")
	if err != nil || len(got) != len(ids) {
		t.Fatalf("after reopen, CIDs = %d, %v; want %d", len(got), err, len(ids))
	}
}

func TestStorePutBatch(t *testing.T) {
	s := NewReceiptStore(openDB(t, t.TempDir()))
	f := newFleet(t, 2, 2)
	a, idA, _ := f.receipt(t, 0, 0, 1, 101, KindLiveness, Pass)
	b, idB, _ := f.receipt(t, 1, 1, 1, 102, KindStorage, Fail)
	c, idC, _ := f.receipt(t, 0, 1, 1, 103, KindBandwidth, Timeout)
	if _, _, _, err := s.Put(a); err != nil {
		t.Fatal(err)
	}
	bad := bytes.Clone(c)
	bad[len(bad)-1] ^= 1

	// a is stored already, b comes twice, bad does not open: b and c are
	// added, and the error names the bad one.
	added, err := s.PutBatch([][]byte{a, b, bad, b, c})
	if added != 2 {
		t.Fatalf("PutBatch added %d, want 2", added)
	}
	if err == nil || !bytes.Contains([]byte(err.Error()), []byte("receipt 2 of 5")) {
		t.Fatalf("PutBatch err = %v, want one naming receipt 2", err)
	}
	for _, id := range []cid.Cid{idA, idB, idC} {
		if _, _, err := s.Get(id); err != nil {
			t.Errorf("Get(%s): %v", id, err)
		}
	}
	if n := countKeys(t, s); n != 9 {
		t.Fatalf("%d keys for 3 receipts, want 9", n)
	}
	if added, err := s.PutBatch([][]byte{a, b, c}); added != 0 || err != nil {
		t.Fatalf("PutBatch of stored receipts = %d, %v; want 0, nil", added, err)
	}
	if added, err := s.PutBatch(nil); added != 0 || err != nil {
		t.Fatalf("PutBatch(nil) = %d, %v", added, err)
	}
}

// listed is what List gave, in order.
type listed struct {
	id cid.Cid
	r  Receipt
}

func TestStoreList(t *testing.T) {
	s := NewReceiptStore(openDB(t, t.TempDir()))
	f := newFleet(t, 2, 3)
	var all []listed
	var envs [][]byte
	round := uint64(100)
	for epoch := uint64(1); epoch <= 3; epoch++ {
		for e := range f.edges {
			for ki, kind := range Kinds() {
				for k := range f.keepers {
					round++
					env, id, r := f.receipt(t, k, e, epoch, round, kind, []Result{Pass, Fail}[(e+ki)%2])
					envs = append(envs, env)
					all = append(all, listed{id, r})
				}
			}
		}
	}
	// Store in reverse, to show List orders by key, not by arrival.
	slices.Reverse(envs)
	if n, err := s.PutBatch(envs); err != nil || n != len(all) {
		t.Fatalf("PutBatch = %d, %v", n, err)
	}
	// The expected order: (epoch, edge bytes, kind bytes, CID bytes).
	slices.SortFunc(all, func(a, b listed) int {
		switch {
		case a.r.Epoch != b.r.Epoch:
			return int(a.r.Epoch) - int(b.r.Epoch)
		case a.r.Edge != b.r.Edge:
			return bytes.Compare([]byte(a.r.Edge), []byte(b.r.Edge))
		case a.r.Kind != b.r.Kind:
			return bytes.Compare([]byte(a.r.Kind), []byte(b.r.Kind))
		}
		return bytes.Compare(a.id.Bytes(), b.id.Bytes())
	})
	two := uint64(2)
	nine := uint64(9)
	keeper1 := testID(t, f.keepers[1])
	tests := []struct {
		name string
		f    Filter
		keep func(Receipt) bool
	}{
		{"all", Filter{}, func(Receipt) bool { return true }},
		{"epoch", Filter{Epoch: &two}, func(r Receipt) bool { return r.Epoch == 2 }},
		{"empty epoch", Filter{Epoch: &nine}, func(r Receipt) bool { return false }},
		{"edge", Filter{Edge: f.edges[1]}, func(r Receipt) bool { return r.Edge == f.edges[1] }},
		{"kind", Filter{Kind: KindCompute}, func(r Receipt) bool { return r.Kind == KindCompute }},
		{"keeper", Filter{Keeper: keeper1}, func(r Receipt) bool { return r.Keeper == keeper1 }},
		{"epoch and edge", Filter{Epoch: &two, Edge: f.edges[2]}, func(r Receipt) bool { return r.Epoch == 2 && r.Edge == f.edges[2] }},
		{"epoch, edge and kind", Filter{Epoch: &two, Edge: f.edges[0], Kind: KindStorage}, func(r Receipt) bool {
			return r.Epoch == 2 && r.Edge == f.edges[0] && r.Kind == KindStorage
		}},
		{"epoch and kind", Filter{Epoch: &two, Kind: KindLiveness}, func(r Receipt) bool { return r.Epoch == 2 && r.Kind == KindLiveness }},
		{"edge and kind", Filter{Edge: f.edges[0], Kind: KindBandwidth}, func(r Receipt) bool { return r.Edge == f.edges[0] && r.Kind == KindBandwidth }},
		{"edge and keeper", Filter{Edge: f.edges[2], Keeper: keeper1}, func(r Receipt) bool { return r.Edge == f.edges[2] && r.Keeper == keeper1 }},
		{"unknown edge", Filter{Edge: testID(t, testKey(t, 99))}, func(r Receipt) bool { return false }},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			var want []listed
			for _, l := range all {
				if tt.keep(l.r) {
					want = append(want, l)
				}
			}
			if got := list(t, s, tt.f); !equalListed(got, want) {
				t.Fatalf("List gave %d receipts, want %d in (epoch, edge, kind, cid) order", len(got), len(want))
			}
			if len(want) < 3 {
				return
			}
			tt.f.Limit = 3
			if got := list(t, s, tt.f); !equalListed(got, want[:3]) {
				t.Fatalf("List with Limit 3 gave %d receipts, want the first 3", len(got))
			}
		})
	}

	// fn's errors end the listing: ErrStop quietly, others returned.
	n := 0
	if err := s.List(Filter{}, func(cid.Cid, Receipt) error { n++; return store.ErrStop }); err != nil || n != 1 {
		t.Fatalf("List stopped by fn: %d calls, %v", n, err)
	}
	boom := errors.New("boom")
	if err := s.List(Filter{}, func(cid.Cid, Receipt) error { return boom }); !errors.Is(err, boom) {
		t.Fatalf("List = %v, want fn's error", err)
	}
}

func list(t testing.TB, s *ReceiptStore, f Filter) []listed {
	t.Helper()
	var got []listed
	if err := s.List(f, func(id cid.Cid, r Receipt) error {
		got = append(got, listed{id, r})
		return nil
	}); err != nil {
		t.Fatal(err)
	}
	return got
}

func equalListed(a, b []listed) bool {
	return slices.EqualFunc(a, b, func(x, y listed) bool { return x.id == y.id && reflect.DeepEqual(x.r, y.r) })
}

// TestStoreCIDs: CIDs gives an epoch's receipts, or one edge's of them,
// sorted by their bytes, and no other epoch's or edge's.
func TestStoreCIDs(t *testing.T) {
	s := NewReceiptStore(openDB(t, t.TempDir()))
	f := newFleet(t, 2, 4)
	type of struct {
		epoch uint64
		edge  peer.ID // "" for the whole epoch
	}
	want := map[of][]cid.Cid{}
	var envs [][]byte
	for i := range 40 {
		epoch := uint64(i % 3)
		env, id, _ := f.receipt(t, i%2, i%4, epoch, uint64(1000+i), Kinds()[i%4], Pass)
		envs = append(envs, env)
		want[of{epoch, ""}] = append(want[of{epoch, ""}], id)
		want[of{epoch, f.edges[i%4]}] = append(want[of{epoch, f.edges[i%4]}], id)
	}
	if _, err := s.PutBatch(envs); err != nil {
		t.Fatal(err)
	}
	for epoch := range uint64(4) {
		for _, edge := range append([]peer.ID{""}, f.edges...) {
			got, err := s.CIDs(epoch, edge)
			if err != nil {
				t.Fatal(err)
			}
			if !slices.IsSortedFunc(got, func(a, b cid.Cid) int { return bytes.Compare(a.Bytes(), b.Bytes()) }) {
				t.Errorf("CIDs(%d, %q) not sorted by bytes", epoch, edge)
			}
			w := slices.Clone(want[of{epoch, edge}])
			slices.SortFunc(w, func(a, b cid.Cid) int { return bytes.Compare(a.Bytes(), b.Bytes()) })
			if !slices.Equal(got, w) {
				t.Errorf("CIDs(%d, %q) = %d CIDs, want %d", epoch, edge, len(got), len(w))
			}
		}
	}
}

// TestEscapedOrder checks that escaped strings keep their order and parse
// back, including strings with zero bytes, as peer IDs have.
func TestEscapedOrder(t *testing.T) {
	strs := []string{"", "\x00", "\x00\x00", "\x00\x01", "\x00\xff", "\x01", "a", "a\x00", "a\x00b", "ab", "\xff", "\xff\x00"}
	for i, a := range strs {
		ea := appendEscaped(nil, a)
		got, rest, err := readEscaped(append(ea, 'x'))
		if err != nil || got != a || string(rest) != "x" {
			t.Errorf("readEscaped(escape(%q)) = %q, %q, %v", a, got, rest, err)
		}
		for _, b := range strs[i+1:] {
			if bytes.Compare(ea, appendEscaped(nil, b)) >= 0 {
				t.Errorf("escape(%q) >= escape(%q)", a, b)
			}
		}
	}
	for _, bad := range []string{"", "a", "a\x00", "a\x00\x02"} {
		if _, _, err := readEscaped([]byte(bad)); err == nil {
			t.Errorf("readEscaped(%q) succeeded", bad)
		}
	}
}
