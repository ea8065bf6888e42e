package challenge

import (
	"context"
	"errors"
	"fmt"
	"sync"

	"github.com/ipfs/go-cid"
	"github.com/libp2p/go-libp2p/core/network"
	"github.com/libp2p/go-libp2p/core/protocol"

	"github.com/aropeer/aropeer/beacon"
	"github.com/aropeer/aropeer/proofs"
	"github.com/aropeer/aropeer/wire"
)

// round issues what the schedule of b gives this keeper, and the retries
// due in it.
func (e *Engine) round(ctx context.Context, b beacon.Beacon, wg *sync.WaitGroup) {
	var work []proofs.Challenge
	cs, err := e.committeesFor(ctx, e.cfg.Params.EpochOf(b.Round))
	if err != nil {
		// No beacon for the epoch's first round: no committees, so no
		// challenges this epoch. Nobody is penalised for it.
		e.log.Debug("no committees for the epoch", "round", b.Round, "err", err)
	} else {
		manifests, version := e.manifestSnapshot()
		for _, d := range Schedule(b, cs.forEdges(manifests, version), manifests, e.cfg.Params) {
			if d.Keeper == e.self {
				if c, ok := d.Challenge(e.cfg.Params.Network, manifests[d.Edge]); ok {
					work = append(work, c)
				}
			}
		}
	}
	e.mu.Lock()
	for r, list := range e.retries {
		if r <= b.Round {
			work = append(work, list...)
			delete(e.retries, r)
		}
	}
	e.mu.Unlock()

	for _, c := range work {
		select {
		case e.slots <- struct{}{}:
		case <-ctx.Done():
			return
		}
		wg.Go(func() {
			defer func() { <-e.slots }()
			e.attempt(ctx, c, b.Round)
		})
	}
}

// attempt runs one attempt of c in round now: publish it, run the kind's
// verifier against the edge, and sign, store and gossip the receipt. A
// timeout schedules the next attempt in the next round, until the retries
// run out and the challenge fails.
func (e *Engine) attempt(ctx context.Context, c proofs.Challenge, now uint64) {
	v, ok := e.verifiers[c.Kind]
	if !ok {
		e.log.Warn("no verifier for a scheduled kind", "kind", c.Kind)
		return
	}
	env, _, err := proofs.SealChallenge(e.cfg.Key, c)
	if err != nil {
		e.log.Error("seal challenge", "err", err)
		return
	}
	id, err := c.ID()
	if err != nil {
		e.log.Error("challenge id", "err", err)
		return
	}
	if Together(c.Kind) {
		// The committee starts at one time, half a round into the round,
		// so that its keepers' measures of the edge add up.
		if wait := e.info.TimeOf(now).Add(e.info.Period / 2).Sub(e.cfg.Clock.Now()); wait > 0 {
			select {
			case <-ctx.Done():
				return
			case <-e.cfg.Clock.After(wait):
			}
		}
	}
	if err := e.cfg.Topics.Challenges.Publish(ctx, env); err != nil {
		e.log.Debug("challenge not gossiped", "challenge", id, "err", err)
	}
	e.count(func(s *Stats) { s.Issued++ })

	deadline := e.cfg.Params.Deadline[c.Kind]
	actx, cancel := context.WithTimeout(ctx, deadline)
	out, err := v.Verify(actx, c, e.opener(c, env))
	cancel()
	if ctx.Err() != nil {
		return // shutting down: no verdict on a challenge we abandoned
	}
	if err != nil {
		e.log.Warn("challenge could not be run", "challenge", id, "edge", c.Edge, "kind", c.Kind, "err", err)
		return
	}
	if out.Result == proofs.Timeout {
		// The retry goes in the first round after this attempt ended,
		// which may be several rounds on when the deadline is longer than
		// a round, and only while the edge would still accept it.
		retryAt := max(now, e.currentRound()) + 1
		switch {
		case c.Attempt >= e.cfg.Params.Retries:
			out.Result = proofs.Fail
			out.Reason = fmt.Sprintf("no answer after %d attempts (%s)", c.Attempt+1, out.Reason)
		case retryAt > c.Round+e.cfg.Params.Window:
			out.Result = proofs.Fail
			out.Reason = fmt.Sprintf("no answer after %d attempts within the %d-round window (%s)", c.Attempt+1, e.cfg.Params.Window, out.Reason)
		default:
			next := c
			next.Attempt++
			e.mu.Lock()
			e.retries[retryAt] = append(e.retries[retryAt], next)
			e.mu.Unlock()
		}
	}
	e.sign(ctx, c, id, out)
}

// opener opens a stream to the challenged edge with the sealed challenge
// as its first frame.
func (e *Engine) opener(c proofs.Challenge, env []byte) proofs.Opener {
	return func(ctx context.Context, p protocol.ID) (network.Stream, error) {
		s, err := e.cfg.Streams.NewStream(ctx, c.Edge, p)
		if err != nil {
			return nil, err
		}
		deadline, _ := ctx.Deadline()
		if err := wire.WriteFrame(s, env, deadline); err != nil {
			s.Reset()
			return nil, err
		}
		return s, nil
	}
}

// sign makes the receipt of an attempt, stores it before anything else
// (synced), then gossips it to the keepers and delivers it to its edge.
func (e *Engine) sign(ctx context.Context, c proofs.Challenge, id cid.Cid, out proofs.Outcome) {
	r := proofs.Receipt{
		Network:      c.Network,
		Epoch:        c.Epoch,
		Round:        c.Round,
		Keeper:       c.Keeper,
		Edge:         c.Edge,
		Kind:         c.Kind,
		Challenge:    id,
		Attempt:      c.Attempt,
		Result:       out.Result,
		Reason:       out.Reason,
		Measurements: out.Measurements,
		Evidence:     out.Evidence,
		Attestation:  out.Attestation,
	}
	env, rid, err := proofs.SealReceipt(e.cfg.Key, r)
	if err != nil {
		e.log.Error("seal receipt", "err", err)
		return
	}
	if _, _, _, err := e.cfg.Receipts.Put(env); err != nil {
		e.log.Error("store receipt", "receipt", rid, "err", err)
		return
	}
	e.count(func(s *Stats) { s.Receipts[out.Result]++ })
	e.activity.add(Activity{
		Time: e.cfg.Clock.Now(), Role: "keeper", Challenge: id.String(), Receipt: rid.String(),
		Keeper: c.Keeper.String(), Edge: c.Edge.String(), Kind: string(c.Kind),
		Round: c.Round, Attempt: c.Attempt, Result: string(out.Result), Reason: out.Reason,
	})
	if out.Result != proofs.Pass {
		e.log.Info("challenge "+string(out.Result), "edge", c.Edge, "kind", c.Kind, "round", c.Round, "attempt", c.Attempt, "reason", out.Reason)
	}
	if err := e.cfg.Topics.Receipts.Publish(ctx, env); err != nil && !errors.Is(err, context.Canceled) {
		e.log.Debug("receipt not gossiped", "receipt", rid, "err", err)
	}
	if c.Edge != e.self {
		e.deliver(ctx, c.Edge, env)
	}
}
