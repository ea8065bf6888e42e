package challenge

import (
	"context"
	"errors"
	"fmt"
	"strconv"

	"github.com/ipfs/go-cid"
	pubsub "github.com/libp2p/go-libp2p-pubsub"
	"github.com/libp2p/go-libp2p/core/peer"

	"github.com/aropeer/aropeer/beacon"
	"github.com/aropeer/aropeer/proofs"
	"github.com/aropeer/aropeer/wire"
)

// The validators below judge gossip the node has already opened: the
// envelope's signature verified under the topic's domain, and signer is
// who sealed it. They Reject what is provably bad and Ignore what cannot
// be judged yet (a manifest or a beacon round not known here).

// ValidateChallenge judges a gossiped challenge: it must be one the
// schedule called for, sealed by its keeper, and not seen before.
func (e *Engine) ValidateChallenge(ctx context.Context, _ peer.ID, payload []byte, signer peer.ID) pubsub.ValidationResult {
	var c proofs.Challenge
	if err := wire.Unmarshal(payload, &c, proofs.MaxChallengeSize); err != nil || c.Keeper != signer {
		return pubsub.ValidationReject
	}
	if err := e.check(ctx, c); err != nil {
		return verdict(err)
	}
	id, err := c.IDOf(payload)
	if err != nil {
		return pubsub.ValidationReject
	}
	if !e.markSeen(id.KeyString(), c.Attempt, c.Round) {
		// The keeper sent this attempt before: a keeper publishes each
		// attempt once.
		return pubsub.ValidationReject
	}
	return pubsub.ValidationAccept
}

// ValidateReceipt judges a gossiped receipt: sealed by its keeper, for a
// challenge the schedule called for. Whether it is held already is left
// to the store, which keeps a receipt once and looks it up anyway:
// gossip brings each bundle once, so a receipt held before it came
// (fetched in a catch-up, or published again) is rare, and a lookup here
// would read the store twice for every receipt.
func (e *Engine) ValidateReceipt(ctx context.Context, from peer.ID, payload []byte, signer peer.ID) pubsub.ValidationResult {
	var r proofs.Receipt
	if err := wire.Unmarshal(payload, &r, proofs.MaxReceiptSize); err != nil || r.Keeper != signer {
		return pubsub.ValidationReject
	}
	if from == e.self && signer == e.self {
		return pubsub.ValidationAccept
	}
	if err := e.checkReceipt(ctx, r); err != nil {
		return verdict(err)
	}
	return pubsub.ValidationAccept
}

// ValidateManifest judges a gossiped manifest: valid, sealed by its edge,
// of this network, and newer than the one held.
func (e *Engine) ValidateManifest(_ context.Context, _ peer.ID, payload []byte, signer peer.ID) pubsub.ValidationResult {
	var m proofs.Manifest
	if err := wire.Unmarshal(payload, &m, proofs.MaxManifestSize); err != nil || m.Edge != signer || m.Validate() != nil {
		return pubsub.ValidationReject
	}
	if m.Network != e.cfg.Params.Network {
		return pubsub.ValidationReject
	}
	e.mu.Lock()
	old, ok := e.manifests[m.Edge]
	oldID := e.manifestIDs[m.Edge]
	e.mu.Unlock()
	switch {
	case ok && old.Seq < m.Seq && LateFault(old, m, e.currentRound()) != nil:
		// Not provably wrong, as it depends on our clock; not kept either.
		return pubsub.ValidationIgnore
	case !ok || old.Seq < m.Seq:
		return pubsub.ValidationAccept
	case old.Seq > m.Seq:
		return pubsub.ValidationIgnore
	case oldID.Equals(wire.CIDOf(payload)):
		// A re-announcement: forwarded, so that keepers that joined late
		// learn it through peers that already knew it.
		return pubsub.ValidationAccept
	}
	// Two manifests with one sequence number: the edge equivocates.
	return pubsub.ValidationReject
}

