package sim

import (
	"context"
	"errors"
	"fmt"
	"log/slog"
	"math/rand/v2"
	"strings"
	"sync/atomic"
	"time"

	"github.com/ipfs/go-cid"
	mocknet "github.com/libp2p/go-libp2p/p2p/net/mock"

	"github.com/aropeer/aropeer/chain"
	"github.com/aropeer/aropeer/challenge"
	"github.com/aropeer/aropeer/node"
	"github.com/aropeer/aropeer/node/config"
	"github.com/aropeer/aropeer/proofs"
)

// runner drives a started network through the scenario's epochs.
type runner struct {
	s        Scenario
	nw       config.Network
	mn       mocknet.Mocknet
	members  []*member
	boot     *node.Node
	progress Progress
	log      *slog.Logger

	params     challenge.Params
	firstEpoch uint64 // the scenario's first epoch
	firstRound uint64
	from       *atomic.Uint64 // firstRound, for the strategies
	lastEpoch  uint64
	// doubled are the receipts an equivocator has signed twice, and
	// firstDouble the round of its first.
	doubled     map[cid.Cid]bool
	firstDouble map[int]uint64
	// forgers forge challenges; shunned is the round (from the first)
	// in which most honest nodes' gossip scored each below zero.
	forgers []*forger
	shunned map[int]uint64
	// late counts the rounds in which the machine could not keep up
	// (Report.LateRounds); machine, nil on a virtual clock, tells how
	// long the goroutines waited for a core.
	late    int
	machine *machine
	// round is the last round the runner saw.
	round uint64
	// slashed holds, by epoch, the stake the ledger had slashed from
	// each keeper (by index) in the epoch's last round.
	slashed map[uint64]map[int]uint64
}

// inScenario reports whether round is in the scenario's epochs.
func (r *runner) inScenario(round uint64) bool {
	return round >= r.firstRound && round < r.params.FirstRound(r.lastEpoch+1)
}

// settleRounds is how long after the last epoch the run waits for its
// batch: the grace, and room for two leaders to time out.
func (r *runner) settleRounds() uint64 {
	return r.nw.BatchGrace + 3*r.nw.LeaderTimeout + r.nw.EpochRounds
}

// run drives the network until every batch of the scenario settled or
// the wait for them ran out; the caller reads the report (collect) once
// the nodes have stopped.
func (r *runner) run(ctx context.Context) error {
	r.params = challenge.Params{EpochRounds: r.nw.EpochRounds}
	r.doubled, r.firstDouble = map[cid.Cid]bool{}, map[int]uint64{}
	r.shunned = map[int]uint64{}
	for _, m := range r.members {
		if m.strategy.Name == "forger" {
			f, err := r.startForger(ctx, m)
			if err != nil {
				return err
			}
			r.forgers = append(r.forgers, f)
		}
	}
	watch := r.boot.Beacon().Watch(ctx)
	for b := range watch {
		if r.firstEpoch == 0 {
			// The first whole epoch: every node is up by its first round.
			r.firstEpoch = r.params.EpochOf(b.Round) + 1
			r.firstRound = r.params.FirstRound(r.firstEpoch)
			r.lastEpoch = r.firstEpoch + uint64(r.s.Epochs) - 1
			r.from.Store(r.firstRound)
			r.follow()
		}
		r.round = b.Round
		info := r.boot.Beacon().Info()
		lateBeacon := time.Since(info.TimeOf(b.Round)) > info.Period/2
		// Looked at each round, the machine tells of the round before.
		waited := r.machine.behind(info.Period / 10)
		if b.Round >= r.firstRound && lateBeacon || b.Round > r.firstRound && waited {
			r.late++
		}
		r.report(b.Round)
		r.forge(ctx, b.Round)
		end := r.params.FirstRound(r.lastEpoch + 1)
		if b.Round >= end+r.nw.BatchGrace && r.settled(ctx) {
			break
		}
		if b.Round >= end+r.settleRounds() {
			r.log.Warn("not every batch settled", "last_epoch", r.lastEpoch)
			break
		}
		// The rest of the runner's work waits for a quarter round before
		// the next: not a round's start, where challenges begin and gossip
		// scores are refreshed, nor half a round in, where bandwidth
		// probes begin. What the runner changes or reads at the instant
		// the nodes act would race them, and a run would not repeat.
		select {
		case <-time.After(time.Until(info.TimeOf(b.Round).Add(info.Period * 3 / 4))):
		case <-ctx.Done():
		}
		r.equivocate(b.Round)
		r.noteShunned(b.Round)
		r.noteSlashed(ctx, b.Round)
	}
	if err := ctx.Err(); err != nil {
		return fmt.Errorf("sim: stopped: %w", context.Cause(ctx))
	}
	if r.firstEpoch == 0 {
		return errors.New("sim: the beacon gave no round")
	}
	return nil
}

