package store_test

import (
	"bytes"
	"errors"
	"fmt"
	"io/fs"
	"log/slog"
	"os"
	"path/filepath"
	"slices"
	"testing"

	"go.uber.org/goleak"

	"github.com/aropeer/aropeer/store"
)

// TestMain checks that Close stops every goroutine pebble started.
func TestMain(m *testing.M) {
	goleak.VerifyTestMain(m)
}

func open(t testing.TB, dir string) *store.DB {
	t.Helper()
	db, err := store.Open(dir, store.WithLogger(slog.New(slog.DiscardHandler)))
	if err != nil {
		t.Fatalf("Open: %v", err)
	}
	t.Cleanup(func() {
		if err := db.Close(); err != nil {
			t.Errorf("Close: %v", err)
		}
	})
	return db
}

func commit(t testing.TB, b *store.Batch) {
	t.Helper()
	if err := b.Commit(); err != nil {
		t.Fatalf("Commit: %v", err)
	}
}

func TestRoundTrip(t *testing.T) {
	db := open(t, t.TempDir())
	ns := db.Namespace("receipts")

	val := []byte("value")
	b := ns.Batch()
	b.Set([]byte("k"), val)
	b.Set([]byte("empty"), nil)
	val[0] = 'X' // Set copies: the stored value must not change
	commit(t, b)

	got, err := ns.Get([]byte("k"))
	if err != nil || string(got) != "value" {
		t.Fatalf("Get(k) = %q, %v; want %q", got, err, "value")
	}
	got[0] = 'Y' // Get returns a copy: the store must not change
	if again, _ := ns.Get([]byte("k")); string(again) != "value" {
		t.Fatalf("Get after mutating a result = %q; want %q", again, "value")
	}
	if got, err := ns.Get([]byte("empty")); err != nil || len(got) != 0 {
		t.Fatalf("Get(empty) = %q, %v; want empty value", got, err)
	}

	for key, want := range map[string]bool{"k": true, "empty": true, "absent": false} {
		if has, err := ns.Has([]byte(key)); err != nil || has != want {
			t.Errorf("Has(%q) = %v, %v; want %v", key, has, err, want)
		}
	}

	b = ns.Batch()
	b.Delete([]byte("k"))
	b.Delete([]byte("never-set"))
	commit(t, b)
	if _, err := ns.Get([]byte("k")); !errors.Is(err, store.ErrNotFound) {
		t.Fatalf("Get after Delete: err = %v; want ErrNotFound", err)
	}
}

func TestNotFound(t *testing.T) {
	db := open(t, t.TempDir())
	_, err := db.Namespace("x").Get([]byte("missing"))
	if !errors.Is(err, store.ErrNotFound) {
		t.Fatalf("Get(missing): err = %v; want ErrNotFound", err)
	}
}

func TestNamespacesIsolated(t *testing.T) {
	db := open(t, t.TempDir())
	// "a" with key "b..." and "ab" with key "..." would collide under a
	// naive concatenation of name and key.
	names := []string{"a", "ab", "b", ""}
	b := db.Namespace(names[0]).Batch()
	for _, name := range names {
		b.In(db.Namespace(name)).Set([]byte("key"), []byte(name))
	}
	b.Set([]byte("bkey"), []byte("a/bkey"))
	commit(t, b)

	for _, name := range names {
		ns := db.Namespace(name)
		got, err := ns.Get([]byte("key"))
		if err != nil || string(got) != name {
			t.Errorf("namespace %q: Get(key) = %q, %v; want %q", name, got, err, name)
		}
		var keys []string
		if err := ns.Iterate(nil, func(k, _ []byte) error {
			keys = append(keys, string(k))
			return nil
		}); err != nil {
			t.Fatal(err)
		}
		want := "[key]"
		if name == "a" {
			want = "[bkey key]"
		}
		if fmt.Sprint(keys) != want {
			t.Errorf("namespace %q holds %v; want %s", name, keys, want)
		}
	}
	if _, err := db.Namespace("ab").Get([]byte("bkey")); !errors.Is(err, store.ErrNotFound) {
		t.Errorf("namespace ab sees namespace a's key: err = %v", err)
	}
}

