package settle

import (
	"context"
	"encoding/binary"
	"errors"
	"fmt"
	"sync"

	"github.com/ipfs/go-cid"
	"github.com/libp2p/go-libp2p/core/peer"

	"github.com/aropeer/aropeer/chain"
	"github.com/aropeer/aropeer/challenge"
	"github.com/aropeer/aropeer/proofs"
	"github.com/aropeer/aropeer/store"
	"github.com/aropeer/aropeer/wire"
)

// leavesNamespace keeps, per epoch, the leaves of the batch this keeper
// signed: the receipts it proves inclusion against, even after late
// receipts of the epoch reach the store.
const leavesNamespace = "settle"

// ValidateSignature judges a gossiped batch signature: of this network,
// by a keeper of the registry. Whether the batch it names is right is for
// each keeper to recompute.
func (s *Settler) ValidateSignature(ctx context.Context, payload []byte, signer peer.ID) error {
	var sig proofs.BatchSignature
	if err := wire.Unmarshal(payload, &sig, proofs.MaxBatchSignatureSize); err != nil {
		return err
	}
	if err := sig.Validate(); err != nil {
		return err
	}
	if sig.Network != s.cfg.Params.Network {
		return fmt.Errorf("settle: batch signature of network %q", sig.Network)
	}
	keepers, err := s.cfg.Registry(ctx, sig.Epoch)
	if err != nil {
		return fmt.Errorf("%w: registry: %w", errUntimely, err)
	}
	for _, k := range keepers {
		if k.ID == signer && k.Stake > 0 {
			return nil
		}
	}
	return fmt.Errorf("settle: batch signed by %s, not a staked keeper", signer)
}

// acceptSignature gathers a batch signature; a keeper that has not signed
// for the epoch recomputes the batch, and any keeper that holds the batch
// submits it once its signatures reach quorum.
func (s *Settler) acceptSignature(ctx context.Context, m challenge.Message, wg *sync.WaitGroup) {
	var sig proofs.BatchSignature
	if err := wire.Unmarshal(m.Payload, &sig, proofs.MaxBatchSignatureSize); err != nil || sig.Validate() != nil {
		return
	}
	signer := m.Signer
	id := sig.Batch.KeyString()
	s.gather(ctx, sig.Epoch, id, nil, signer, m.Envelope)
	s.mu.Lock()
	_, signed := s.signed[sig.Epoch]
	judged := s.judged[sig.Epoch][id]
	if s.judged[sig.Epoch] == nil {
		s.judged[sig.Epoch] = make(map[string]bool)
	}
	s.judged[sig.Epoch][id] = true
	s.mu.Unlock()
	if s.cfg.Keeper && !signed && !judged && signer != s.self {
		wg.Go(func() { s.consider(ctx, sig.Epoch, sig.Batch, signer) })
	}
}

// gather adds a signature of the batch of epoch named id, and the batch
// itself once this keeper has built it (b, nil until then), and submits
// the batch when its signatures hold 2/3 of the keeper stake. Submission
// is idempotent on the ledger, so every keeper that sees a quorum may
// submit: a leader that dies after collecting signatures does not stop
// the epoch.
func (s *Settler) gather(ctx context.Context, epoch uint64, id string, b *proofs.Batch, signer peer.ID, env []byte) {
	s.mu.Lock()
	byID := s.pending[epoch]
	if byID == nil {
		byID = make(map[string]*proposal)
		s.pending[epoch] = byID
	}
	p := byID[id]
	if p == nil {
		p = &proposal{sigs: make(map[peer.ID][]byte)}
		byID[id] = p
	}
	if b != nil {
		p.batch = b
	}
	p.sigs[signer] = env
	s.mu.Unlock()
	s.submit(ctx, epoch, p)
}

