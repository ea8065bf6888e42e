package beacon

import (
	"bytes"
	"context"
	"crypto/sha256"
	"errors"
	"fmt"
	"log/slog"
	"time"

	"github.com/drand/drand/v2/protobuf/drand"
	pubsub "github.com/libp2p/go-libp2p-pubsub"
	"github.com/libp2p/go-libp2p/core/peer"
	"google.golang.org/protobuf/proto"
)

// MaxGossipSize caps one gossiped beacon. drand's message is a round, two
// signatures of at most 96 bytes, 32 bytes of randomness and a little
// metadata: a few hundred bytes.
const MaxGossipSize = 1 << 10

// TopicName is drand's own gossip topic for a chain, the one drand's
// gossip relays publish on, so that aropeer peers and drand relays share it.
func TopicName(info Info) string {
	return "/drand/pubsub/v0.0.0/" + info.HashString()
}

// Subscription is the stream of messages accepted on the beacon topic; the
// node's subscription satisfies it through a thin adapter.
type Subscription interface {
	Next(ctx context.Context) ([]byte, error)
}

// Publisher gossips a message on the beacon topic; the node's topic
// satisfies it.
type Publisher interface {
	Publish(ctx context.Context, data []byte) error
}

// GossipSource is a Source fed by drand's gossip topic. The node installs
// Validate as the topic's validator, so a beacon is verified before it is
// kept or forwarded, and runs Run on its subscription. Gossip only carries
// rounds as they happen: the source cannot fetch a round it did not see.
type GossipSource struct {
	info   Info
	verify *Verifier
	clock  Clock
	log    *slog.Logger
	skew   time.Duration
	grace  time.Duration
	size   int
	rounds *recentRounds
}

// GossipOption configures a GossipSource.
type GossipOption func(*GossipSource) error

// WithGossipClock sets the clock rounds are timed by; the default is the
// system clock.
func WithGossipClock(c Clock) GossipOption {
	return func(g *GossipSource) error {
		if c == nil {
			return errors.New("beacon: gossip clock is nil")
		}
		g.clock = c
		return nil
	}
}

// WithGossipLogger sets the logger; the default is slog.Default().
func WithGossipLogger(l *slog.Logger) GossipOption {
	return func(g *GossipSource) error {
		if l == nil {
			return errors.New("beacon: gossip logger is nil")
		}
		g.log = l
		return nil
	}
}

// WithGossipCache sets how many recent rounds are kept for Get and for
// recognising duplicates; the default is 1000.
func WithGossipCache(rounds int) GossipOption {
	return func(g *GossipSource) error {
		if rounds < 1 {
			return fmt.Errorf("beacon: gossip cache of %d rounds must hold at least one", rounds)
		}
		g.size = rounds
		return nil
	}
}

// WithGossipGrace sets how long past its time a round is waited for, by
// Get and by Watch holding back later rounds, before it is given up; the
// default is one period of the chain.
func WithGossipGrace(d time.Duration) GossipOption {
	return func(g *GossipSource) error {
		if d <= 0 {
			return fmt.Errorf("beacon: gossip grace %s must be positive", d)
		}
		g.grace = d
		return nil
	}
}

// WithGossipSkew sets how far ahead of our clock a round may be and still
// be accepted, for peers whose clocks run a little fast; the default is one
// second.
func WithGossipSkew(d time.Duration) GossipOption {
	return func(g *GossipSource) error {
		if d < 0 {
			return fmt.Errorf("beacon: gossip clock skew %s must not be negative", d)
		}
		g.skew = d
		return nil
	}
}

// NewGossipSource prepares a gossip source for the chain info describes.
// It starts nothing.
func NewGossipSource(info Info, opts ...GossipOption) (*GossipSource, error) {
	v, err := NewVerifier(info)
	if err != nil {
		return nil, fmt.Errorf("beacon: gossip source: %w", err)
	}
	g := &GossipSource{
		info:   v.Info(), // a copy: the caller's slices stay the caller's
		verify: v,
		clock:  SystemClock(),
		log:    slog.Default(),
		skew:   time.Second,
		grace:  info.Period,
		size:   1000,
	}
	for _, opt := range opts {
		if err := opt(g); err != nil {
			return nil, err
		}
	}
	if g.grace <= 0 {
		return nil, fmt.Errorf("beacon: chain period %s gives no grace; set one with WithGossipGrace", info.Period)
	}
	g.log = g.log.With("component", "beacon", "source", "gossip")
	g.rounds = newRecentRounds(info, g.clock, g.size, g.grace)
	return g, nil
}

