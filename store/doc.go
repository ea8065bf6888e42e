// Package store is the node's key-value store: a small API over pebble that
// every package persisting state (receipts, reports, the local ledger) uses.
//
// One DB lives in the data directory and is shared by all packages. Each
// package writes under its own Namespace, so two packages using the same key
// cannot collide. Writes go through batches, and Batch.Commit syncs the
// write-ahead log before it returns: data is durable before it is
// acknowledged, which receipts and ledger writes require.
//
//	db, err := store.Open(dir, store.WithLogger(log))
//	receipts := db.Namespace("receipts")
//	b := receipts.Batch()
//	b.Set(key, value)
//	b.In(db.Namespace("index")).Set(other, nil) // same atomic batch
//	err = b.Commit()
//
// The package sits at the bottom of the module and imports nothing from it,
// so lower packages (proofs, chain) can use it without importing node.
package store
