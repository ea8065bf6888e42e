package beacon

import (
	"bytes"
	"context"
	"errors"
	"log/slog"
	"sync"
	"testing"
	"testing/synctest"
	"time"

	"github.com/drand/drand/v2/protobuf/drand"
	pubsub "github.com/libp2p/go-libp2p-pubsub"
	"github.com/libp2p/go-libp2p/core/host"
	"github.com/libp2p/go-libp2p/core/peer"
	mocknet "github.com/libp2p/go-libp2p/p2p/net/mock"
	"google.golang.org/protobuf/proto"
)

// gossipPeriod is the period of the test chains: whole seconds, as a
// signer's chain hash requires.
const gossipPeriod = 3 * time.Second

// gossipChain makes a signer whose round 11 begins now, so that rounds
// 1..11 are past and 12 on are future. Call it inside a synctest bubble,
// where now is a fixed instant.
func gossipChain(t testing.TB, secret string) *Signer {
	t.Helper()
	now := time.Now().Truncate(time.Second)
	s, err := NewSigner(bytes.Repeat([]byte(secret), 32/len(secret)+1)[:32], gossipPeriod, now.Add(-10*gossipPeriod).Unix(), "test-"+secret)
	if err != nil {
		t.Fatal(err)
	}
	return s
}

func gossipSign(t testing.TB, s *Signer, round uint64) Beacon {
	t.Helper()
	b, err := s.Sign(round)
	if err != nil {
		t.Fatal(err)
	}
	return b
}

func gossipBytes(t testing.TB, b Beacon) []byte {
	t.Helper()
	data, err := encodeGossip(b)
	if err != nil {
		t.Fatal(err)
	}
	return data
}

func newGossipSource(t testing.TB, info Info, opts ...GossipOption) *GossipSource {
	t.Helper()
	opts = append([]GossipOption{WithGossipLogger(slog.New(slog.DiscardHandler))}, opts...)
	g, err := NewGossipSource(info, opts...)
	if err != nil {
		t.Fatal(err)
	}
	return g
}

func TestTopicNameIsDrands(t *testing.T) {
	info := Info{Hash: []byte{0x52, 0xdb, 0x9b, 0xa7}}
	if got, want := TopicName(info), "/drand/pubsub/v0.0.0/52db9ba7"; got != want {
		t.Fatalf("TopicName = %q, want %q", got, want)
	}
}

