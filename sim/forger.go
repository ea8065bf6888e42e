package sim

import (
	"context"
	"crypto/sha256"
	"encoding/binary"
	"fmt"
	"math/rand/v2"
	"time"

	pubsub "github.com/libp2p/go-libp2p-pubsub"
	"github.com/libp2p/go-libp2p/core/crypto"
	"github.com/libp2p/go-libp2p/core/peer"
	ma "github.com/multiformats/go-multiaddr"

	"github.com/aropeer/aropeer/node"
	"github.com/aropeer/aropeer/node/config"
	"github.com/aropeer/aropeer/proofs"
)

// forger is a keeper's second host, which gossips challenges the keeper
// signed but the schedule never called for. Its own node would refuse to
// publish them (a node validates what it publishes), so the keeper uses a
// plain gossipsub router that validates nothing.
type forger struct {
	m     *member
	id    peer.ID // the forging host
	topic *pubsub.Topic
	rng   *rand.ChaCha8
}

// startForger links and connects a forging host for m to the keepers
// and joins the challenges topic.
func (r *runner) startForger(ctx context.Context, m *member) (*forger, error) {
	// Its key and its forged seeds derive from the scenario's seed, so
	// that a run repeats.
	rng := rand.NewChaCha8(sha256.Sum256(binary.BigEndian.AppendUint64([]byte("aropeer sim forger "), r.s.Seed^uint64(m.index))))
	key, _, err := crypto.GenerateEd25519Key(rng)
	if err != nil {
		return nil, err
	}
	addr := ma.StringCast(fmt.Sprintf("/ip4/100.127.255.%d/tcp/4001", m.index))
	h, err := r.mn.AddPeer(key, addr)
	if err != nil {
		return nil, fmt.Errorf("sim: forging host: %w", err)
	}
	// Linked and connected to the keepers, the nodes that take in the
	// challenges topic, and not to every edge as well: each connection
	// waits for its identify, and in real time a thousand of them, one
	// after another, kept a network of a thousand edges from its first
	// round for minutes. Linked on its keeper's access link, alone:
	// mocknet's LinkAll would add a second link to every linked pair,
	// and a dial picks one of a pair's links at random.
	self := &member{index: m.index, id: h.ID(), rate: m.rate, latency: m.latency}
	for _, o := range r.members {
		if o.role != config.RoleKeeper {
			continue
		}
		if err := linkPair(r.mn, self, o); err != nil {
			return nil, fmt.Errorf("sim: forging host: %w", err)
		}
		if err := h.Connect(ctx, peer.AddrInfo{ID: o.id, Addrs: o.host.Addrs()}); err != nil {
			return nil, fmt.Errorf("sim: forging host: %w", err)
		}
	}
	ps, err := pubsub.NewGossipSub(ctx, h)
	if err != nil {
		return nil, err
	}
	topic, err := ps.Join(r.nw.Topic(config.TopicChallenges))
	if err != nil {
		return nil, err
	}
	return &forger{m: m, id: h.ID(), topic: topic, rng: rng}, nil
}

// forge publishes a challenge of round for an edge the scenario picks,
// with a seed the beacon did not give.
func (f *forger) forge(ctx context.Context, r *runner, round uint64) {
	edges := r.members[1+r.s.Keepers:]
	edge := edges[int(round)%len(edges)]
	seed := make([]byte, proofs.SeedSize)
	_, _ = f.rng.Read(seed)
	c := proofs.Challenge{
		Network: r.nw.Name, Epoch: r.params.EpochOf(round), Round: round,
		Keeper: f.m.id, Edge: edge.id, Kind: proofs.KindLiveness, Seed: seed,
	}
	env, _, err := proofs.SealChallenge(f.m.key, c)
	if err != nil {
		return
	}
	// Keepers gossip their challenges in bundles, and so does the forger.
	if env, err = node.SealBundle(f.m.key, proofs.ChallengeDomain, [][]byte{env}); err != nil {
		return
	}
	pctx, cancel := context.WithTimeout(ctx, time.Second)
	defer cancel()
	_ = f.topic.Publish(pctx, env)
}

// shunned reports whether most honest keepers, the nodes that take in
// the challenges topic, score the forging host below zero: their gossip
// no longer takes its messages.
func (f *forger) shunned(r *runner) bool {
	honest, below := 0, 0
	for _, o := range r.members {
		if o.strategy.Name != Honest || o.role != config.RoleKeeper {
			continue
		}
		honest++
		if s, ok := o.node.Gossip().Score(f.id); ok && s < 0 {
			below++
		}
	}
	return below*2 > honest
}
