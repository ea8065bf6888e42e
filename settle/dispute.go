package settle

import (
	"context"
	"errors"
	"strconv"

	"github.com/ipfs/go-cid"

	"github.com/aropeer/aropeer/chain"
	"github.com/aropeer/aropeer/proofs"
)

// Disputes finds, among the receipts of epoch's batch that this keeper
// holds, the keepers that signed two receipts with different content for
// one attempt of one challenge (equivocations), and the passes whose
// evidence does not show that the edge answered their challenge (a
// keeper that signed a pass without asking), and returns a dispute for
// each, with the receipts' inclusion proofs: for an equivocation, both;
// for a pass, if this node kept the sealed challenge.
func (s *Settler) Disputes(epoch uint64) ([]chain.Dispute, error) {
	leaves, err := s.Leaves(epoch)
	if err != nil {
		return nil, err
	}
	f := s.newFinder(leaves)
	if err := s.cfg.Receipts.List(proofs.Filter{Epoch: &epoch}, f.add); err != nil {
		return nil, err
	}
	return f.disputes()
}

// disputesOf is Disputes of the receipts a batch with leaves was built
// from, ids[i] naming receipts[i]: the keeper that signs a batch looks for
// its disputes then, and so reads the epoch's receipts once, not twice.
func (s *Settler) disputesOf(leaves, ids []cid.Cid, receipts []proofs.Receipt) ([]chain.Dispute, error) {
	f := s.newFinder(leaves)
	for i, id := range ids {
		if err := f.add(id, receipts[i]); err != nil {
			return nil, err
		}
	}
	return f.disputes()
}

// finder looks for disputes among receipts given one at a time.
type finder struct {
	s         *Settler
	leaves    []cid.Cid
	byAttempt map[string][]cid.Cid
	order     []string
	evidence  []chain.Dispute
}

func (s *Settler) newFinder(leaves []cid.Cid) *finder {
	return &finder{s: s, leaves: leaves, byAttempt: make(map[string][]cid.Cid)}
}

func (f *finder) add(id cid.Cid, r proofs.Receipt) error {
	key := string(r.Keeper) + r.Challenge.KeyString() + strconv.FormatUint(uint64(r.Attempt), 10)
	if f.byAttempt[key] == nil {
		f.order = append(f.order, key)
	}
	f.byAttempt[key] = append(f.byAttempt[key], id)
	d, ok, err := f.s.evidenceDispute(f.leaves, id, r)
	if ok {
		f.evidence = append(f.evidence, d)
	}
	return err
}

// disputes returns the equivocations, then the passes without evidence.
func (f *finder) disputes() ([]chain.Dispute, error) {
	var out []chain.Dispute
	for _, key := range f.order {
		if ids := f.byAttempt[key]; len(ids) >= 2 {
			d, ok, err := f.s.equivocation(f.leaves, ids)
			if err != nil {
				return nil, err
			}
			if ok {
				out = append(out, d)
			}
		}
	}
	return append(out, f.evidence...), nil
}

// equivocation gives the dispute of two of ids, receipts of one attempt,
// that are in the batch with leaves.
func (s *Settler) equivocation(leaves, ids []cid.Cid) (chain.Dispute, bool, error) {
	d := chain.Dispute{Kind: chain.DisputeEquivocation}
	var found int
	for _, id := range ids {
		p, err := proofs.ProveReceipt(leaves, id)
		if err != nil {
			continue // came after the batch: not provable
		}
		_, env, err := s.cfg.Receipts.Get(id)
		if err != nil {
			return chain.Dispute{}, false, err
		}
		if found == 0 {
			d.A, d.ProofA = env, &p
		} else {
			d.B, d.ProofB = env, &p
			return d, true, nil
		}
		found++
	}
	return chain.Dispute{}, false, nil
}

// dispute submits the disputes the applied batch of epoch gives: those
// this keeper found when it signed the batch, or, if it did not, those it
// finds now. Every keeper that settled the epoch does so; the ledger
// slashes once per attempt and refuses the rest, which changes nothing.
func (s *Settler) dispute(ctx context.Context, epoch uint64) {
	s.mu.Lock()
	ds, found := s.found[epoch]
	delete(s.found, epoch)
	s.mu.Unlock()
	if !found {
		var err error
		if ds, err = s.Disputes(epoch); err != nil {
			s.log.Debug("disputes not looked for", "epoch", epoch, "err", err)
		}
	}
	for _, d := range ds {
		a, err := s.cfg.Ledger.SubmitDispute(ctx, d)
		switch {
		case errors.Is(err, chain.ErrDisputeRefused):
			s.log.Debug("dispute refused", "what", d.Kind, "epoch", epoch, "err", err)
		case err != nil:
			s.log.Warn("dispute not submitted", "what", d.Kind, "epoch", epoch, "err", err)
		default:
			s.count(func(st *Stats) { st.Disputed++ })
			s.log.Warn("keeper slashed", "for", d.Kind, "keeper", a.ID, "epoch", epoch, "stake_left", a.Stake, "slashed", a.Slashed)
		}
	}
}

// evidenceDispute gives the dispute of receipt id of the batch with
// leaves if it is a pass whose evidence does not show that the edge
// answered, and this node kept its sealed challenge.
func (s *Settler) evidenceDispute(leaves []cid.Cid, id cid.Cid, r proofs.Receipt) (chain.Dispute, bool, error) {
	checker, ok := s.cfg.Evidence[r.Kind]
	if !ok || r.Result != proofs.Pass || s.cfg.Challenge == nil {
		return chain.Dispute{}, false, nil
	}
	env, ok := s.cfg.Challenge(r.Challenge)
	if !ok {
		return chain.Dispute{}, false, nil
	}
	c, err := proofs.KeptChallenge(env, r.Challenge)
	if err != nil {
		return chain.Dispute{}, false, nil
	}
	c.Attempt = r.Attempt
	if checker.CheckEvidence(c, r) == nil {
		return chain.Dispute{}, false, nil
	}
	p, err := proofs.ProveReceipt(leaves, id)
	if err != nil {
		return chain.Dispute{}, false, nil // came after the batch: not provable
	}
	_, sealed, err := s.cfg.Receipts.Get(id)
	if err != nil {
		return chain.Dispute{}, false, err
	}
	return chain.Dispute{Kind: chain.DisputeEvidence, A: sealed, ProofA: &p, Challenge: env}, true, nil
}