func TestGossipValidate(t *testing.T) {
	synctest.Test(t, func(t *testing.T) {
		chain := gossipChain(t, "honest")
		other := gossipChain(t, "forger")
		g := newGossipSource(t, chain.Info())

		valid := gossipSign(t, chain, 10)
		badSig := gossipSign(t, chain, 9)
		badSig.Round = 10
		badSig.Randomness = nil
		wrongRand := gossipSign(t, chain, 8)
		wrongRand.Randomness = bytes.Repeat([]byte{7}, 32)
		noRand := gossipSign(t, chain, 7)
		noRand.Randomness = nil
		withPrev := gossipSign(t, chain, 6)
		withPrev.PreviousSignature = []byte("not signed by anyone")
		huge, _ := proto.Marshal(&drand.PublicRandResponse{Round: 5, Signature: make([]byte, MaxGossipSize)})

		steps := []struct {
			name string
			data []byte
			want pubsub.ValidationResult
		}{
			{"valid", gossipBytes(t, valid), pubsub.ValidationAccept},
			{"duplicate", gossipBytes(t, valid), pubsub.ValidationIgnore},
			{"other signature for an accepted round", gossipBytes(t, gossipSign(t, other, 10)), pubsub.ValidationReject},
			{"garbage", []byte("this is not a beacon"), pubsub.ValidationReject},
			{"empty", nil, pubsub.ValidationReject},
			{"oversized", huge, pubsub.ValidationReject},
			{"no signature", mustMarshal(t, &drand.PublicRandResponse{Round: 4}), pubsub.ValidationReject},
			{"bad signature", gossipBytes(t, withRound(badSig, 3)), pubsub.ValidationReject},
			{"bad signature for an accepted round", gossipBytes(t, badSig), pubsub.ValidationReject},
			{"wrong randomness", gossipBytes(t, wrongRand), pubsub.ValidationReject},
			{"another chain", gossipBytes(t, gossipSign(t, other, 9)), pubsub.ValidationReject},
			{"future round", gossipBytes(t, gossipSign(t, chain, 12)), pubsub.ValidationReject},
			{"far future round", gossipBytes(t, gossipSign(t, chain, 1<<62)), pubsub.ValidationReject},
			{"current round", gossipBytes(t, gossipSign(t, chain, 11)), pubsub.ValidationAccept},
			{"randomness left out", gossipBytes(t, noRand), pubsub.ValidationAccept},
			{"unsigned previous signature on an unchained scheme", gossipBytes(t, withPrev), pubsub.ValidationAccept},
			{"same round without it", gossipBytes(t, withPrevious(withPrev, nil)), pubsub.ValidationIgnore},
		}
		for _, s := range steps {
			if got := g.Validate(t.Context(), "", s.data); got != s.want {
				t.Errorf("%s: Validate = %s, want %s", s.name, resultName(got), resultName(s.want))
			}
		}

		// Clocks a little apart: a round up to the skew ahead is accepted.
		time.Sleep(gossipPeriod - 500*time.Millisecond)
		if got := g.Validate(t.Context(), "", gossipBytes(t, gossipSign(t, chain, 12))); got != pubsub.ValidationAccept {
			t.Errorf("round 0.5 s ahead: Validate = %s, want accept", resultName(got))
		}
		if got := g.Validate(t.Context(), "", gossipBytes(t, gossipSign(t, chain, 13))); got != pubsub.ValidationReject {
			t.Errorf("round 3.5 s ahead: Validate = %s, want reject", resultName(got))
		}

		// What was accepted is kept, with its randomness and without the
		// unsigned previous signature.
		for _, r := range []uint64{6, 7, 10, 11, 12} {
			b, err := g.Get(t.Context(), r)
			if err != nil {
				t.Fatalf("Get(%d): %v", r, err)
			}
			if err := gossipVerify(t, chain.Info(), b); err != nil {
				t.Errorf("Get(%d) returned an unverified beacon: %v", r, err)
			}
			if b.PreviousSignature != nil {
				t.Errorf("Get(%d) kept a previous signature on an unchained scheme", r)
			}
		}
		for _, r := range []uint64{3, 8, 9} {
			if _, err := g.Get(t.Context(), r); !errors.Is(err, ErrUnavailable) {
				t.Errorf("Get(%d) of a refused round: err = %v, want ErrUnavailable", r, err)
			}
		}
	})
}

func withRound(b Beacon, r uint64) Beacon { b.Round = r; return b }

func withPrevious(b Beacon, p []byte) Beacon { b.PreviousSignature = p; return b }

func mustMarshal(t testing.TB, m proto.Message) []byte {
	t.Helper()
	data, err := proto.Marshal(m)
	if err != nil {
		t.Fatal(err)
	}
	return data
}

func gossipVerify(t testing.TB, info Info, b Beacon) error {
	t.Helper()
	v, err := NewVerifier(info)
	if err != nil {
		t.Fatal(err)
	}
	return v.Verify(b)
}

func TestGossipOldRoundsBeyondCacheAreIgnored(t *testing.T) {
	synctest.Test(t, func(t *testing.T) {
		chain := gossipChain(t, "honest")
		g := newGossipSource(t, chain.Info(), WithGossipCache(3))
		for _, r := range []uint64{10, 11} {
			if got := g.Validate(t.Context(), "", gossipBytes(t, gossipSign(t, chain, r))); got != pubsub.ValidationAccept {
				t.Fatalf("round %d: Validate = %s", r, resultName(got))
			}
		}
		// Rounds 9..11 fit in a cache of 3; round 8 is out of the window.
		if got := g.Validate(t.Context(), "", gossipBytes(t, gossipSign(t, chain, 9))); got != pubsub.ValidationAccept {
			t.Errorf("round 9: Validate = %s, want accept", resultName(got))
		}
		if got := g.Validate(t.Context(), "", gossipBytes(t, gossipSign(t, chain, 8))); got != pubsub.ValidationIgnore {
			t.Errorf("round 8: Validate = %s, want ignore", resultName(got))
		}
		// A forgery is a forgery however old.
		if got := g.Validate(t.Context(), "", gossipBytes(t, withRound(gossipSign(t, chain, 9), 2))); got != pubsub.ValidationReject {
			t.Errorf("old forged round: Validate = %s, want reject", resultName(got))
		}
		if _, err := g.Get(t.Context(), 8); !errors.Is(err, ErrUnavailable) {
			t.Errorf("Get(8) = %v, want ErrUnavailable", err)
		}
	})
}

