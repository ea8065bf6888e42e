package node

import (
	"context"
	"errors"
	"fmt"
	"log/slog"
	"sync"
	"time"

	"github.com/libp2p/go-libp2p/core/crypto"
	"github.com/libp2p/go-libp2p/core/peer"

	"github.com/aropeer/aropeer/wire"
)

// A bundle gossips the envelopes one node sealed in a moment as one
// message, itself sealed by that node. A keeper of a network of 1,000
// edges publishes some 120 challenges and receipts a round, and each
// keeper received each of them six times over, once from its keeper and
// again from every mesh peer that forwarded it: the per-message work of
// those copies (the read, the decoding, the seen-cache and the scoring)
// was half of the network's CPU. Bundled, a keeper publishes a handful
// of messages a round. Each envelope in a bundle is still sealed and
// judged on its own, and is kept, logged and used as one sent alone.

// BundleEvery is the least time between two bundles of one topic: a
// burst of a round's challenges or receipts waits at most this long.
const BundleEvery = 20 * time.Millisecond

// bundleDomain is the domain a bundle of envelopes sealed under d is
// sealed under.
func bundleDomain(d wire.Domain) wire.Domain {
	return wire.Domain{Name: d.Name + "-bundle", PayloadType: d.PayloadType + "-bundle"}
}

// maxBundled caps the envelopes of one bundle, and maxBundle its size:
// gossipsub's cap on a message, less room for the RPC that carries it.
const (
	maxBundled = 1024
	maxBundle  = maxGossipMessage - 4<<10
)

// What a bundle adds to its envelopes, at most: the outer envelope's key,
// signature and types, and the length CBOR writes before each envelope.
const (
	bundleOverhead   = 1 << 10
	envelopeOverhead = 5
)

// bundle is a bundle's payload.
type bundle struct {
	Envelopes [][]byte `cbor:"envelopes"`
}

// ErrBadBundle is returned for a bundle that opens but is empty, too
// long, or holds envelopes of a signer other than its own.
var ErrBadBundle = errors.New("node: bad bundle")

// SealBundle seals envelopes, each sealed under d by key, as one bundle.
func SealBundle(key crypto.PrivKey, d wire.Domain, envelopes [][]byte) ([]byte, error) {
	if err := checkCount(len(envelopes)); err != nil {
		return nil, err
	}
	env, _, err := wire.SealMessage(key, bundleDomain(d), bundle{Envelopes: envelopes})
	if err != nil {
		return nil, err
	}
	if len(env) > maxBundle {
		return nil, fmt.Errorf("%w: %d bytes over cap %d", ErrBadBundle, len(env), maxBundle)
	}
	return env, nil
}

// checkCount refuses a bundle of no envelopes or of more than maxBundled.
func checkCount(n int) error {
	if n == 0 || n > maxBundled {
		return fmt.Errorf("%w: %d envelopes, want 1 to %d", ErrBadBundle, n, maxBundled)
	}
	return nil
}

// OpenBundle opens a bundle of envelopes sealed under d, each of at most
// maxSize bytes, and opens each of them. Every envelope must be sealed by
// the bundle's signer: a node bundles only what it sealed.
func OpenBundle(data []byte, d wire.Domain, maxSize int) (signer peer.ID, msgs []Message, err error) {
	var b bundle
	signer, _, err = wire.OpenMessage(data, bundleDomain(d), maxBundle, &b)
	if err != nil {
		return "", nil, err
	}
	if err := checkCount(len(b.Envelopes)); err != nil {
		return "", nil, err
	}
	msgs = make([]Message, len(b.Envelopes))
	for i, env := range b.Envelopes {
		payload, s, err := wire.Open(env, d, maxSize)
		if err != nil {
			return "", nil, fmt.Errorf("node: bundle's envelope %d: %w", i, err)
		}
		if s != signer {
			return "", nil, fmt.Errorf("%w: envelope %d sealed by %s in a bundle of %s", ErrBadBundle, i, s, signer)
		}
		msgs[i] = Message{Signer: s, Payload: payload, Envelope: env}
	}
	return signer, msgs, nil
}

// bundler collects the envelopes published on a topic and gossips them
// in bundles, at most one every while: an envelope that finds the last
// bundle gone for that long leaves at once, alone; the ones after it wait
// out the while and leave together, or sooner when the next would not
// fit. A lone challenge is not delayed, and a burst costs two messages.
type bundler struct {
	ctx     context.Context
	key     crypto.PrivKey
	domain  wire.Domain
	every   time.Duration
	publish func(context.Context, []byte) error
	log     *slog.Logger

	mu      sync.Mutex
	pending [][]byte
	size    int
	timer   *time.Timer // set while pending waits for the while to pass
	last    time.Time   // when the last bundle left
}

// add queues env for the next bundle.
func (b *bundler) add(env []byte) {
	b.mu.Lock()
	var full, now [][]byte
	if len(b.pending) == maxBundled || b.size+len(env)+envelopeOverhead+bundleOverhead > maxBundle {
		full = b.takeLocked()
	}
	b.pending = append(b.pending, env)
	b.size += len(env) + envelopeOverhead
	if b.timer == nil {
		if wait := b.every - time.Since(b.last); wait > 0 {
			b.timer = time.AfterFunc(wait, b.flush)
		} else {
			now = b.takeLocked()
		}
	}
	b.mu.Unlock()
	b.send(full)
	b.send(now)
}

// flush gossips what is queued.
func (b *bundler) flush() {
	b.mu.Lock()
	envs := b.takeLocked()
	b.mu.Unlock()
	b.send(envs)
}

// takeLocked empties the queue and returns what it held, to be sent now.
func (b *bundler) takeLocked() [][]byte {
	if b.timer != nil {
		b.timer.Stop()
		b.timer = nil
	}
	envs := b.pending
	b.pending, b.size = nil, 0
	b.last = time.Now()
	return envs
}

// send seals envs as a bundle and gossips it, outside the lock: gossip
// judges our own bundle before it leaves, envelope by envelope.
func (b *bundler) send(envs [][]byte) {
	if len(envs) == 0 || b.ctx.Err() != nil {
		return
	}
	msg, err := SealBundle(b.key, b.domain, envs)
	if err == nil {
		err = b.publish(b.ctx, msg)
	}
	if err != nil && b.ctx.Err() == nil {
		b.log.Debug("bundle not gossiped", "envelopes", len(envs), "err", err)
	}
}