// report tells the progress callback where round is.
func (r *runner) report(round uint64) {
	if r.progress == nil {
		return
	}
	w := Where{Epochs: r.s.Epochs, Rounds: r.nw.EpochRounds, Late: r.late, Started: len(r.members), Nodes: len(r.members)}
	switch epoch := r.params.EpochOf(round); {
	case round < r.firstRound:
		// Epoch 0: the network starts.
	case epoch > r.lastEpoch:
		w.Epoch, w.Round, w.Rounds = r.s.Epochs+1, round-r.params.FirstRound(r.lastEpoch+1), r.settleRounds()
	default:
		w.Epoch, w.Round = int(epoch-r.firstEpoch)+1, round-r.params.FirstRound(epoch)+1
	}
	r.progress(w)
}

// where says where the last round seen, one of the scenario's or after
// them, is, for a report.
func (r *runner) where() string {
	if total := uint64(r.s.Epochs) * r.nw.EpochRounds; r.round-r.firstRound < total {
		return fmt.Sprintf("in round %d of the scenario's %d", r.round-r.firstRound+1, total)
	}
	return "while the last batches settled"
}

// awayIn reports whether offline edge m is away in round: with its
// strategy's share as chance, drawn from the seed, during the scenario's
// epochs.
func (r *runner) awayIn(m *member, round uint64) bool {
	rng := rand.New(rand.NewPCG(r.s.Seed^uint64(m.index), round))
	return r.inScenario(round) && rng.Float64() < m.strategy.Share
}

// follow hands each offline edge its rounds away, once they are known.
func (r *runner) follow() {
	for _, m := range r.members {
		if m.presence != nil {
			m.presence.follow(func(round uint64) bool { return r.awayIn(m, round) })
		}
	}
}

// equivocate has each equivocator keeper sign a second receipt, unlike
// the first, for the challenges of the scenario's epochs it decided, and
// keep it in its store, which the other keepers catch up from. The copy
// keeps the verdict (only its reason differs), so that the edges are
// judged as before and only the keeper's signature is at stake.
func (r *runner) equivocate(round uint64) {
	for _, m := range r.members {
		if m.strategy.Name != "equivocator" || !r.inScenario(round) {
			continue
		}
		var twins [][]byte
		_ = m.node.Receipts().List(proofs.Filter{Keeper: m.id}, func(id cid.Cid, rc proofs.Receipt) error {
			if rc.Round < r.firstRound || r.doubled[id] || strings.HasSuffix(rc.Reason, conflictMark) {
				return nil
			}
			r.doubled[id] = true
			rc.Reason = clip(rc.Reason, 200) + conflictMark
			env, _, err := proofs.SealReceipt(m.key, rc)
			if err == nil {
				twins = append(twins, env)
			}
			return nil
		})
		for _, env := range twins {
			if _, _, _, err := m.node.Receipts().Put(env); err != nil {
				r.log.Warn("equivocator: store its second receipt", "keeper", m.index, "err", err)
				continue
			}
			if _, ok := r.firstDouble[m.index]; !ok {
				r.firstDouble[m.index] = round - r.firstRound
			}
		}
	}
}

// forge has each forger gossip an unscheduled challenge every round of
// the scenario's epochs.
func (r *runner) forge(ctx context.Context, round uint64) {
	if !r.inScenario(round) {
		return
	}
	for _, f := range r.forgers {
		f.forge(ctx, r, round)
	}
}

// noteSlashed notes, in the last round of each of the scenario's epochs,
// the stake the ledger has slashed from each keeper so far.
func (r *runner) noteSlashed(ctx context.Context, round uint64) {
	epoch := r.params.EpochOf(round)
	if !r.inScenario(round) || round+1 != r.params.FirstRound(epoch+1) {
		return
	}
	ledger := r.boot.Ledger()
	if ledger == nil {
		return
	}
	by := map[int]uint64{}
	for _, m := range r.members {
		if m.role != config.RoleKeeper {
			continue
		}
		if a, err := ledger.Account(ctx, m.id); err == nil {
			by[m.index] = a.Slashed
		}
	}
	if r.slashed == nil {
		r.slashed = map[uint64]map[int]uint64{}
	}
	r.slashed[epoch] = by
}

// slashedIn splits total, the stake the ledger slashed from keeper by the
// end of the run, by the epoch in which it did, as noteSlashed saw it;
// what came after the last epoch's end counts in the last.
func (r *runner) slashedIn(keeper int, total uint64) []uint64 {
	in := make([]uint64, r.s.Epochs)
	var before uint64
	for i := range in {
		by := total
		if i < len(in)-1 {
			by = before // an epoch whose end the runner missed slashed nothing yet
			if seen, ok := r.slashed[r.firstEpoch+uint64(i)]; ok {
				by = max(seen[keeper], before)
			}
		}
		by = min(by, total)
		in[i] = by - before
		before = by
	}
	return in
}