func TestGossipGet(t *testing.T) {
	synctest.Test(t, func(t *testing.T) {
		chain := gossipChain(t, "honest")
		g := newGossipSource(t, chain.Info())
		ctx := t.Context()

		if _, err := g.Get(ctx, 12); !errors.Is(err, ErrNotYet) {
			t.Errorf("Get(future) = %v, want ErrNotYet", err)
		}
		if _, err := g.Get(ctx, 0); !errors.Is(err, ErrUnavailable) {
			t.Errorf("Get(0) = %v, want ErrUnavailable", err)
		}
		start := time.Now()
		if _, err := g.Get(ctx, 5); !errors.Is(err, ErrUnavailable) {
			t.Errorf("Get(old round never seen) = %v, want ErrUnavailable", err)
		}
		if waited := time.Since(start); waited != 0 {
			t.Errorf("Get of an old round waited %s", waited)
		}

		// The current round is waited for: it arrives a second late.
		want := gossipSign(t, chain, 11)
		go func() {
			time.Sleep(time.Second)
			g.Validate(ctx, "", gossipBytes(t, want))
		}()
		got, err := g.Get(ctx, 11)
		if err != nil || !bytes.Equal(got.Signature, want.Signature) {
			t.Fatalf("Get(current) = %v, %v; want round 11", got.Round, err)
		}
		if waited := time.Since(start); waited != time.Second {
			t.Errorf("Get(current) returned after %s, want 1s", waited)
		}

		// Round 12 never comes: Get waits for its time and one period of grace.
		time.Sleep(2 * time.Second) // now round 12 has begun
		start = time.Now()
		if _, err := g.Get(ctx, 12); !errors.Is(err, ErrUnavailable) {
			t.Errorf("Get(lost round) = %v, want ErrUnavailable", err)
		}
		if waited := time.Since(start); waited != gossipPeriod {
			t.Errorf("Get(lost round) gave up after %s, want %s", waited, gossipPeriod)
		}

		cctx, cancel := context.WithCancel(ctx)
		cancel()
		if _, err := g.Get(cctx, 13); !errors.Is(err, context.Canceled) {
			t.Errorf("Get with a cancelled context = %v, want context.Canceled", err)
		}
	})
}

func TestGossipWatchHoldsLaterRoundsUntilTheGapCloses(t *testing.T) {
	synctest.Test(t, func(t *testing.T) {
		chain := gossipChain(t, "honest")
		// Two periods of grace, so that a round can arrive while the one
		// before it is still awaited; with the default of one period, a
		// missing round is given up just as the next one begins.
		g := newGossipSource(t, chain.Info(), WithGossipGrace(2*gossipPeriod))
		ctx, cancel := context.WithCancel(t.Context())
		watch := g.Watch(ctx)
		publish := func(r uint64) {
			t.Helper()
			if got := g.Validate(ctx, "", gossipBytes(t, gossipSign(t, chain, r))); got != pubsub.ValidationAccept {
				t.Fatalf("round %d: Validate = %s", r, resultName(got))
			}
		}
		// Round 10 is before the watch began: never delivered.
		publish(10)

		// Round 12 arrives before 11 (11 arrives late, within its grace).
		time.Sleep(gossipPeriod + 100*time.Millisecond)
		publish(12)
		synctest.Wait()
		select {
		case b := <-watch:
			t.Fatalf("round %d delivered while round 11 is missing", b.Round)
		default:
		}
		publish(11)
		expectRounds(t, watch, 11, 12)

		// Round 13 never comes: 14 is held until 13's grace is over.
		time.Sleep(2 * gossipPeriod)
		publish(14)
		held := time.Now()
		expectRounds(t, watch, 14)
		if waited, want := time.Since(held), chain.Info().TimeOf(13).Add(2*gossipPeriod).Sub(held); waited != want || want <= 0 {
			t.Errorf("round 14 was held %s, want %s", waited, want)
		}
		// A duplicate is not delivered again, and a late 13 is not delivered
		// out of order.
		g.Validate(ctx, "", gossipBytes(t, gossipSign(t, chain, 14)))
		publish(13)
		time.Sleep(gossipPeriod)
		publish(15)
		expectRounds(t, watch, 15)

		cancel()
		if _, ok := <-watch; ok {
			t.Fatal("watch delivered after its context ended")
		}
	})
}