// Name names the source in logs and metrics.
func (g *GossipSource) Name() string { return "gossip" }

// Info returns the chain info beacons are verified against.
func (g *GossipSource) Info() Info { return g.info.clone() }

// Validate judges one message on the topic, before gossipsub delivers or
// forwards it: Reject what is provably bad (it does not decode, is too
// large, is from the future, or does not verify), Ignore a copy of a round
// already accepted and a valid round too old to be kept, and Accept the
// rest, which it keeps.
func (g *GossipSource) Validate(_ context.Context, from peer.ID, data []byte) pubsub.ValidationResult {
	res, err := g.judge(data)
	if res == pubsub.ValidationReject {
		// Debug, not warn: a peer can send rejects as fast as it likes,
		// and gossipsub's scoring, not the log, is what answers it.
		g.log.Debug("gossiped beacon rejected", "peer", from, "err", err)
	}
	return res
}

// judge decides on a message and keeps it if it is accepted. The error
// says why a message was not accepted.
func (g *GossipSource) judge(data []byte) (pubsub.ValidationResult, error) {
	if len(data) > MaxGossipSize {
		return pubsub.ValidationReject, fmt.Errorf("beacon: gossip message of %d bytes exceeds %d", len(data), MaxGossipSize)
	}
	b, err := decodeGossip(data)
	if err != nil {
		return pubsub.ValidationReject, err
	}
	b = g.verify.Canonical(b)
	// Nobody can hold a round before its time, so a future round is a
	// forgery or a clock far off, and it is cheaper to refuse than to verify.
	if g.rounds.notYet(b.Round, g.clock.Now().Add(g.skew)) {
		return pubsub.ValidationReject, fmt.Errorf("beacon: gossiped round %d: %w", b.Round, ErrNotYet)
	}
	// A copy of an accepted round is judged without verifying, which keeps
	// relays that all publish the same round cheap. A BLS signature is
	// unique for a key and message, so a different signature (or, on a
	// chained scheme, previous signature) for an accepted round cannot
	// verify: it is rejected as a forgery.
	if prev, ok := g.rounds.lookup(b.Round); ok {
		return sameRound(prev, b)
	}
	if err := g.verify.Verify(b); err != nil {
		return pubsub.ValidationReject, fmt.Errorf("beacon: gossiped round %d: %w", b.Round, err)
	}
	switch prev, res := g.rounds.add(b); res {
	case roundHeld:
		// Another copy was verified at the same time and accepted first.
		return sameRound(prev, b)
	case roundTooOld:
		return pubsub.ValidationIgnore, fmt.Errorf("beacon: gossiped round %d is older than the %d rounds kept", b.Round, g.size)
	}
	return pubsub.ValidationAccept, nil
}

func sameRound(prev, b Beacon) (pubsub.ValidationResult, error) {
	if bytes.Equal(prev.Signature, b.Signature) && bytes.Equal(prev.PreviousSignature, b.PreviousSignature) {
		return pubsub.ValidationIgnore, fmt.Errorf("beacon: gossiped round %d is a duplicate", b.Round)
	}
	return pubsub.ValidationReject, fmt.Errorf("beacon: gossiped round %d conflicts with the accepted one: %w", b.Round, ErrInvalid)
}

// Run reads the messages gossipsub delivers on the topic until ctx ends,
// then returns nil; it returns an error if the subscription fails.
// Validate has already kept what it accepted; Run judges each message
// again, which costs a lookup, so that nothing unverified is kept even if
// the topic was joined without Validate.
func (g *GossipSource) Run(ctx context.Context, sub Subscription) error {
	for {
		data, err := sub.Next(ctx)
		if err != nil {
			if ctx.Err() != nil {
				return nil
			}
			return fmt.Errorf("beacon: gossip subscription: %w", err)
		}
		if res, err := g.judge(data); res == pubsub.ValidationReject {
			g.log.Warn("subscription delivered a beacon that does not validate; is Validate installed on the topic?", "err", err)
		}
	}
}