// submit sends p, a proposal of epoch's batch, to the ledger once this
// keeper holds the batch and signatures of 2/3 of the keeper stake. When
// the registry or the ledger cannot be reached, p waits for the next
// round (resubmit): its signatures may all be in already, and none would
// come to try again.
func (s *Settler) submit(ctx context.Context, epoch uint64, p *proposal) {
	s.mu.Lock()
	if p.batch == nil || p.submitted || !s.cfg.Keeper {
		s.mu.Unlock()
		return
	}
	p.retry = false
	sb := proofs.SignedBatch{Batch: *p.batch}
	for _, sig := range p.sigs {
		sb.Signatures = append(sb.Signatures, sig)
	}
	s.mu.Unlock()
	keepers, err := s.cfg.Registry(ctx, epoch)
	if err != nil {
		s.log.Warn("batch quorum not checked: trying again next round", "epoch", epoch, "err", err)
		s.later(p)
		return
	}
	stakes := make(map[peer.ID]uint64, len(keepers))
	for _, k := range keepers {
		stakes[k.ID] = k.Stake
	}
	signers, _ := sb.Signers()
	if _, _, ok := proofs.Quorum(signers, stakes); !ok {
		return
	}
	s.mu.Lock()
	if p.submitted {
		s.mu.Unlock()
		return
	}
	p.submitted = true
	s.mu.Unlock()
	s.count(func(st *Stats) { st.Submitted++ })
	rec, err := s.cfg.Ledger.SubmitBatch(ctx, sb)
	if err != nil {
		s.mu.Lock()
		p.submitted = false // another signature may yet make it pass
		s.mu.Unlock()
		if refused(err) {
			s.log.Warn("batch refused by the ledger", "epoch", epoch, "signers", len(signers), "err", err)
			return
		}
		s.log.Warn("batch not submitted: trying again next round", "epoch", epoch, "signers", len(signers), "err", err)
		s.later(p)
		return
	}
	s.count(func(st *Stats) { st.Applied++ })
	s.markApplied(epoch)
	s.log.Info("epoch batch applied", "epoch", epoch, "height", rec.Height, "signers", len(signers), "receipts", sb.Batch.Receipts)
	s.prune(epoch)
	s.dispute(ctx, epoch)
}

// refused reports whether the ledger judged a batch and will refuse it
// again, rather than failed to answer.
func refused(err error) bool {
	for _, e := range []error{chain.ErrConflict, chain.ErrNoQuorum, chain.ErrEpochOrder, chain.ErrInvalid} {
		if errors.Is(err, e) {
			return true
		}
	}
	return false
}

// later marks p to be submitted again next round.
func (s *Settler) later(p *proposal) {
	s.mu.Lock()
	p.retry = true
	s.mu.Unlock()
}

// resubmit submits again, once a round, the proposals that found no
// registry or no ledger.
func (s *Settler) resubmit(ctx context.Context, wg *sync.WaitGroup) {
	type due struct {
		epoch uint64
		p     *proposal
	}
	var dues []due
	s.mu.Lock()
	for epoch, byID := range s.pending {
		for _, p := range byID {
			if p.retry && !p.submitted {
				dues = append(dues, due{epoch, p})
			}
		}
	}
	s.mu.Unlock()
	for _, d := range dues {
		wg.Go(func() { s.submit(ctx, d.epoch, d.p) })
	}
}

// republishAfter is how many rounds a keeper waits for the ledger to
// hold an epoch it signed before it publishes its signature again.
const republishAfter = 2

// republish publishes again, every republishAfter rounds, this keeper's
// signature of each epoch it signed and the ledger does not hold yet.
// Gossip delivers a signature once: a keeper that could not judge it then
// (its registry did not answer) or that missed it would never co-sign the
// batch nor count the signature, and with every signature published, the
// epoch would stay unsettled.
func (s *Settler) republish(ctx context.Context, round uint64, wg *sync.WaitGroup) {
	type due struct {
		epoch uint64
		sig   *signature
	}
	var dues []due
	s.mu.Lock()
	for epoch, sig := range s.signed {
		if !sig.applied && !sig.busy && round >= sig.round+republishAfter {
			sig.busy = true
			dues = append(dues, due{epoch, sig})
		}
	}
	s.mu.Unlock()
	for _, d := range dues {
		wg.Go(func() {
			if s.applied(ctx, d.epoch) {
				s.markApplied(d.epoch)
				s.prune(d.epoch)
			} else if err := s.cfg.BatchTopic.Publish(ctx, d.sig.env); err != nil {
				s.log.Warn("batch signature not published again", "epoch", d.epoch, "err", err)
			} else {
				s.log.Info("batch signature published again: the ledger does not hold the epoch", "epoch", d.epoch)
			}
			s.mu.Lock()
			d.sig.busy, d.sig.round = false, round
			s.mu.Unlock()
		})
	}
}