// expectRounds reads the given rounds, in order, from a watch.
func expectRounds(t *testing.T, watch <-chan Beacon, rounds ...uint64) {
	t.Helper()
	for _, want := range rounds {
		b, ok := <-watch
		if !ok {
			t.Fatalf("watch closed; want round %d", want)
		}
		if b.Round != want {
			t.Fatalf("watch delivered round %d, want %d", b.Round, want)
		}
	}
}

func TestGossipPublish(t *testing.T) {
	synctest.Test(t, func(t *testing.T) {
		chain := gossipChain(t, "honest")
		other := gossipChain(t, "forger")
		g := newGossipSource(t, chain.Info())
		var sent [][]byte
		pub := publisherFunc(func(_ context.Context, data []byte) error {
			sent = append(sent, data)
			return nil
		})
		ctx := t.Context()

		b := gossipSign(t, chain, 11)
		if err := g.Publish(ctx, pub, b); err != nil {
			t.Fatal(err)
		}
		if len(sent) != 1 {
			t.Fatalf("published %d messages, want 1", len(sent))
		}
		got, err := decodeGossip(sent[0])
		if err != nil || got.Round != 11 || !bytes.Equal(got.Signature, b.Signature) {
			t.Fatalf("published message decodes to round %d, %v", got.Round, err)
		}
		// Kept, even though this publisher runs no validator.
		if _, err := g.Get(ctx, 11); err != nil {
			t.Errorf("Get after Publish: %v", err)
		}
		// Already on the topic: nothing to do.
		if err := g.Publish(ctx, pub, b); err != nil || len(sent) != 1 {
			t.Errorf("second Publish: err %v, %d messages", err, len(sent))
		}
		if err := g.Publish(ctx, pub, gossipSign(t, other, 10)); !errors.Is(err, ErrInvalid) {
			t.Errorf("Publish of another chain's beacon = %v, want ErrInvalid", err)
		}
		if err := g.Publish(ctx, pub, gossipSign(t, chain, 13)); !errors.Is(err, ErrNotYet) {
			t.Errorf("Publish of a future round = %v, want ErrNotYet", err)
		}
		if len(sent) != 1 {
			t.Errorf("refused beacons were published: %d messages", len(sent))
		}
		failing := publisherFunc(func(context.Context, []byte) error { return errors.New("no route") })
		if err := g.Publish(ctx, failing, gossipSign(t, chain, 10)); err == nil {
			t.Error("Publish hid the publisher's error")
		}
	})
}

type publisherFunc func(context.Context, []byte) error

func (f publisherFunc) Publish(ctx context.Context, data []byte) error { return f(ctx, data) }

func TestGossipRunKeepsWhatTheSubscriptionDelivers(t *testing.T) {
	synctest.Test(t, func(t *testing.T) {
		chain := gossipChain(t, "honest")
		other := gossipChain(t, "forger")
		g := newGossipSource(t, chain.Info())
		msgs := make(chan []byte)
		sub := subscriptionFunc(func(ctx context.Context) ([]byte, error) {
			select {
			case m := <-msgs:
				return m, nil
			case <-ctx.Done():
				return nil, ctx.Err()
			}
		})
		ctx, cancel := context.WithCancel(t.Context())
		done := make(chan error)
		go func() { done <- g.Run(ctx, sub) }()

		// Delivered without a validator in front: Run still verifies.
		msgs <- gossipBytes(t, gossipSign(t, other, 10))
		msgs <- gossipBytes(t, gossipSign(t, chain, 11))
		synctest.Wait()
		if _, err := g.Get(ctx, 10); !errors.Is(err, ErrUnavailable) {
			t.Errorf("Get of a forged round = %v, want ErrUnavailable", err)
		}
		if _, err := g.Get(ctx, 11); err != nil {
			t.Errorf("Get(11) = %v", err)
		}
		cancel()
		if err := <-done; err != nil {
			t.Errorf("Run after its context ended = %v, want nil", err)
		}

		broken := subscriptionFunc(func(context.Context) ([]byte, error) { return nil, errors.New("closed") })
		if err := g.Run(t.Context(), broken); err == nil {
			t.Error("Run hid a failed subscription")
		}
	})
}