func TestIterate(t *testing.T) {
	db := open(t, t.TempDir())
	ns := db.Namespace("n")
	// Keys at the edges of the 0xff prefix, plus neighbours in other
	// namespaces that a wrong upper bound would let in.
	keys := [][]byte{
		{0x00}, {0x01, 0x02}, {0x01}, {0x7f}, {0xfe, 0xff},
		{0xff}, {0xff, 0x00}, {0xff, 0xff}, {0xff, 0xff, 0x00}, {0xff, 0xff, 0xff},
	}
	b := ns.Batch()
	for _, k := range keys {
		b.Set(k, append([]byte("v"), k...))
	}
	b.In(db.Namespace("m")).Set([]byte{0xff, 0xff}, []byte("other"))
	b.In(db.Namespace("o")).Set([]byte{0x00}, []byte("other"))
	b.In(db.Namespace("n\xff")).Set([]byte{0xff}, []byte("other"))
	commit(t, b)

	tests := []struct {
		prefix []byte
		want   string
	}{
		{nil, "[00 01 0102 7f feff ff ff00 ffff ffff00 ffffff]"}, // byte order, not insertion order
		{[]byte{0x01}, "[01 0102]"},
		{[]byte{0xff}, "[ff ff00 ffff ffff00 ffffff]"},
		{[]byte{0xff, 0xff}, "[ffff ffff00 ffffff]"},
		{[]byte{0xff, 0xff, 0xff}, "[ffffff]"},
		{[]byte{0xff, 0xff, 0xff, 0xff}, "[]"},
		{[]byte{0x02}, "[]"},
	}
	for _, tt := range tests {
		var got []string
		err := ns.Iterate(tt.prefix, func(k, v []byte) error {
			if !bytes.Equal(v, append([]byte("v"), k...)) {
				t.Errorf("prefix %x: key %x has value %q", tt.prefix, k, v)
			}
			got = append(got, fmt.Sprintf("%x", k))
			return nil
		})
		if err != nil {
			t.Fatalf("Iterate(%x): %v", tt.prefix, err)
		}
		if fmt.Sprint(got) != tt.want {
			t.Errorf("Iterate(%x) = %v; want %s", tt.prefix, got, tt.want)
		}
	}
}

func TestIterateStop(t *testing.T) {
	db := open(t, t.TempDir())
	ns := db.Namespace("n")
	b := ns.Batch()
	for i := range 10 {
		b.Set([]byte{byte(i)}, nil)
	}
	commit(t, b)

	n := 0
	err := ns.Iterate(nil, func(k, _ []byte) error {
		n++
		if n == 3 {
			return store.ErrStop
		}
		return nil
	})
	if err != nil || n != 3 {
		t.Fatalf("Iterate with ErrStop: visited %d, err %v; want 3, nil", n, err)
	}

	boom := errors.New("boom")
	n = 0
	err = ns.Iterate(nil, func(k, _ []byte) error {
		n++
		return boom
	})
	if !errors.Is(err, boom) || n != 1 {
		t.Fatalf("Iterate with an error: visited %d, err %v; want 1, boom", n, err)
	}
}

func TestBatchAcrossNamespaces(t *testing.T) {
	db := open(t, t.TempDir())
	a, c := db.Namespace("a"), db.Namespace("c")
	b := a.Batch()
	b.Set([]byte("1"), []byte("x"))
	bc := b.In(c)
	bc.Set([]byte("2"), []byte("y"))
	if b.Len() != 2 || bc.Len() != 2 {
		t.Fatalf("Len = %d, %d; want 2 for both views", b.Len(), bc.Len())
	}
	// Nothing is visible before Commit.
	if has, _ := c.Has([]byte("2")); has {
		t.Fatal("uncommitted write is visible")
	}
	commit(t, bc)
	if got, err := a.Get([]byte("1")); err != nil || string(got) != "x" {
		t.Fatalf("a.Get = %q, %v", got, err)
	}
	if got, err := c.Get([]byte("2")); err != nil || string(got) != "y" {
		t.Fatalf("c.Get = %q, %v", got, err)
	}

	defer func() {
		if recover() == nil {
			t.Error("Set after Commit did not panic")
		}
	}()
	b.Set([]byte("3"), nil)
}

func TestLocked(t *testing.T) {
	dir := t.TempDir()
	db := open(t, dir)
	_, err := store.Open(dir)
	if !errors.Is(err, store.ErrLocked) {
		t.Fatalf("second Open: err = %v; want ErrLocked", err)
	}
	want := "store: " + dir + " is in use by another process (is an aropeer node running?)"
	if err.Error() != want {
		t.Errorf("second Open: %q; want %q", err, want)
	}
	_ = db
}

func TestReopen(t *testing.T) {
	dir := t.TempDir()
	db, err := store.Open(dir)
	if err != nil {
		t.Fatal(err)
	}
	b := db.Namespace("n").Batch()
	b.Set([]byte("k"), []byte("v"))
	commit(t, b)
	if err := db.Close(); err != nil {
		t.Fatalf("Close: %v", err)
	}
	if err := db.Close(); err != nil {
		t.Fatalf("second Close: %v", err)
	}

	db = open(t, dir) // the lock was released
	if got, err := db.Namespace("n").Get([]byte("k")); err != nil || string(got) != "v" {
		t.Fatalf("after reopen: Get = %q, %v; want %q", got, err, "v")
	}
}

