package store

import (
	"encoding/binary"
	"errors"
	"fmt"

	"github.com/cockroachdb/pebble/v2"
)

// Namespace is a view of the DB in which every key carries the namespace's
// prefix. The prefix is the name's length as a uvarint followed by the name,
// so no namespace's prefix is a prefix of another's ("a" and "ab" cannot see
// each other's keys). A Namespace is a small value; copy it freely.
type Namespace struct {
	db     *DB
	name   string
	prefix []byte
}

// Namespace returns the namespace called name. Packages should use a
// constant name of their own, such as "receipts" or "ledger".
func (db *DB) Namespace(name string) Namespace {
	p := append([]byte(nil), db.prefix...)
	p = binary.AppendUvarint(p, uint64(len(name)))
	p = append(p, name...)
	return Namespace{db: db, name: name, prefix: p}
}

// Name returns the namespace's name.
func (ns Namespace) Name() string { return ns.name }

// key returns the full pebble key of k in ns, in a new slice.
func (ns Namespace) key(k []byte) []byte {
	full := make([]byte, 0, len(ns.prefix)+len(k))
	return append(append(full, ns.prefix...), k...)
}

// Get returns a copy of the value stored under key, or an error matching
// ErrNotFound. It sees every batch committed before it was called.
func (ns Namespace) Get(key []byte) ([]byte, error) {
	done, err := ns.db.use()
	if err != nil {
		return nil, err
	}
	defer done()
	v, closer, err := ns.db.pdb.Get(ns.key(key))
	if errors.Is(err, pebble.ErrNotFound) {
		return nil, ErrNotFound
	}
	if err != nil {
		return nil, fmt.Errorf("store: get %s/%x: %w", ns.name, key, err)
	}
	// pebble's value is only valid until the closer is closed.
	out := append([]byte(nil), v...)
	if err := closer.Close(); err != nil {
		return nil, fmt.Errorf("store: get %s/%x: %w", ns.name, key, err)
	}
	return out, nil
}

// Has reports whether key is present.
func (ns Namespace) Has(key []byte) (bool, error) {
	done, err := ns.db.use()
	if err != nil {
		return false, err
	}
	defer done()
	_, closer, err := ns.db.pdb.Get(ns.key(key))
	if errors.Is(err, pebble.ErrNotFound) {
		return false, nil
	}
	if err != nil {
		return false, fmt.Errorf("store: has %s/%x: %w", ns.name, key, err)
	}
	if err := closer.Close(); err != nil {
		return false, fmt.Errorf("store: has %s/%x: %w", ns.name, key, err)
	}
	return true, nil
}

// Iterate calls fn for every key in ns that starts with prefix, in
// ascending byte order, with the namespace prefix removed from the key. An
// empty prefix visits the whole namespace. k and v are valid only until fn
// returns; copy them to keep them.
//
// Iteration stops at the first error fn returns: ErrStop ends it with a nil
// result, any other error is returned as is.
func (ns Namespace) Iterate(prefix []byte, fn func(k, v []byte) error) (err error) {
	done, err := ns.db.use()
	if err != nil {
		return err
	}
	defer done()
	lower := ns.key(prefix)
	it, err := ns.db.pdb.NewIter(&pebble.IterOptions{
		LowerBound: lower,
		UpperBound: successor(lower),
	})
	if err != nil {
		return fmt.Errorf("store: iterate %s/%x: %w", ns.name, prefix, err)
	}
	defer func() {
		if cerr := it.Close(); cerr != nil && err == nil {
			err = fmt.Errorf("store: iterate %s/%x: %w", ns.name, prefix, cerr)
		}
	}()
	for ok := it.First(); ok; ok = it.Next() {
		v, verr := it.ValueAndErr()
		if verr != nil {
			return fmt.Errorf("store: iterate %s/%x: %w", ns.name, prefix, verr)
		}
		if ferr := fn(it.Key()[len(ns.prefix):], v); ferr != nil {
			if errors.Is(ferr, ErrStop) {
				return nil
			}
			return ferr
		}
	}
	if ierr := it.Error(); ierr != nil {
		return fmt.Errorf("store: iterate %s/%x: %w", ns.name, prefix, ierr)
	}
	return nil
}

// successor returns the smallest key greater than every key that starts
// with p: p with its last non-0xff byte incremented and the rest dropped.
// p always starts with a namespace prefix, whose length byte is below 0x80,
// so a successor exists even when the caller's prefix is all 0xff.
func successor(p []byte) []byte {
	for i := len(p) - 1; i >= 0; i-- {
		if p[i] != 0xff {
			s := append([]byte(nil), p[:i+1]...)
			s[i]++
			return s
		}
	}
	return nil // no upper bound; unreachable for namespaced keys
}