type subscriptionFunc func(context.Context) ([]byte, error)

func (f subscriptionFunc) Next(ctx context.Context) ([]byte, error) { return f(ctx) }

func TestNewGossipSourceOptions(t *testing.T) {
	info := DevnetSigner().Info()
	for name, opt := range map[string]GossipOption{
		"nil clock":     WithGossipClock(nil),
		"nil logger":    WithGossipLogger(nil),
		"empty cache":   WithGossipCache(0),
		"no grace":      WithGossipGrace(0),
		"negative skew": WithGossipSkew(-time.Second),
	} {
		if _, err := NewGossipSource(info, opt); err == nil {
			t.Errorf("%s: NewGossipSource accepted it", name)
		}
	}
	if _, err := NewGossipSource(Info{Scheme: "no such scheme"}); err == nil {
		t.Error("NewGossipSource accepted chain info it cannot verify with")
	}
}

// pubsubSubscription and topicPublisher are the thin adapters the node
// writes over its own topic types, here over gossipsub's.
type pubsubSubscription struct{ s *pubsub.Subscription }

func (p pubsubSubscription) Next(ctx context.Context) ([]byte, error) {
	m, err := p.s.Next(ctx)
	if err != nil {
		return nil, err
	}
	return m.Data, nil
}

type topicPublisher struct{ t *pubsub.Topic }

func (p topicPublisher) Publish(ctx context.Context, data []byte) error {
	return p.t.Publish(ctx, data)
}