// markApplied records that the ledger holds a batch of epoch: this
// keeper's signature of it need not be published again.
func (s *Settler) markApplied(epoch uint64) {
	s.mu.Lock()
	defer s.mu.Unlock()
	if sig := s.signed[epoch]; sig != nil {
		sig.applied = true
	}
}

// prune forgets the signatures of epochs settled long ago.
func (s *Settler) prune(settled uint64) {
	s.mu.Lock()
	defer s.mu.Unlock()
	for e := range s.pending {
		if e+4 < settled {
			delete(s.pending, e)
			delete(s.signed, e)
			delete(s.settling, e)
			delete(s.judged, e)
			delete(s.found, e)
		}
	}
}

// consider recomputes the batch of epoch that a keeper signed, named
// want, and co-signs it if this keeper's own stores give the same; if
// not, it fetches what that keeper holds and it lacks, and tries once
// more.
func (s *Settler) consider(ctx context.Context, epoch uint64, want cid.Cid, from peer.ID) {
	if cur := s.cfg.Params.EpochOf(s.info.RoundAt(s.cfg.Clock.Now())); epoch >= cur {
		return // the epoch has not ended: no honest keeper proposes yet
	}
	s.cosign.Lock()
	defer s.cosign.Unlock()
	s.mu.Lock()
	_, signed := s.signed[epoch]
	s.mu.Unlock()
	if signed {
		return
	}
	for attempt := range 2 {
		mine, err := s.build(ctx, epoch)
		if err != nil {
			s.log.Error("batch not recomputed", "epoch", epoch, "err", err)
			return
		}
		id, err := mine.batch.ID()
		if err == nil && id.Equals(want) {
			s.sign(ctx, mine)
			s.count(func(st *Stats) { st.Cosigned++ })
			return
		}
		if attempt == 0 && s.cfg.CatchUp != nil {
			if err := s.cfg.CatchUp(ctx, epoch, []peer.ID{from}); err != nil {
				s.log.Debug("catch-up with the proposer incomplete", "epoch", epoch, "from", from, "err", err)
			}
			continue
		}
		s.count(func(st *Stats) { st.Mismatched++ })
		s.log.Warn("not co-signing a batch unlike this keeper's", "epoch", epoch, "from", from,
			"theirs", want, "ours", id, "our_receipts", mine.batch.Receipts, "our_edges", len(mine.batch.Results))
	}
}

// sign keeps the leaves of the batch this keeper built, looks for its
// disputes, to be submitted once it is applied, then signs it and
// publishes the signature, once per epoch. The caller holds s.cosign.
func (s *Settler) sign(ctx context.Context, bt built) {
	b := bt.batch
	s.mu.Lock()
	_, done := s.signed[b.Epoch]
	s.mu.Unlock()
	if done {
		return
	}
	if err := s.keepLeaves(b.Epoch, bt.leaves); err != nil {
		s.log.Error("batch leaves not kept: not signing", "epoch", b.Epoch, "err", err)
		return
	}
	env, err := proofs.SignBatch(s.cfg.Key, b)
	if err != nil {
		s.log.Error("batch not signed", "epoch", b.Epoch, "err", err)
		return
	}
	ds, err := s.disputesOf(bt.leaves, bt.ids, bt.receipts)
	if err != nil {
		s.log.Debug("disputes not looked for", "epoch", b.Epoch, "err", err)
	}
	id, _ := b.ID()
	s.mu.Lock()
	s.signed[b.Epoch] = &signature{env: env, round: s.info.RoundAt(s.cfg.Clock.Now())}
	if err == nil {
		s.found[b.Epoch] = ds
	}
	s.mu.Unlock()
	s.gather(ctx, b.Epoch, id.KeyString(), &b, s.self, env)
	if err := s.cfg.BatchTopic.Publish(ctx, env); err != nil {
		s.log.Warn("batch signature not published", "epoch", b.Epoch, "err", err)
	}
}

