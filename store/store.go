package store

import (
	"errors"
	"fmt"
	"io/fs"
	"log/slog"
	"sync"

	"github.com/cockroachdb/pebble/v2"
	"github.com/cockroachdb/pebble/v2/vfs"
)

// Sentinel errors that callers branch on.
var (
	// ErrNotFound is returned by Get when the key is absent.
	ErrNotFound = errors.New("store: not found")
	// ErrLocked is returned by Open when another DB holds the directory,
	// in this process or in another one.
	ErrLocked = errors.New("store: directory in use")
	// ErrStop, returned by an Iterate callback, ends the iteration early
	// without an error.
	ErrStop = errors.New("store: stop iteration")
	// ErrClosed is returned by operations on a closed store.
	ErrClosed = errors.New("store: closed")
)

// defaultCacheSize is the block cache of a home node: enough to keep the
// index and hot receipts in memory without competing with the workloads the
// node proves.
const defaultCacheSize = 64 << 20

// inMemoryMemTable is the largest memtable of a store in memory. Pebble
// starts a DB's memtables at 256 KiB and doubles them, so a small store
// never reaches it.
const inMemoryMemTable = 512 << 20

// DB is an open store. It is safe for concurrent use.
type DB struct {
	pdb  *pebble.DB
	lock *pebble.Lock
	dir  string
	// inMemory stores keep no log: their commits cannot sync.
	inMemory bool
	// owner is the DB that opened pebble, for a share of it (Share), and
	// prefix what each of the share's keys starts with.
	owner  *DB
	prefix []byte

	// mu guards closed: operations hold it shared, Close exclusively, so
	// that work racing a shutdown gets ErrClosed rather than pebble's
	// use-after-close panic.
	mu        sync.RWMutex
	closed    bool
	closeOnce sync.Once
	closeErr  error
}

// use marks the start of an operation; call the returned func at its end.
// A share's operation holds its owner open as well.
func (db *DB) use() (done func(), err error) {
	db.mu.RLock()
	if db.closed {
		db.mu.RUnlock()
		return nil, ErrClosed
	}
	if db.owner == nil {
		return db.mu.RUnlock, nil
	}
	ownerDone, err := db.owner.use()
	if err != nil {
		db.mu.RUnlock()
		return nil, err
	}
	return func() { ownerDone(); db.mu.RUnlock() }, nil
}

// Share returns a share of db that a user can take as a store of its
// own: its namespaces see none of db's, nor any other share's. It is
// db's namespace "share/"+name seen as a DB. Closing it ends only its
// own use; db's Close closes pebble for all of them.
//
// It is for simulations: a thousand nodes in one process, each with a
// pebble of its own, would each keep a log writer, a manifest and a
// commit pipeline, 200 KB before the first key, and their goroutines.
func (db *DB) Share(name string) *DB {
	return &DB{
		pdb: db.pdb, dir: db.dir, inMemory: db.inMemory,
		owner: db.root(), prefix: db.Namespace(shareNamespace + name).prefix,
	}
}

// shareNamespace starts the names of the namespaces Share gives out.
const shareNamespace = "share/"

// root is the DB that opened pebble.
func (db *DB) root() *DB {
	if db.owner != nil {
		return db.owner
	}
	return db
}

type options struct {
	log       *slog.Logger
	cacheSize int64
	fs        vfs.FS
	inMemory  bool
}

// Option configures Open.
type Option func(*options) error

// WithLogger routes pebble's log messages to log: its informational messages
// at debug level (they describe WAL replay and similar internals), its errors
// at error level. Without it, slog.Default() is used.
func WithLogger(log *slog.Logger) Option {
	return func(o *options) error {
		if log == nil {
			return errors.New("store: nil logger")
		}
		o.log = log
		return nil
	}
}

// WithCacheSize sets the size of pebble's block cache in bytes (default 64 MiB).
func WithCacheSize(bytes int64) Option {
	return func(o *options) error {
		if bytes <= 0 {
			return fmt.Errorf("store: cache size %d: want a positive number of bytes", bytes)
		}
		o.cacheSize = bytes
		return nil
	}
}