// TestGossipOverNetwork runs a local beacon on one of a dozen gossipsub
// peers over an in-memory network: every other peer's Watch delivers
// every round, in order, once, and a forgery published by a peer that
// runs no validator reaches nobody.
func TestGossipOverNetwork(t *testing.T) {
	synctest.Test(t, func(t *testing.T) {
		const (
			peers  = 12
			forger = peers - 1
			rounds = 5
		)
		chain := gossipChain(t, "honest")
		forgeKey := gossipChain(t, "forger")
		info := chain.Info()
		discard := slog.New(slog.DiscardHandler)

		ctx, cancel := context.WithTimeout(t.Context(), time.Minute)
		var running sync.WaitGroup
		mn := mocknet.New()
		defer func() {
			cancel()
			running.Wait()
			if err := mn.Close(); err != nil {
				t.Error(err)
			}
		}()

		hosts := make([]host.Host, peers)
		for i := range hosts {
			h, err := mn.GenPeer()
			if err != nil {
				t.Fatal(err)
			}
			hosts[i] = h
		}
		if err := mn.LinkAll(); err != nil {
			t.Fatal(err)
		}
		// A sparse graph, so that rounds travel through several hops.
		for i := range hosts {
			for _, j := range []int{(i + 1) % peers, (i + 5) % peers} {
				if _, err := mn.ConnectPeers(hosts[i].ID(), hosts[j].ID()); err != nil {
					t.Fatal(err)
				}
			}
		}

		forged := gossipSign(t, forgeKey, 12)
		var forgeryMu sync.Mutex
		forgery := make(map[int]pubsub.ValidationResult) // by peer, how it judged the forgery

		sources := make([]*GossipSource, peers)
		topics := make([]*pubsub.Topic, peers)
		for i, h := range hosts {
			ps, err := pubsub.NewGossipSub(ctx, h)
			if err != nil {
				t.Fatal(err)
			}
			g := newGossipSource(t, info)
			if i != forger {
				err := ps.RegisterTopicValidator(TopicName(info), func(ctx context.Context, from peer.ID, m *pubsub.Message) pubsub.ValidationResult {
					res := g.Validate(ctx, from, m.Data)
					if b, err := decodeGossip(m.Data); err == nil && bytes.Equal(b.Signature, forged.Signature) {
						forgeryMu.Lock()
						forgery[i] = res
						forgeryMu.Unlock()
					}
					return res
				})
				if err != nil {
					t.Fatal(err)
				}
			}
			topic, err := ps.Join(TopicName(info))
			if err != nil {
				t.Fatal(err)
			}
			sub, err := topic.Subscribe()
			if err != nil {
				t.Fatal(err)
			}
			sources[i], topics[i] = g, topic
			running.Go(func() {
				if err := g.Run(ctx, pubsubSubscription{sub}); err != nil {
					t.Errorf("peer %d: Run: %v", i, err)
				}
			})
		}
		// Let a few heartbeats build the mesh; round 11 has begun.
		time.Sleep(2 * time.Second)

		got := make([][]Beacon, peers)
		var watching sync.WaitGroup
		for i := range forger {
			watch := sources[i].Watch(ctx)
			watching.Go(func() {
				for b := range watch {
					if got[i] = append(got[i], b); len(got[i]) == rounds {
						return
					}
				}
			})
		}

		local := NewLocal(chain, WithLocalLogger(discard))
		running.Go(func() {
			err := local.Run(ctx, func(ctx context.Context, b Beacon) error {
				return sources[0].Publish(ctx, topicPublisher{topics[0]}, b)
			})
			if err != nil {
				t.Errorf("local beacon: %v", err)
			}
		})

		// Half a second before round 12, within every peer's clock skew,
		// the forger publishes its own round 12.
		time.Sleep(500 * time.Millisecond)
		if err := topics[forger].Publish(ctx, gossipBytes(t, forged)); err != nil {
			t.Fatal(err)
		}

		watching.Wait()
		for i := range forger {
			if len(got[i]) != rounds {
				t.Errorf("peer %d: watch delivered %d rounds, want %d", i, len(got[i]), rounds)
			}
			for k, b := range got[i] {
				want := gossipSign(t, chain, 11+uint64(k))
				if b.Round != want.Round || !bytes.Equal(b.Signature, want.Signature) {
					t.Errorf("peer %d: watch delivered round %d (%x...) at position %d, want round %d from the local beacon", i, b.Round, b.Signature[:4], k, want.Round)
				}
			}
			if b, err := sources[i].Get(ctx, 12); err != nil || bytes.Equal(b.Signature, forged.Signature) {
				t.Errorf("peer %d: Get(12) = %x, %v; want the local beacon's round", i, b.Signature[:4], err)
			}
		}
		// The forgery was on the wire: the forger's neighbours judged it,
		// and rejected it.
		forgeryMu.Lock()
		defer forgeryMu.Unlock()
		if len(forgery) == 0 {
			t.Error("no peer saw the forged round; the test proves nothing")
		}
		for i, res := range forgery {
			if res != pubsub.ValidationReject {
				t.Errorf("peer %d: forged round judged %s, want reject", i, resultName(res))
			}
		}
	})
}

// gossipFixedClock stands still; its timers never fire. It suits tests
// that never wait.
type gossipFixedClock struct{ now time.Time }

func (c gossipFixedClock) Now() time.Time                       { return c.now }
func (c gossipFixedClock) After(time.Duration) <-chan time.Time { return nil }