// verdict maps a schedule check's error to gossip: what the schedule
// provably did not call for is rejected; what lacks a manifest or a
// beacon round here is ignored, and so is what arrives after its window:
// a forwarder that was slow, or whose queue was long, is not a liar, and
// a rejection would cost it its score with the keepers it forwards to.
func verdict(err error) pubsub.ValidationResult {
	switch {
	case errors.Is(err, ErrNotOffered), errors.Is(err, ErrMismatch), errors.Is(err, ErrTooOld), errors.Is(err, beacon.ErrUnavailable),
		errors.Is(err, beacon.ErrNotYet), errors.Is(err, context.DeadlineExceeded),
		errors.Is(err, errNoEpochBeacon):
		return pubsub.ValidationIgnore
	}
	return pubsub.ValidationReject
}

// CheckReceipt checks a receipt obtained outside gossip, such as in a
// catch-up, as a gossiped one is checked: for a challenge the schedule
// called for.
func (e *Engine) CheckReceipt(ctx context.Context, r proofs.Receipt) error {
	return e.checkReceipt(ctx, r)
}

// checkReceipt recomputes the challenge a receipt names and checks that
// the schedule called for it.
func (e *Engine) checkReceipt(ctx context.Context, r proofs.Receipt) error {
	b, err := e.cfg.Beacon.Get(ctx, r.Round)
	if err != nil {
		return err
	}
	d, due := IsDue(b, r.Keeper, r.Edge, r.Kind, e.cfg.Params)
	if !due {
		return ErrNotScheduled
	}
	e.mu.Lock()
	m, ok := e.manifests[r.Edge]
	e.mu.Unlock()
	if !ok {
		return fmt.Errorf("%w of %s", ErrNoManifest, r.Edge)
	}
	// The challenge as the schedule and the manifest give it: a storage
	// challenge names its piece, which the receipt does not.
	c, ok := d.Challenge(e.cfg.Params.Network, m)
	if !ok {
		return fmt.Errorf("%w: edge %s has no %s to challenge in round %d", ErrNotOffered, r.Edge, r.Kind, r.Round)
	}
	c.Epoch, c.Attempt = r.Epoch, r.Attempt
	if err := e.check(ctx, c); err != nil && !errors.Is(err, ErrTooOld) {
		// A receipt may arrive after its challenge's window closed.
		return err
	}
	id, err := c.ID()
	if err != nil || !id.Equals(r.Challenge) {
		return ErrBadSeed
	}
	return nil
}

// acceptManifest keeps the newest manifest of each edge.
func (e *Engine) acceptManifest(_ context.Context, msg Message) {
	var m proofs.Manifest
	if err := wire.Unmarshal(msg.Payload, &m, proofs.MaxManifestSize); err != nil || m.Edge != msg.Signer {
		return
	}
	e.keepManifest(m, wire.CIDOf(msg.Payload))
}

// keepManifest keeps m if it is newer than the manifest held for its edge.
func (e *Engine) keepManifest(m proofs.Manifest, id cid.Cid) {
	e.mu.Lock()
	defer e.mu.Unlock()
	if old, ok := e.manifests[m.Edge]; !ok || old.Seq < m.Seq {
		e.manifests[m.Edge] = m
		e.manifestIDs[m.Edge] = id
		e.manifestsVersion++
	}
}

// acceptReceipt stores the receipts this node keeps: a keeper all of
// them, an edge those about itself.
func (e *Engine) acceptReceipt(_ context.Context, msg Message) {
	if !e.cfg.Keeper {
		// A keeper keeps every receipt without reading it here: the store
		// decodes it anyway.
		var r proofs.Receipt
		if err := wire.Unmarshal(msg.Payload, &r, proofs.MaxReceiptSize); err != nil || r.Edge != e.self {
			return
		}
	}
	if _, _, _, err := e.cfg.Receipts.Put(msg.Envelope); err != nil {
		e.log.Error("store receipt", "err", err)
	}
}

// markSeen records one attempt of a challenge of round; false if it was
// seen.
func (e *Engine) markSeen(id string, attempt uint32, round uint64) bool {
	key := id + "/" + strconv.FormatUint(uint64(attempt), 10)
	e.mu.Lock()
	defer e.mu.Unlock()
	if _, ok := e.seen[key]; ok {
		return false
	}
	e.seen[key] = round
	return true
}

