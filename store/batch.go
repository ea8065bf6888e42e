package store

import (
	"fmt"

	"github.com/cockroachdb/pebble/v2"
)

// Batch collects writes that Commit applies atomically and durably. A
// Batch is bound to the namespace it was made from; In returns a view of the
// same batch bound to another namespace, so one atomic write may span
// namespaces:
//
//	b := receipts.Batch()
//	b.Set(cid, receipt)
//	b.In(byEdge).Set(edgeKey, cid)
//	err := b.Commit() // both or neither
//
// Reads do not see a batch's writes until it is committed. A Batch is not
// safe for concurrent use, and cannot be reused after Commit.
type Batch struct {
	w  *writes
	ns Namespace
}

// writes is the state shared by every view of one batch.
type writes struct {
	db        *DB
	pb        *pebble.Batch
	committed bool
}

// Batch starts a new batch bound to ns.
func (ns Namespace) Batch() *Batch {
	return &Batch{w: &writes{db: ns.db, pb: ns.db.pdb.NewBatch()}, ns: ns}
}

// In returns a view of b that writes into ns. Committing any view commits
// the whole batch. ns must come from the same DB.
func (b *Batch) In(ns Namespace) *Batch {
	if ns.db != b.w.db {
		panic("store: Batch.In with a namespace of another DB")
	}
	return &Batch{w: b.w, ns: ns}
}

// Set stores value under key. Both are copied, so the caller may reuse them.
func (b *Batch) Set(key, value []byte) {
	b.check()
	// A batch without an index cannot fail to append.
	_ = b.w.pb.Set(b.ns.key(key), value, nil)
}

// Delete removes key; deleting an absent key is not an error.
func (b *Batch) Delete(key []byte) {
	b.check()
	_ = b.w.pb.Delete(b.ns.key(key), nil)
}

// Len returns the number of writes in the batch, across all its views.
func (b *Batch) Len() int { return int(b.w.pb.Count()) }

// Commit applies the batch atomically and returns once the write-ahead log
// is synced to disk: a nil result means the writes survive a crash.
func (b *Batch) Commit() error { return b.commit(pebble.Sync) }

// CommitNoSync applies the batch atomically without waiting for the disk:
// for what a crash may lose, such as a log kept only to be helpful.
func (b *Batch) CommitNoSync() error { return b.commit(pebble.NoSync) }

func (b *Batch) commit(opts *pebble.WriteOptions) error {
	b.check()
	b.w.committed = true
	n := b.Len()
	done, err := b.w.db.use()
	if err != nil {
		return err
	}
	defer done()
	if b.w.db.inMemory {
		opts = pebble.NoSync // no disk, and no log to sync
	}
	err = b.w.pb.Commit(opts)
	if cerr := b.w.pb.Close(); err == nil {
		err = cerr
	}
	if err != nil {
		return fmt.Errorf("store: commit %d writes: %w", n, err)
	}
	return nil
}

func (b *Batch) check() {
	if b.w.committed {
		panic("store: batch used after Commit")
	}
}