// TestGossipValidateRealDrandBeacons feeds real drand beacons, chained and
// unchained, to the validator in the form drand's gossip relays publish.
func TestGossipValidateRealDrandBeacons(t *testing.T) {
	for _, c := range goldenCases() {
		t.Run(c.name, func(t *testing.T) {
			info := readGoldenInfo(t, c.info)
			b := readGoldenBeacon(t, c.beacon)
			g := newGossipSource(t, info, WithGossipClock(gossipFixedClock{info.TimeOf(b.Round).Add(time.Second)}))
			relayed := mustMarshal(t, &drand.PublicRandResponse{
				Round:             b.Round,
				Signature:         b.Signature,
				PreviousSignature: b.PreviousSignature,
				Randomness:        b.Randomness,
			})
			if info.Scheme == "pedersen-bls-chained" {
				// Tampering with the previous signature breaks a chained beacon.
				tampered := deepCopyBeacon(b)
				tampered.PreviousSignature[0] ^= 1
				if got := g.Validate(t.Context(), "", gossipBytes(t, tampered)); got != pubsub.ValidationReject {
					t.Errorf("tampered previous signature: Validate = %s, want reject", resultName(got))
				}
			}
			if got := g.Validate(t.Context(), "", relayed); got != pubsub.ValidationAccept {
				t.Fatalf("Validate = %s, want accept", resultName(got))
			}
			if got := g.Validate(t.Context(), "", relayed); got != pubsub.ValidationIgnore {
				t.Errorf("second copy: Validate = %s, want ignore", resultName(got))
			}
			got, err := g.Get(t.Context(), b.Round)
			if err != nil {
				t.Fatal(err)
			}
			if !bytes.Equal(got.Signature, b.Signature) || !bytes.Equal(got.PreviousSignature, b.PreviousSignature) || !bytes.Equal(got.Randomness, b.Randomness) {
				t.Errorf("Get = %+v, want %+v", got, b)
			}
			if data, err := encodeGossip(got); err != nil || !bytes.Equal(data, relayed) {
				t.Errorf("encodeGossip differs from drand's relay encoding: %v", err)
			}
		})
	}
}

// FuzzGossipValidate feeds arbitrary messages to the validator of a fresh
// source: it must never panic, accept only what decodes and verifies and
// is not in the future, keep exactly what it accepts, and never Ignore a
// message on a source that holds nothing.
func FuzzGossipValidate(f *testing.F) {
	signer, err := NewSigner(bytes.Repeat([]byte("fuzz"), 8), gossipPeriod, 1_700_000_000, "fuzz")
	if err != nil {
		f.Fatal(err)
	}
	info := signer.Info()
	clock := WithGossipClock(gossipFixedClock{info.TimeOf(100)})
	verifier, err := NewVerifier(info)
	if err != nil {
		f.Fatal(err)
	}
	for _, r := range []uint64{1, 2, 99, 100, 101, 1 << 40} {
		b := gossipSign(f, signer, r)
		f.Add(gossipBytes(f, b))
		b.Randomness = nil
		f.Add(gossipBytes(f, b))
	}
	wrong := gossipSign(f, signer, 3)
	wrong.Randomness = bytes.Repeat([]byte{1}, 32)
	f.Add(gossipBytes(f, wrong))
	f.Add(gossipBytes(f, withPrevious(gossipSign(f, signer, 4), []byte{1, 2, 3})))
	f.Add(gossipBytes(f, withRound(gossipSign(f, signer, 5), 6)))
	f.Add([]byte{})
	f.Add([]byte("\x08\x01\x12\x00"))
	f.Add(bytes.Repeat([]byte{0xff}, MaxGossipSize+1))

	done, cancel := context.WithCancel(context.Background())
	cancel() // Get must answer from what is held, never wait
	f.Fuzz(func(t *testing.T, data []byte) {
		g := newGossipSource(t, info, clock)
		res := g.Validate(context.Background(), "", data)
		b, derr := decodeGossip(data)
		switch res {
		case pubsub.ValidationAccept:
			if derr != nil || len(data) > MaxGossipSize {
				t.Fatalf("accepted a message that does not decode (%v) or is %d bytes", derr, len(data))
			}
			if b.Round > 101 {
				t.Fatalf("accepted future round %d", b.Round)
			}
			got, err := g.Get(done, b.Round)
			if err != nil {
				t.Fatalf("accepted round %d is not kept: %v", b.Round, err)
			}
			if err := verifier.Verify(got); err != nil {
				t.Fatalf("kept a beacon that does not verify: %v", err)
			}
			if again := g.Validate(context.Background(), "", data); again != pubsub.ValidationIgnore {
				t.Fatalf("second copy judged %s, want ignore", resultName(again))
			}
		case pubsub.ValidationReject:
			if derr == nil && b.Round <= 101 {
				if _, err := g.Get(done, b.Round); err == nil {
					t.Fatalf("rejected round %d is kept", b.Round)
				}
			}
		default:
			t.Fatalf("a source that holds nothing judged a message %s", resultName(res))
		}
	})
}

func resultName(r pubsub.ValidationResult) string {
	switch r {
	case pubsub.ValidationAccept:
		return "accept"
	case pubsub.ValidationIgnore:
		return "ignore"
	default:
		return "reject"
	}
}