// TestInMemory: a store in memory keeps what is committed to it while it
// is open, writes nothing to its directory, and two of them at one path
// are two stores.
func TestInMemory(t *testing.T) {
	dir := filepath.Join(t.TempDir(), "store")
	db, err := store.Open(dir, store.InMemory())
	if err != nil {
		t.Fatal(err)
	}
	defer db.Close()
	b := db.Namespace("n").Batch()
	b.Set([]byte("k"), []byte("v"))
	commit(t, b)
	if got, err := db.Namespace("n").Get([]byte("k")); err != nil || string(got) != "v" {
		t.Fatalf("Get = %q, %v; want %q", got, err, "v")
	}
	if _, err := os.Stat(dir); !errors.Is(err, fs.ErrNotExist) {
		t.Fatalf("the store in memory touched its directory on disk: %v", err)
	}
	other, err := store.Open(dir, store.InMemory())
	if err != nil {
		t.Fatalf("a second store in memory at the same path: %v", err)
	}
	defer other.Close()
	if _, err := other.Namespace("n").Get([]byte("k")); !errors.Is(err, store.ErrNotFound) {
		t.Fatalf("a second store in memory sees the first's key: %v", err)
	}
}

func TestOptions(t *testing.T) {
	if _, err := store.Open(t.TempDir(), store.WithCacheSize(0)); err == nil {
		t.Error("WithCacheSize(0) accepted")
	}
	if _, err := store.Open(t.TempDir(), store.WithLogger(nil)); err == nil {
		t.Error("WithLogger(nil) accepted")
	}
	open(t, t.TempDir()) // and the valid options work
}

// Work that races a shutdown gets an error, not pebble's panic.
func TestUseAfterClose(t *testing.T) {
	db := open(t, t.TempDir())
	ns := db.Namespace("n")
	b := ns.Batch()
	b.Set([]byte("k"), []byte("v"))
	if err := db.Close(); err != nil {
		t.Fatal(err)
	}
	if _, err := ns.Get([]byte("k")); !errors.Is(err, store.ErrClosed) {
		t.Errorf("Get after Close = %v; want ErrClosed", err)
	}
	if _, err := ns.Has([]byte("k")); !errors.Is(err, store.ErrClosed) {
		t.Errorf("Has after Close = %v; want ErrClosed", err)
	}
	if err := ns.Iterate(nil, func(k, v []byte) error { return nil }); !errors.Is(err, store.ErrClosed) {
		t.Errorf("Iterate after Close = %v; want ErrClosed", err)
	}
	if err := b.Commit(); !errors.Is(err, store.ErrClosed) {
		t.Errorf("Commit after Close = %v; want ErrClosed", err)
	}
}

// TestShare: shares of one store each see only their own keys, under the
// same namespace and key as the others; closing a share ends its use
// only, and closing the store ends every share's.
func TestShare(t *testing.T) {
	db, err := store.Open(filepath.Join(t.TempDir(), "store"), store.InMemory())
	if err != nil {
		t.Fatal(err)
	}
	defer db.Close()
	a, b := db.Share("a"), db.Share("b")
	inner := a.Share("a")
	views := map[string]*store.DB{"store": db, "a": a, "b": b, "a's a": inner}
	for name, v := range views {
		batch := v.Namespace("n").Batch()
		batch.Set([]byte("k"), []byte(name))
		batch.Set([]byte("only "+name), []byte(name))
		commit(t, batch)
	}
	for name, v := range views {
		if got, err := v.Namespace("n").Get([]byte("k")); err != nil || string(got) != name {
			t.Errorf("%s: Get = %q, %v; want its own %q", name, got, err, name)
		}
		var keys []string
		if err := v.Namespace("n").Iterate(nil, func(k, _ []byte) error {
			keys = append(keys, string(k))
			return nil
		}); err != nil {
			t.Fatal(err)
		}
		if want := []string{"k", "only " + name}; !slices.Equal(keys, want) {
			t.Errorf("%s iterates %q, want %q", name, keys, want)
		}
	}
	if err := a.Close(); err != nil {
		t.Fatal(err)
	}
	if _, err := a.Namespace("n").Get([]byte("k")); !errors.Is(err, store.ErrClosed) {
		t.Errorf("Get on a closed share: %v, want ErrClosed", err)
	}
	if got, err := b.Namespace("n").Get([]byte("k")); err != nil || string(got) != "b" {
		t.Errorf("b after a closed: Get = %q, %v", got, err)
	}
	if err := db.Close(); err != nil {
		t.Fatal(err)
	}
	if _, err := b.Namespace("n").Has([]byte("k")); !errors.Is(err, store.ErrClosed) {
		t.Errorf("Has on a share of a closed store: %v, want ErrClosed", err)
	}
	batch := b.Namespace("n").Batch()
	batch.Set([]byte("k"), nil)
	if err := batch.Commit(); !errors.Is(err, store.ErrClosed) {
		t.Errorf("Commit on a share of a closed store: %v, want ErrClosed", err)
	}
}