// InMemory keeps the store in memory, not on disk: nothing outlives
// Close, so it keeps no write-ahead log either, and a commit waits for no
// disk. For simulations, which run a thousand nodes in one process and
// would otherwise spend their time in fdatasync. Its memtables grow to
// inMemoryMemTable: flushing one to a file in memory would only copy the
// data, and start compactions, and make reads decode blocks.
func InMemory() Option {
	return func(o *options) error {
		o.fs, o.inMemory = vfs.NewMem(), true
		return nil
	}
}

// Open opens the store in dir, creating it if needed. It fails with an error
// matching ErrLocked while another DB has dir open.
func Open(dir string, opts ...Option) (*DB, error) {
	o := options{log: slog.Default(), cacheSize: defaultCacheSize, fs: vfs.Default}
	for _, opt := range opts {
		if err := opt(&o); err != nil {
			return nil, err
		}
	}
	if err := o.fs.MkdirAll(dir, 0o700); err != nil {
		return nil, fmt.Errorf("store: create %s: %w", dir, err)
	}

	// Take pebble's LOCK ourselves so that a held lock can be told apart
	// from every other failure of Open and explained to the operator.
	lock, err := pebble.LockDirectory(dir, o.fs)
	if err != nil {
		var pathErr *fs.PathError
		if errors.As(err, &pathErr) {
			// Creating the LOCK file failed: a permission or disk problem.
			return nil, fmt.Errorf("store: lock %s: %w", dir, err)
		}
		// The lock itself is held: by another process (EAGAIN/EACCES from
		// fcntl) or by another DB in this process.
		return nil, &explained{ErrLocked, fmt.Sprintf(
			"store: %s is in use by another process (is an aropeer node running?)", dir)}
	}

	var memTableSize uint64 // pebble's default
	if o.inMemory {
		memTableSize = inMemoryMemTable
	}
	cache := pebble.NewCache(o.cacheSize)
	defer cache.Unref() // pebble holds its own reference while open
	pdb, err := pebble.Open(dir, &pebble.Options{
		FS:     o.fs,
		Cache:  cache,
		Lock:   lock,
		Logger: slogLogger{o.log.With("component", "pebble")},
		// New stores use the newest on-disk format; older ones are
		// ratcheted up on open.
		FormatMajorVersion: pebble.FormatNewest,
		DisableWAL:         o.inMemory,
		MemTableSize:       memTableSize,
	})
	if err != nil {
		_ = lock.Close()
		return nil, fmt.Errorf("store: open %s: %w", dir, err)
	}
	return &DB{pdb: pdb, lock: lock, dir: dir, inMemory: o.inMemory}, nil
}

// Close closes pebble and releases the directory lock; every committed
// batch is already on disk. Calling it again returns the first result.
// Operations after Close fail with ErrClosed, on its shares too; a
// share's Close ends only the share's operations.
func (db *DB) Close() error {
	db.closeOnce.Do(func() {
		db.mu.Lock()
		defer db.mu.Unlock()
		db.closed = true
		if db.owner != nil {
			return
		}
		err := db.pdb.Close()
		if lerr := db.lock.Close(); err == nil {
			err = lerr
		}
		if err != nil {
			db.closeErr = fmt.Errorf("store: close %s: %w", db.dir, err)
		}
	})
	return db.closeErr
}

// Dir returns the directory the store was opened in.
func (db *DB) Dir() string { return db.dir }

// explained is an error whose message is a whole sentence for the operator
// and which still matches its sentinel with errors.Is.
type explained struct {
	sentinel error
	msg      string
}

func (e *explained) Error() string { return e.msg }
func (e *explained) Unwrap() error { return e.sentinel }

// slogLogger adapts slog to pebble.Logger.
type slogLogger struct{ log *slog.Logger }

func (l slogLogger) Infof(format string, args ...any) {
	l.log.Debug(fmt.Sprintf(format, args...))
}

func (l slogLogger) Errorf(format string, args ...any) {
	l.log.Error(fmt.Sprintf(format, args...))
}

// Fatalf is called by pebble on corruption or a broken invariant, after
// which it must not continue: log the reason, then panic rather than exit so
// that deferred cleanup in the caller still runs.
func (l slogLogger) Fatalf(format string, args ...any) {
	msg := fmt.Sprintf(format, args...)
	l.log.Error(msg, "fatal", true)
	panic("store: pebble: " + msg)
}
