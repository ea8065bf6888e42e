package settle

import (
	"context"
	"errors"
	"maps"
	"slices"
	"strconv"

	"github.com/ipfs/go-cid"

	"github.com/aropeer/aropeer/chain"
	"github.com/aropeer/aropeer/proofs"
)

// Equivocations finds, among the receipts of epoch's batch that this
// keeper holds, the keepers that signed two receipts with different
// content for one attempt of one challenge, and returns a dispute for
// each such attempt, with both receipts' inclusion proofs.
func (s *Settler) Equivocations(epoch uint64) ([]chain.Dispute, error) {
	leaves, err := s.Leaves(epoch)
	if err != nil {
		return nil, err
	}
	byAttempt := make(map[string][]cid.Cid)
	var order []string
	err = s.cfg.Receipts.List(proofs.Filter{Epoch: &epoch}, func(id cid.Cid, r proofs.Receipt) error {
		key := string(r.Keeper) + r.Challenge.KeyString() + strconv.FormatUint(uint64(r.Attempt), 10)
		if byAttempt[key] == nil {
			order = append(order, key)
		}
		byAttempt[key] = append(byAttempt[key], id)
		return nil
	})
	if err != nil {
		return nil, err
	}
	var out []chain.Dispute
	for _, key := range order {
		ids := byAttempt[key]
		if len(ids) < 2 {
			continue
		}
		d := chain.Dispute{Kind: chain.DisputeEquivocation}
		var found int
		for _, id := range ids {
			p, err := proofs.ProveReceipt(leaves, id)
			if err != nil {
				continue // came after the batch: not provable
			}
			_, env, err := s.cfg.Receipts.Get(id)
			if err != nil {
				return nil, err
			}
			if found == 0 {
				d.A, d.ProofA = env, &p
			} else {
				d.B, d.ProofB = env, &p
			}
			if found++; found == 2 {
				out = append(out, d)
				break
			}
		}
	}
	return out, nil
}

// dispute submits the disputes the applied batch of epoch gives: the
// equivocations and the passes without evidence among its receipts. Every
// keeper that settled the epoch does so; the ledger slashes once per
// attempt and refuses the rest, which changes nothing.
func (s *Settler) dispute(ctx context.Context, epoch uint64) {
	for _, find := range []struct {
		what string
		fn   func(uint64) ([]chain.Dispute, error)
	}{{"equivocation", s.Equivocations}, {"pass without evidence", s.EvidenceDisputes}} {
		ds, err := find.fn(epoch)
		if err != nil {
			s.log.Debug("disputes not looked for", "what", find.what, "epoch", epoch, "err", err)
			continue
		}
		for _, d := range ds {
			a, err := s.cfg.Ledger.SubmitDispute(ctx, d)
			switch {
			case errors.Is(err, chain.ErrDisputeRefused):
				s.log.Debug("dispute refused", "what", find.what, "epoch", epoch, "err", err)
			case err != nil:
				s.log.Warn("dispute not submitted", "what", find.what, "epoch", epoch, "err", err)
			default:
				s.count(func(st *Stats) { st.Disputed++ })
				s.log.Warn("keeper slashed", "for", find.what, "keeper", a.ID, "epoch", epoch, "stake_left", a.Stake, "slashed", a.Slashed)
			}
		}
	}
}

// EvidenceDisputes finds, among the receipts of epoch's batch that this
// keeper holds, the passes whose evidence does not show that the edge
// answered their challenge (a keeper that signed a pass without asking),
// and returns a dispute for each whose sealed challenge this node kept.
func (s *Settler) EvidenceDisputes(epoch uint64) ([]chain.Dispute, error) {
	if len(s.cfg.Evidence) == 0 || s.cfg.Challenge == nil {
		return nil, nil
	}
	leaves, err := s.Leaves(epoch)
	if err != nil {
		return nil, err
	}
	var out []chain.Dispute
	// One listing per kind with evidence: the index gives each receipt's
	// kind, so the others are not read.
	for _, kind := range slices.Sorted(maps.Keys(s.cfg.Evidence)) {
		err := s.cfg.Receipts.List(proofs.Filter{Epoch: &epoch, Kind: kind}, func(id cid.Cid, r proofs.Receipt) error {
			d, ok, err := s.evidenceDispute(leaves, id, r)
			if ok {
				out = append(out, d)
			}
			return err
		})
		if err != nil {
			return out, err
		}
	}
	return out, nil
}

// evidenceDispute gives the dispute of receipt id of the batch with
// leaves if it is a pass whose evidence does not show that the edge
// answered, and this node kept its sealed challenge.
func (s *Settler) evidenceDispute(leaves []cid.Cid, id cid.Cid, r proofs.Receipt) (chain.Dispute, bool, error) {
	checker, ok := s.cfg.Evidence[r.Kind]
	if !ok || r.Result != proofs.Pass {
		return chain.Dispute{}, false, nil
	}
	env, ok := s.cfg.Challenge(r.Challenge)
	if !ok {
		return chain.Dispute{}, false, nil
	}
	c, _, err := proofs.OpenChallenge(env)
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
