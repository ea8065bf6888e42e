// Package pieces is the piece store of an edge: the pieces it holds, each
// a data file with its cached tree beside it, and their metadata in the
// node's store. It adds pieces in one pass over their data, verifies them
// against their commitments and answers leaf proofs from disk.
//
// Files live in one directory: <cid>.data (the payload as given),
// <cid>.tree (storage.Tree's cache file) and *.tmp while a piece is being
// added. A piece exists once its record is committed; Open removes
// temporary files and files without a record, which is all a crash can
// leave behind.
package pieces

import (
	"context"
	"errors"
	"fmt"
	"io"
	"log/slog"
	"os"
	"path/filepath"
	"slices"
	"strings"
	"sync"
	"time"

	"github.com/ipfs/go-cid"

	"github.com/aropeer/aropeer/storage"
	"github.com/aropeer/aropeer/store"
	"github.com/aropeer/aropeer/wire"
)

// namespace is the store namespace of piece records, keyed by CID bytes.
const namespace = "pieces"

const (
	dataSuffix = ".data"
	treeSuffix = ".tree"
	tmpSuffix  = ".tmp"
	// recordCap bounds a stored record; names are capped well below it.
	recordCap = 4 << 10
	maxName   = 1 << 10
	// defaultTreeCache holds the trees of about 8 GiB of pieces.
	defaultTreeCache = 256 << 20
)

// Piece is a piece the store holds.
type Piece struct {
	CID     cid.Cid
	Payload int64  // bytes of data
	Padded  uint64 // padded size, as Filecoin counts it
	Name    string // given when added, for people; not unique
	Added   time.Time
}

// record is a piece's metadata in the store.
type record struct {
	Payload int64  `cbor:"payload"`
	Padded  uint64 `cbor:"padded"`
	Name    string `cbor:"name"`
	Added   int64  `cbor:"added"` // Unix nanoseconds
}

// Store is the piece store. It is safe for concurrent use.
type Store struct {
	ns   store.Namespace
	dir  string
	opts options

	// mu serializes the last step of Add and Remove, so that concurrent
	// adds of one piece keep one copy and a remove is all or nothing.
	mu    sync.Mutex
	trees *treeCache
}

type options struct {
	log        *slog.Logger
	now        func() time.Time
	maxPayload int64
	treeCache  int64
	workers    int
}

// Option configures Open.
type Option func(*options) error

// WithLogger sets the logger (default slog.Default()).
func WithLogger(log *slog.Logger) Option {
	return func(o *options) error {
		if log == nil {
			return errors.New("pieces: nil logger")
		}
		o.log = log
		return nil
	}
}

// WithClock sets the clock that stamps added pieces (default time.Now).
func WithClock(now func() time.Time) Option {
	return func(o *options) error {
		if now == nil {
			return errors.New("pieces: nil clock")
		}
		o.now = now
		return nil
	}
}

// WithMaxPayload caps the payload of added pieces (default and upper
// bound storage.MaxPayload, a 64 GiB padded piece).
func WithMaxPayload(n int64) Option {
	return func(o *options) error {
		if n < storage.MinPayload || n > storage.MaxPayload {
			return fmt.Errorf("pieces: max payload %d: want %d to %d bytes", n, storage.MinPayload, int64(storage.MaxPayload))
		}
		o.maxPayload = n
		return nil
	}
}

// WithTreeCache bounds the memory of the trees kept for proofs (default
// 256 MiB; a tree takes 1/32 of its padded piece).
func WithTreeCache(bytes int64) Option {
	return func(o *options) error {
		if bytes < 0 {
			return fmt.Errorf("pieces: tree cache %d: want a size in bytes, 0 for none", bytes)
		}
		o.treeCache = bytes
		return nil
	}
}

// WithWorkers sets the goroutines that hash a piece being added or
// verified (default 0: GOMAXPROCS).
func WithWorkers(n int) Option {
	return func(o *options) error {
		if n < 0 {
			return fmt.Errorf("pieces: %d workers: want 0 (all cores) or more", n)
		}
		o.workers = n
		return nil
	}
}

// Open returns the piece store with records in db and files in dir,
// creating dir if needed, and removes what an interrupted add or remove
// left in dir.
func Open(db *store.DB, dir string, opts ...Option) (*Store, error) {
	o := options{log: slog.Default(), now: time.Now, maxPayload: storage.MaxPayload, treeCache: defaultTreeCache}
	for _, opt := range opts {
		if err := opt(&o); err != nil {
			return nil, err
		}
	}
	o.log = o.log.With("component", "pieces")
	if err := os.MkdirAll(dir, 0o700); err != nil {
		return nil, fmt.Errorf("pieces: create %s: %w", dir, err)
	}
	s := &Store{ns: db.Namespace(namespace), dir: dir, opts: o, trees: newTreeCache(o.treeCache)}
	if err := s.cleanup(); err != nil {
		return nil, err
	}
	return s, nil
}

