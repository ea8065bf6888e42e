package challenge

import (
	"context"
	"fmt"
	"time"

	"github.com/libp2p/go-libp2p/core/network"

	"github.com/aropeer/aropeer/proofs"
	"github.com/aropeer/aropeer/wire"
)

// readChallengeTimeout bounds how long a keeper may take to send its
// challenge once it opened a stream.
const readChallengeTimeout = 5 * time.Second

// serve answers a stream on kind's protocol: only a challenge that this
// edge's own recomputation of the schedule expects, from a keeper on its
// committee, reaches the responder; everything else is refused at once.
func (e *Engine) serve(ctx context.Context, kind proofs.Kind) network.StreamHandler {
	r := e.responders[kind]
	return func(s network.Stream) {
		env, err := wire.ReadFrame(s, proofs.MaxChallengeSize, time.Now().Add(readChallengeTimeout))
		if err != nil {
			e.refuse(s, "unreadable challenge", err)
			return
		}
		c, _, err := proofs.OpenChallenge(env)
		if err != nil {
			e.refuse(s, "bad challenge", err)
			return
		}
		if c.Kind != kind || c.Edge != e.self || c.Keeper != s.Conn().RemotePeer() {
			e.refuse(s, "misdirected challenge", fmt.Errorf("%s challenge for %s from %s on the %s protocol", c.Kind, c.Edge, s.Conn().RemotePeer(), kind))
			return
		}
		if err := e.check(ctx, c); err != nil {
			e.refuse(s, "unscheduled challenge", err)
			return
		}
		id, _ := c.ID()
		e.count(func(st *Stats) { st.Answered++ })
		e.countAnswered(e.cfg.Params.EpochOf(c.Round), c.Kind)
		e.activity.add(Activity{
			Time: e.cfg.Clock.Now(), Role: "edge", Challenge: id.String(),
			Keeper: c.Keeper.String(), Edge: c.Edge.String(), Kind: string(c.Kind),
			Round: c.Round, Attempt: c.Attempt, Result: "answered",
		})
		r.Serve(ctx, c, s)
	}
}

// refuse resets a stream the edge will not answer, and counts it; it logs
// at debug level, since anyone can open a stream to an edge.
func (e *Engine) refuse(s network.Stream, what string, err error) {
	s.Reset()
	e.count(func(st *Stats) { st.Refused++ })
	e.log.Debug("refused a challenge", "what", what, "from", s.Conn().RemotePeer(), "err", err)
}

// check is CheckChallenge with the state it needs: the beacon of the
// challenge's round, the committees of its epoch and the edge's manifest.
func (e *Engine) check(ctx context.Context, c proofs.Challenge) error {
	if c.Network != e.cfg.Params.Network {
		return fmt.Errorf("%w: challenge of network %q", ErrWrongNetwork, c.Network)
	}
	now := e.currentRound()
	if c.Round > now {
		return fmt.Errorf("%w: round %d, now %d", ErrFuture, c.Round, now)
	}
	e.mu.Lock()
	m, ok := e.manifests[c.Edge]
	e.mu.Unlock()
	if !ok {
		return fmt.Errorf("%w of %s", ErrNoManifest, c.Edge)
	}
	bctx, cancel := context.WithTimeout(ctx, 2*e.info.Period)
	defer cancel()
	b, err := e.cfg.Beacon.Get(bctx, c.Round)
	if err != nil {
		return fmt.Errorf("beacon of round %d: %w", c.Round, err)
	}
	cs, err := e.committeesFor(ctx, e.cfg.Params.EpochOf(c.Round))
	if err != nil {
		return err
	}
	return CheckChallenge(c, b, cs.forEdge(c.Edge), m, e.cfg.Params, now)
}

// countAnswered counts an answered challenge in its epoch, forgetting
// epochs too old to be reported.
func (e *Engine) countAnswered(epoch uint64, k proofs.Kind) {
	e.mu.Lock()
	defer e.mu.Unlock()
	m := e.answered[epoch]
	if m == nil {
		m = make(map[proofs.Kind]uint64)
		e.answered[epoch] = m
	}
	m[k]++
	for old := range e.answered {
		if old+4 < epoch {
			delete(e.answered, old)
		}
	}
}