// prune forgets the challenges whose window has closed by round: they are
// refused as too old before their duplicates are looked up.
func (e *Engine) prune(round uint64) {
	e.mu.Lock()
	defer e.mu.Unlock()
	for key, r := range e.seen {
		if r+e.cfg.Params.Window < round {
			delete(e.seen, key)
		}
	}
}

// AddManifest keeps a sealed manifest obtained outside gossip, such as a
// DHT record, after the checks a gossiped one passes.
func (e *Engine) AddManifest(env []byte) error {
	m, id, err := proofs.OpenManifest(env)
	if err != nil {
		return err
	}
	if m.Network != e.cfg.Params.Network {
		return fmt.Errorf("challenge: manifest of network %q, not %q", m.Network, e.cfg.Params.Network)
	}
	e.mu.Lock()
	old, ok := e.manifests[m.Edge]
	e.mu.Unlock()
	if ok && old.Seq < m.Seq {
		if err := LateFault(old, m, e.currentRound()); err != nil {
			return err
		}
	}
	e.keepManifest(m, id)
	return nil
}

// HasManifest reports whether the engine holds a manifest of edge.
func (e *Engine) HasManifest(edge peer.ID) bool {
	e.mu.Lock()
	defer e.mu.Unlock()
	_, ok := e.manifests[edge]
	return ok
}

// ManifestEnvelope returns the edge's own sealed manifest; nil on a keeper.
func (e *Engine) ManifestEnvelope() []byte {
	e.mu.Lock()
	defer e.mu.Unlock()
	return e.manifestEnv
}

// ManifestOf returns the manifest held for edge.
func (e *Engine) ManifestOf(edge peer.ID) (proofs.Manifest, bool) {
	e.mu.Lock()
	defer e.mu.Unlock()
	m, ok := e.manifests[edge]
	return m, ok
}

// Manifest returns the edge's own manifest.
func (e *Engine) Manifest() proofs.Manifest {
	e.mu.Lock()
	defer e.mu.Unlock()
	return e.cfg.Manifest
}

// UpdateManifest replaces the edge's own manifest with m, which must have
// a higher Seq, and publishes it at once: how an edge offers new pieces
// or declares a fault.
func (e *Engine) UpdateManifest(ctx context.Context, m proofs.Manifest) error {
	if !e.cfg.Edge {
		return errors.New("challenge: only an edge has a manifest")
	}
	env, id, err := proofs.SealManifest(e.cfg.Key, m)
	if err != nil {
		return err
	}
	e.mu.Lock()
	if m.Seq <= e.cfg.Manifest.Seq {
		e.mu.Unlock()
		return fmt.Errorf("challenge: manifest seq %d does not follow %d", m.Seq, e.cfg.Manifest.Seq)
	}
	e.cfg.Manifest, e.manifestEnv = m, env
	e.mu.Unlock()
	e.keepManifest(m, id)
	e.publishManifest(ctx)
	return nil
}

// ErrLateFault means a manifest declares a fault in a round already past
// when it arrives: it would excuse challenges whose randomness the edge
// had seen.
var ErrLateFault = errors.New("challenge: fault declared for a round already past")

// LateFault checks the faults next declares that old did not: each must
// be declared in the round now or the one before (a round of slack for
// gossip), since it excuses the piece from two rounds after its
// declaration. A piece old held healthy cannot turn faulty from the start
// (fault round 0).
func LateFault(old, next proofs.Manifest, now uint64) error {
	before := make(map[string]proofs.Piece)
	if o, ok := old.Offer(proofs.KindStorage); ok {
		for _, p := range o.Pieces {
			before[p.CID.KeyString()] = p
		}
	}
	o, _ := next.Offer(proofs.KindStorage)
	for _, p := range o.Pieces {
		prev, held := before[p.CID.KeyString()]
		if !p.Faulty || (prev.Faulty && prev.FaultRound == p.FaultRound) {
			continue
		}
		if p.FaultRound == 0 && held {
			return fmt.Errorf("%w: piece %s, held healthy, declared faulty from the start", ErrLateFault, p.CID)
		}
		if p.FaultRound != 0 && p.FaultRound+1 < now {
			return fmt.Errorf("%w: piece %s declared faulty in round %d, arrived in round %d", ErrLateFault, p.CID, p.FaultRound, now)
		}
	}
	return nil
}