// cleanup removes temporary files and piece files without a record.
func (s *Store) cleanup() error {
	entries, err := os.ReadDir(s.dir)
	if err != nil {
		return fmt.Errorf("pieces: read %s: %w", s.dir, err)
	}
	for _, e := range entries {
		name := e.Name()
		stale := strings.HasSuffix(name, tmpSuffix)
		if base, ok := strings.CutSuffix(name, dataSuffix); ok {
			stale = !s.known(base)
		} else if base, ok := strings.CutSuffix(name, treeSuffix); ok {
			stale = !s.known(base)
		}
		if !stale {
			continue
		}
		s.opts.log.Info("removing a file an interrupted add or remove left", "file", name)
		if err := os.Remove(filepath.Join(s.dir, name)); err != nil {
			return fmt.Errorf("pieces: clean up %s: %w", s.dir, err)
		}
	}
	return nil
}

// known reports whether name is the CID of a recorded piece.
func (s *Store) known(name string) bool {
	id, err := cid.Decode(name)
	if err != nil {
		return true // not ours: leave it alone
	}
	ok, err := s.ns.Has(id.Bytes())
	return ok || err != nil
}

// Path returns the data file of a piece.
func (s *Store) Path(id cid.Cid) string { return filepath.Join(s.dir, id.String()+dataSuffix) }

func (s *Store) treePath(id cid.Cid) string { return filepath.Join(s.dir, id.String()+treeSuffix) }

// Add reads size bytes from src once, copying them to the piece's data
// file while committing them, and records the piece. A piece already held
// is returned as it is. Nothing is left behind when Add fails or ctx is
// cancelled. progress, if not nil, is called with the bytes read so far.
func (s *Store) Add(ctx context.Context, src io.Reader, size int64, name string, progress func(done, total int64)) (Piece, error) {
	if size > s.opts.maxPayload {
		return Piece{}, fmt.Errorf("pieces: add %q: %w: %d bytes is over this store's cap of %d bytes", name, storage.ErrPayloadSize, size, s.opts.maxPayload)
	}
	if _, err := storage.PaddedSize(size); err != nil {
		return Piece{}, fmt.Errorf("pieces: add %q: %w", name, err)
	}
	if len(name) > maxName {
		return Piece{}, fmt.Errorf("pieces: add: a name of %d bytes is over the cap of %d", len(name), maxName)
	}
	data, err := os.CreateTemp(s.dir, "add-*"+tmpSuffix)
	if err != nil {
		return Piece{}, fmt.Errorf("pieces: add %q: %w", name, err)
	}
	tmps := []string{data.Name()}
	defer func() {
		_ = data.Close()
		for _, p := range tmps {
			_ = os.Remove(p) // gone already once renamed
		}
	}()

	var report func(int64)
	if progress != nil {
		report = func(done int64) { progress(done, size) }
	}
	tree, err := storage.Commit(io.TeeReader(ctxReader{ctx, src}, data), size, s.opts.workers, report)
	if err != nil {
		if ctx.Err() != nil {
			return Piece{}, fmt.Errorf("pieces: add %q: %w", name, ctx.Err())
		}
		return Piece{}, fmt.Errorf("pieces: add %q: %w", name, err)
	}
	if err := data.Sync(); err != nil {
		return Piece{}, fmt.Errorf("pieces: add %q: %w", name, err)
	}
	if err := data.Close(); err != nil {
		return Piece{}, fmt.Errorf("pieces: add %q: %w", name, err)
	}
	treeTmp, err := s.writeTemp(tree)
	if err != nil {
		return Piece{}, fmt.Errorf("pieces: add %q: %w", name, err)
	}
	tmps = append(tmps, treeTmp)

	id := tree.CID()
	s.mu.Lock()
	defer s.mu.Unlock()
	if p, err := s.Get(id); err == nil {
		return p, nil // held already; the deferred cleanup drops this copy
	} else if !errors.Is(err, store.ErrNotFound) {
		return Piece{}, err
	}
	// The files first, then the record that makes them a piece: a crash
	// in between leaves files without a record, which Open removes.
	if err := os.Rename(treeTmp, s.treePath(id)); err != nil {
		return Piece{}, fmt.Errorf("pieces: add %s: %w", id, err)
	}
	if err := os.Rename(data.Name(), s.Path(id)); err != nil {
		return Piece{}, fmt.Errorf("pieces: add %s: %w", id, err)
	}
	if err := syncDir(s.dir); err != nil {
		return Piece{}, fmt.Errorf("pieces: add %s: %w", id, err)
	}
	p := Piece{CID: id, Payload: size, Padded: tree.Padded, Name: name, Added: s.opts.now()}
	rec, err := wire.Marshal(record{Payload: p.Payload, Padded: p.Padded, Name: p.Name, Added: p.Added.UnixNano()})
	if err != nil {
		return Piece{}, fmt.Errorf("pieces: add %s: %w", id, err)
	}
	b := s.ns.Batch()
	b.Set(id.Bytes(), rec)
	if err := b.Commit(); err != nil {
		_ = os.Remove(s.Path(id))
		_ = os.Remove(s.treePath(id))
		return Piece{}, fmt.Errorf("pieces: add %s: %w", id, err)
	}
	s.trees.put(id, tree)
	s.opts.log.Info("piece added", "piece", id, "payload", size, "name", name)
	return p, nil
}