// noteShunned notes the round in which the honest nodes first shun each
// forger.
func (r *runner) noteShunned(round uint64) {
	if !r.inScenario(round) {
		return
	}
	for _, f := range r.forgers {
		if _, ok := r.shunned[f.m.index]; !ok && f.shunned(r) {
			r.shunned[f.m.index] = round - r.firstRound
		}
	}
}

// conflictMark ends the reason of an equivocator's second receipt.
const conflictMark = " (signed twice)"

// settled reports whether the ledger holds a batch for every epoch of
// the scenario.
func (r *runner) settled(ctx context.Context) bool {
	ledger := r.boot.Ledger()
	if ledger == nil {
		return false
	}
	for e := r.firstEpoch; e <= r.lastEpoch; e++ {
		if _, err := ledger.Batch(ctx, e); err != nil {
			return false
		}
	}
	return true
}

// collect reads the batches from the ledger and the receipts from the
// keepers, and builds the report.
func (r *runner) collect(ctx context.Context) (*Report, error) {
	ledger := r.boot.Ledger()
	if ledger == nil {
		return nil, errors.New("sim: the bootstrap node has no ledger")
	}
	rep := newReport(r.s, r.firstEpoch, r.firstRound, r.nw.EpochRounds)
	rep.LateRounds = r.late
	byID := map[string]*NodeReport{}
	for _, m := range r.members {
		if m.role == config.RoleBootstrap {
			continue
		}
		nr := rep.addNode(m)
		byID[m.id.String()] = nr
	}
	for e := r.firstEpoch; e <= r.lastEpoch; e++ {
		rec, err := ledger.Batch(ctx, e)
		if errors.Is(err, chain.ErrNotFound) {
			rep.Missing = append(rep.Missing, e)
			continue
		}
		if err != nil {
			return nil, fmt.Errorf("sim: read the batch of epoch %d: %w", e, err)
		}
		rep.Batches++
		b := rec.Signed.Batch
		for _, res := range b.Results {
			if nr, ok := byID[res.Edge.String()]; ok {
				nr.addResult(int(e-r.firstEpoch), res)
			}
		}
		for _, k := range b.Keepers {
			if nr, ok := byID[k.Keeper.String()]; ok {
				nr.Reward += k.Reward
				nr.Balance[e-r.firstEpoch] += int64(k.Reward)
			}
		}
	}
	// What keepers lost to disputes, in the epoch the ledger took it.
	for _, m := range r.members {
		if m.role != config.RoleKeeper {
			continue
		}
		nr := byID[m.id.String()]
		if a, err := ledger.Account(ctx, m.id); err == nil {
			nr.Slashed = a.Slashed
			for i, lost := range r.slashedIn(m.index, a.Slashed) {
				nr.Balance[i] -= int64(lost)
			}
		}
		if round, ok := r.firstDouble[m.index]; ok && nr.Slashed > 0 {
			nr.DetectedRound = int64(round)
		}
		if round, ok := r.shunned[m.index]; ok {
			nr.Shunned, nr.DetectedRound = true, int64(round)
		}
		if m.strategy.Name == "lazy-keeper" && nr.Slashed > 0 {
			// Its first pass without a heartbeat.
			_ = m.node.Receipts().List(proofs.Filter{Keeper: m.id, Kind: proofs.KindLiveness}, func(_ cid.Cid, rc proofs.Receipt) error {
				if rc.Result == proofs.Pass && len(rc.Evidence) == 0 && rc.Round >= r.firstRound {
					if d := int64(rc.Round - r.firstRound); nr.DetectedRound < 0 || d < nr.DetectedRound {
						nr.DetectedRound = d
					}
				}
				return nil
			})
		}
	}
	// The first failing receipt of each edge, from every keeper's store.
	for _, m := range r.members {
		if m.role != config.RoleKeeper {
			continue
		}
		err := m.node.Receipts().List(proofs.Filter{}, func(_ cid.Cid, rc proofs.Receipt) error {
			nr, ok := byID[rc.Edge.String()]
			if !ok || rc.Result != proofs.Fail || rc.Round < r.firstRound {
				return nil
			}
			nr.noteFail(rc.Kind, rc.Round-r.firstRound, rc.Reason)
			return nil
		})
		if err != nil {
			return nil, fmt.Errorf("sim: read receipts: %w", err)
		}
	}
	rep.finish()
	rep.predict(r.nw)
	return rep, nil
}