// keepLeaves stores the leaves of the batch of epoch, length-prefixed.
func (s *Settler) keepLeaves(epoch uint64, leaves []cid.Cid) error {
	var v []byte
	for _, id := range leaves {
		v = binary.AppendUvarint(v, uint64(id.ByteLen()))
		v = append(v, id.Bytes()...)
	}
	b := s.leaves.Batch()
	b.Set(epochKey(epoch), v)
	return b.Commit()
}

// Leaves returns the leaves of the batch this keeper signed for epoch, or
// an error wrapping store.ErrNotFound.
func (s *Settler) Leaves(epoch uint64) ([]cid.Cid, error) {
	return ReadLeaves(s.leaves, epoch)
}

// ReadLeaves reads the leaves kept for epoch in ns.
func ReadLeaves(ns store.Namespace, epoch uint64) ([]cid.Cid, error) {
	v, err := ns.Get(epochKey(epoch))
	if err != nil {
		return nil, fmt.Errorf("settle: leaves of epoch %d: %w", epoch, err)
	}
	var out []cid.Cid
	for len(v) > 0 {
		n, w := binary.Uvarint(v)
		if w <= 0 || n > uint64(len(v)-w) {
			return nil, fmt.Errorf("settle: leaves of epoch %d: corrupt record", epoch)
		}
		id, err := cid.Cast(v[w : w+int(n)])
		if err != nil {
			return nil, fmt.Errorf("settle: leaves of epoch %d: %w", epoch, err)
		}
		out = append(out, id)
		v = v[w+int(n):]
	}
	return out, nil
}

func epochKey(epoch uint64) []byte { return binary.BigEndian.AppendUint64([]byte("l/"), epoch) }

// ErrNoLeaves means this node cannot tell a batch's leaves: it neither
// signed the batch nor holds exactly its receipts.
var ErrNoLeaves = errors.New("settle: the batch's leaves are not known here")

// Prove gives the inclusion proof of receipt id in the batch applied for
// its epoch, checked against that batch before it is returned.
func (s *Settler) Prove(ctx context.Context, id cid.Cid) (proofs.InclusionProof, proofs.Batch, error) {
	r, _, err := s.cfg.Receipts.Get(id)
	if err != nil {
		return proofs.InclusionProof{}, proofs.Batch{}, err
	}
	rec, err := s.cfg.Ledger.Batch(ctx, r.Epoch)
	if err != nil {
		return proofs.InclusionProof{}, proofs.Batch{}, err
	}
	b := rec.Signed.Batch
	leaves, err := s.Leaves(r.Epoch)
	if errors.Is(err, store.ErrNotFound) {
		// Not signed here; the store's receipts serve if they are exactly
		// the batch's.
		leaves, err = s.cfg.Receipts.CIDs(r.Epoch, "")
		if err == nil && !SameRoot(b, leaves) {
			err = fmt.Errorf("%w: this node holds %d receipts of epoch %d, the batch %d", ErrNoLeaves, len(leaves), r.Epoch, b.Receipts)
		}
	}
	if err != nil {
		return proofs.InclusionProof{}, b, err
	}
	p, err := proofs.ProveReceipt(leaves, id)
	if err != nil {
		return proofs.InclusionProof{}, b, err
	}
	if err := proofs.VerifyInBatch(b, p); err != nil {
		return proofs.InclusionProof{}, b, err
	}
	return p, b, nil
}

// SameRoot reports whether leaves are exactly the leaves of b.
func SameRoot(b proofs.Batch, leaves []cid.Cid) bool {
	leaves = proofs.SortedLeaves(leaves)
	if uint64(len(leaves)) != b.Receipts {
		return false
	}
	root := proofs.NewTree(leaves).Root()
	return string(root[:]) == string(b.Root)
}