// AddFile adds the file at path, named by its base name.
func (s *Store) AddFile(ctx context.Context, path string, progress func(done, total int64)) (Piece, error) {
	f, err := os.Open(path)
	if err != nil {
		return Piece{}, fmt.Errorf("pieces: add: %w", err)
	}
	defer f.Close()
	st, err := f.Stat()
	if err != nil {
		return Piece{}, fmt.Errorf("pieces: add: %w", err)
	}
	if !st.Mode().IsRegular() {
		return Piece{}, fmt.Errorf("pieces: add %s: not a regular file", path)
	}
	return s.Add(ctx, f, st.Size(), filepath.Base(path), progress)
}

// writeTemp writes tree's cache file to a synced temporary file.
func (s *Store) writeTemp(tree *storage.Tree) (string, error) {
	b, err := tree.MarshalBinary()
	if err != nil {
		return "", err
	}
	f, err := os.CreateTemp(s.dir, "tree-*"+tmpSuffix)
	if err != nil {
		return "", err
	}
	_, err = f.Write(b)
	if err == nil {
		err = f.Sync()
	}
	if cerr := f.Close(); err == nil {
		err = cerr
	}
	if err != nil {
		_ = os.Remove(f.Name())
		return "", err
	}
	return f.Name(), nil
}

// syncDir makes renames in dir durable.
func syncDir(dir string) error {
	d, err := os.Open(dir)
	if err != nil {
		return err
	}
	err = d.Sync()
	if cerr := d.Close(); err == nil {
		err = cerr
	}
	return err
}

// Get returns a piece, or an error wrapping store.ErrNotFound.
func (s *Store) Get(id cid.Cid) (Piece, error) {
	v, err := s.ns.Get(id.Bytes())
	if err != nil {
		return Piece{}, fmt.Errorf("pieces: piece %s: %w", id, err)
	}
	return decode(id, v)
}

func decode(id cid.Cid, v []byte) (Piece, error) {
	var r record
	if err := wire.Unmarshal(v, &r, recordCap); err != nil {
		return Piece{}, fmt.Errorf("pieces: record of %s: %w", id, err)
	}
	return Piece{CID: id, Payload: r.Payload, Padded: r.Padded, Name: r.Name, Added: time.Unix(0, r.Added)}, nil
}

// List returns every piece, sorted by CID string.
func (s *Store) List() ([]Piece, error) {
	var out []Piece
	err := s.ns.Iterate(nil, func(k, v []byte) error {
		id, err := cid.Cast(k)
		if err != nil {
			return fmt.Errorf("pieces: bad key %x: %w", k, err)
		}
		p, err := decode(id, v)
		if err != nil {
			return err
		}
		out = append(out, p)
		return nil
	})
	if err != nil {
		return nil, err
	}
	slices.SortFunc(out, func(a, b Piece) int { return strings.Compare(a.CID.String(), b.CID.String()) })
	return out, nil
}

// Remove deletes a piece: its record, then its files.
func (s *Store) Remove(id cid.Cid) error {
	s.mu.Lock()
	defer s.mu.Unlock()
	if _, err := s.Get(id); err != nil {
		return err
	}
	b := s.ns.Batch()
	b.Delete(id.Bytes())
	if err := b.Commit(); err != nil {
		return fmt.Errorf("pieces: remove %s: %w", id, err)
	}
	s.trees.remove(id)
	// Files left by a crash here have no record; Open removes them.
	for _, p := range []string{s.Path(id), s.treePath(id)} {
		if err := os.Remove(p); err != nil && !errors.Is(err, os.ErrNotExist) {
			return fmt.Errorf("pieces: remove %s: %w", id, err)
		}
	}
	s.opts.log.Info("piece removed", "piece", id)
	return nil
}

