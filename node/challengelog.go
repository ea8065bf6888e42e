package node

import (
	"encoding/binary"
	"errors"
	"sync"

	"github.com/ipfs/go-cid"

	"github.com/aropeer/aropeer/proofs"
	"github.com/aropeer/aropeer/store"
	"github.com/aropeer/aropeer/wire"
)

// challengeLog keeps, on a keeper, the sealed challenges gossip brought,
// by challenge ID, for the epochs receipts can still be disputed in: an
// evidence dispute must carry the challenge a pass receipt answers, and
// the receipt names it only by ID.
type challengeLog struct {
	ns   store.Namespace
	keep uint64 // epochs kept behind the newest seen

	mu     sync.Mutex
	pruned uint64 // epochs below this are gone
}

// Keys: "c" + CID bytes → epoch (8 bytes) + envelope; "e" + epoch + CID
// bytes → nothing, to prune by epoch.
func newChallengeLog(db *store.DB, keep uint64) *challengeLog {
	return &challengeLog{ns: db.Namespace("challenges"), keep: keep}
}

// add keeps the sealed challenge env whose payload is payload, already
// validated. Losing the last few on a crash costs only disputes, so it is
// not synced.
func (l *challengeLog) add(payload, env []byte) error {
	var c proofs.Challenge
	if err := wire.UnmarshalTrusted(payload, &c, proofs.MaxChallengeSize); err != nil {
		return err
	}
	id, err := c.IDOf(payload)
	if err != nil {
		return err
	}
	epoch := binary.BigEndian.AppendUint64(nil, c.Epoch)
	b := l.ns.Batch()
	b.Set(append([]byte("c"), id.Bytes()...), append(epoch, env...))
	b.Set(append(append([]byte("e"), epoch...), id.Bytes()...), nil)
	if err := b.CommitNoSync(); err != nil {
		return err
	}
	if c.Epoch > l.keep {
		return l.prune(c.Epoch - l.keep)
	}
	return nil
}

// get returns the sealed challenge of id, if kept.
func (l *challengeLog) get(id cid.Cid) ([]byte, bool) {
	v, err := l.ns.Get(append([]byte("c"), id.Bytes()...))
	if err != nil || len(v) < 8 {
		return nil, false
	}
	return v[8:], true
}

// prune drops the challenges of epochs below before.
func (l *challengeLog) prune(before uint64) error {
	l.mu.Lock()
	defer l.mu.Unlock()
	if before <= l.pruned {
		return nil
	}
	b := l.ns.Batch()
	err := l.ns.Iterate([]byte("e"), func(k, _ []byte) error {
		if len(k) < 9 || binary.BigEndian.Uint64(k[1:9]) >= before {
			return store.ErrStop
		}
		b.Delete(append([]byte(nil), k...))
		b.Delete(append([]byte("c"), k[9:]...))
		return nil
	})
	if err != nil && !errors.Is(err, store.ErrStop) {
		return err
	}
	l.pruned = before
	if b.Len() == 0 {
		return nil
	}
	return b.CommitNoSync()
}