// Publish gossips a beacon in drand's format. It verifies the beacon first,
// so nothing a peer would reject leaves this node, and does nothing for a
// round already accepted from the topic: the mesh has it. The beacon is
// kept, so this source delivers it even if pub does not run Validate.
func (g *GossipSource) Publish(ctx context.Context, pub Publisher, b Beacon) error {
	b, err := withRandomness(b)
	if err != nil {
		return err
	}
	b = g.verify.Canonical(b)
	if g.rounds.notYet(b.Round, g.clock.Now().Add(g.skew)) {
		return fmt.Errorf("beacon: publish round %d: %w", b.Round, ErrNotYet)
	}
	if prev, ok := g.rounds.lookup(b.Round); ok && bytes.Equal(prev.Signature, b.Signature) {
		return nil
	}
	if err := g.verify.Verify(b); err != nil {
		return fmt.Errorf("beacon: publish round %d: %w", b.Round, err)
	}
	data, err := encodeGossip(b)
	if err != nil {
		return err
	}
	if err := pub.Publish(ctx, data); err != nil {
		return fmt.Errorf("beacon: gossip round %d: %w", b.Round, err)
	}
	g.rounds.add(b)
	return nil
}

// Get returns a round seen on the topic. A round whose time has not come
// fails with ErrNotYet. A round not seen yet is waited for until its time
// plus the grace, so asking for the current round as it happens works;
// past that, or for a round older than the cache, Get fails at once with
// ErrUnavailable, because gossip cannot fetch old rounds.
func (g *GossipSource) Get(ctx context.Context, round uint64) (Beacon, error) {
	if round == 0 {
		return Beacon{}, fmt.Errorf("beacon: round 0 has no beacon: %w", ErrUnavailable)
	}
	if b, ok := g.rounds.lookup(round); ok {
		return b, nil
	}
	if g.rounds.notYet(round, g.clock.Now()) {
		return Beacon{}, fmt.Errorf("beacon: round %d: %w", round, ErrNotYet)
	}
	return g.rounds.wait(ctx, round)
}

// Watch delivers the rounds seen on the topic from the current round on,
// in strictly increasing order, each once, until ctx ends. A round that
// arrives before an earlier missing one is held back until the missing
// one arrives or its grace has passed; a round never seen is skipped. The
// Mux, not this source, fetches skipped rounds from elsewhere.
func (g *GossipSource) Watch(ctx context.Context) <-chan Beacon {
	return g.rounds.watch(ctx, g.info.RoundAt(g.clock.Now()))
}

// Decode reads a beacon in drand's gossip form, as Encode writes it; the
// caller still verifies it.
func Decode(data []byte) (Beacon, error) { return decodeGossip(data) }

// Encode writes a beacon in drand's gossip form.
func Encode(b Beacon) ([]byte, error) { return encodeGossip(b) }

// decodeGossip reads drand's PublicRandResponse. Its randomness field is
// deprecated and optional; when it is present it must be the hash of the
// signature.
func decodeGossip(data []byte) (Beacon, error) {
	var m drand.PublicRandResponse
	if err := proto.Unmarshal(data, &m); err != nil {
		return Beacon{}, fmt.Errorf("beacon: decode gossip message: %w", err)
	}
	if m.GetRound() == 0 {
		return Beacon{}, errors.New("beacon: gossip message has no round")
	}
	if len(m.GetSignature()) == 0 {
		return Beacon{}, fmt.Errorf("beacon: gossiped round %d has no signature", m.GetRound())
	}
	return withRandomness(Beacon{
		Round:             m.GetRound(),
		Signature:         m.GetSignature(),
		PreviousSignature: m.GetPreviousSignature(),
		Randomness:        m.GetRandomness(),
	})
}

// withRandomness sets a beacon's randomness from its signature, refusing a
// beacon that carries other randomness: the signature is what verifies, so
// randomness that does not match it is a forgery.
func withRandomness(b Beacon) (Beacon, error) {
	sum := sha256.Sum256(b.Signature)
	if len(b.Randomness) > 0 && !bytes.Equal(b.Randomness, sum[:]) {
		return Beacon{}, fmt.Errorf("beacon: round %d: randomness is not the hash of the signature: %w", b.Round, ErrInvalid)
	}
	b.Randomness = sum[:]
	return b, nil
}

// encodeGossip writes a beacon as drand's gossip relays do, randomness
// included for older drand clients that read it.
func encodeGossip(b Beacon) ([]byte, error) {
	data, err := proto.MarshalOptions{Deterministic: true}.Marshal(&drand.PublicRandResponse{
		Round:             b.Round,
		Signature:         b.Signature,
		PreviousSignature: b.PreviousSignature,
		Randomness:        b.Randomness,
	})
	if err != nil {
		return nil, fmt.Errorf("beacon: encode round %d: %w", b.Round, err)
	}
	return data, nil
}