// Verify recomputes the commitment of a piece from its data file and
// reports whether it still matches the CID. A damaged piece (data
// changed, cut short or missing) is ok=false with a nil error, and what
// differs is logged; errors are for the store's own failures and ctx. A
// missing or damaged tree file of intact data is rewritten.
func (s *Store) Verify(ctx context.Context, id cid.Cid, progress func(done, total int64)) (ok bool, err error) {
	p, err := s.Get(id)
	if err != nil {
		return false, err
	}
	damaged := func(problem string, args ...any) (bool, error) {
		s.opts.log.Warn("piece damaged", "piece", id, "problem", fmt.Sprintf(problem, args...))
		return false, nil
	}
	f, err := os.Open(s.Path(id))
	if errors.Is(err, os.ErrNotExist) {
		return damaged("data file %s is missing", s.Path(id))
	}
	if err != nil {
		return false, fmt.Errorf("pieces: verify %s: %w", id, err)
	}
	defer f.Close()
	st, err := f.Stat()
	if err != nil {
		return false, fmt.Errorf("pieces: verify %s: %w", id, err)
	}
	if st.Size() != p.Payload {
		return damaged("data file is %d bytes, the piece %d", st.Size(), p.Payload)
	}
	var report func(int64)
	if progress != nil {
		report = func(done int64) { progress(done, p.Payload) }
	}
	tree, err := storage.Commit(ctxReader{ctx, f}, p.Payload, s.opts.workers, report)
	if err != nil {
		if ctx.Err() != nil {
			return false, fmt.Errorf("pieces: verify %s: %w", id, ctx.Err())
		}
		return false, fmt.Errorf("pieces: verify %s: %w", id, err)
	}
	if got := tree.CID(); !got.Equals(id) {
		return damaged("data now commits to %s", got)
	}
	if _, err := s.loadTree(id); err != nil {
		s.opts.log.Warn("rewriting a damaged tree file", "piece", id, "err", err)
		if err := s.rewriteTree(id, tree); err != nil {
			return true, fmt.Errorf("pieces: verify %s: data intact, but rewriting its tree file: %w", id, err)
		}
	}
	return true, nil
}

func (s *Store) rewriteTree(id cid.Cid, tree *storage.Tree) error {
	s.mu.Lock()
	defer s.mu.Unlock()
	if _, err := s.Get(id); err != nil {
		return err // removed meanwhile
	}
	tmp, err := s.writeTemp(tree)
	if err != nil {
		return err
	}
	if err := os.Rename(tmp, s.treePath(id)); err != nil {
		_ = os.Remove(tmp)
		return err
	}
	s.trees.put(id, tree)
	return syncDir(s.dir)
}

// Prove returns leaf index of a piece with its path, reading 2032 bytes
// of the data file and the piece's tree, which stays cached.
func (s *Store) Prove(id cid.Cid, index uint64) (storage.LeafProof, error) {
	ps, err := s.ProveLeaves(id, []uint64{index})
	if err != nil {
		return storage.LeafProof{}, err
	}
	return ps[0], nil
}

// ProveLeaves is Prove of several leaves of a piece, in their order, with
// its data file opened once.
func (s *Store) ProveLeaves(id cid.Cid, indices []uint64) ([]storage.LeafProof, error) {
	tree, err := s.tree(id)
	if err != nil {
		return nil, err
	}
	f, err := os.Open(s.Path(id))
	if err != nil {
		return nil, fmt.Errorf("pieces: prove %s: %w", id, err)
	}
	defer f.Close()
	out := make([]storage.LeafProof, len(indices))
	for i, index := range indices {
		if out[i], err = tree.Prove(f, index); err != nil {
			return nil, fmt.Errorf("pieces: prove %s: %w", id, err)
		}
	}
	return out, nil
}

// tree returns the tree of a held piece, from the cache or its file.
func (s *Store) tree(id cid.Cid) (*storage.Tree, error) {
	if t := s.trees.get(id); t != nil {
		return t, nil
	}
	if _, err := s.Get(id); err != nil {
		return nil, err
	}
	t, err := s.loadTree(id)
	if err != nil {
		return nil, fmt.Errorf("pieces: prove %s: %w (Verify rewrites it from intact data)", id, err)
	}
	s.trees.put(id, t)
	return t, nil
}

// loadTree reads and checks a piece's tree file.
func (s *Store) loadTree(id cid.Cid) (*storage.Tree, error) {
	b, err := os.ReadFile(s.treePath(id))
	if err != nil {
		return nil, err
	}
	var t storage.Tree
	if err := t.UnmarshalBinary(b); err != nil {
		return nil, err
	}
	if !t.CID().Equals(id) {
		return nil, fmt.Errorf("%w: tree file holds %s", storage.ErrBadTree, t.CID())
	}
	return &t, nil
}

// ctxReader fails reads once ctx is done, so a long add or verify stops
// within a chunk of being cancelled.
type ctxReader struct {
	ctx context.Context
	r   io.Reader
}

func (r ctxReader) Read(p []byte) (int, error) {
	if err := r.ctx.Err(); err != nil {
		return 0, err
	}
	return r.r.Read(p)
}
