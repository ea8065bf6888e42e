package liveness

import (
	"context"
	"crypto/sha256"
	"errors"
	"fmt"
	"sync"
	"sync/atomic"
	"testing"
	"testing/synctest"
	"time"

	"github.com/libp2p/go-libp2p/core/crypto"
	"github.com/libp2p/go-libp2p/core/host"
	"github.com/libp2p/go-libp2p/core/network"
	"github.com/libp2p/go-libp2p/core/protocol"
	mocknet "github.com/libp2p/go-libp2p/p2p/net/mock"
	ma "github.com/multiformats/go-multiaddr"
	"go.uber.org/goleak"

	"github.com/aropeer/aropeer/proofs"
	"github.com/aropeer/aropeer/wire"
)

func TestMain(m *testing.M) {
	goleak.VerifyTestMain(m)
}

// testKey returns a deterministic ed25519 key, so envelopes (and their
// digests) are reproducible.
func testKey(t testing.TB, seed byte) crypto.PrivKey {
	t.Helper()
	k, _, err := crypto.GenerateEd25519Key(constReader(seed))
	if err != nil {
		t.Fatal(err)
	}
	return k
}

type constReader byte

func (r constReader) Read(p []byte) (int, error) {
	for i := range p {
		p[i] = byte(r) + byte(i)
	}
	return len(p), nil
}

// answerFunc is how the test edge answers a challenge it has read and
// checked. It must close or reset s.
type answerFunc func(ctx context.Context, c proofs.Challenge, s network.Stream)

// harness is a keeper and an edge on an in-memory network. The keeper's
// Opener and the edge's handler play the challenge engine: the opener
// sends the sealed challenge as the first frame, the handler reads and
// checks it and hands the stream to the answer under test.
type harness struct {
	keeper, edge       host.Host
	keeperKey, edgeKey crypto.PrivKey
	ctx                context.Context

	answer answerFunc // set before each Verify, read by the handler
	// bubble says the harness runs in a synctest bubble, where verify
	// waits for the edge with synctest.Wait; outside one (benchmarks) the
	// handler reports each stream it finished on served.
	bubble bool
	served chan struct{}
	opened atomic.Int64 // streams opened by the keeper
	read   atomic.Int64 // bytes the verifier read, over all streams

	mu          sync.Mutex
	keeperScope *recordScope
	edgeScope   *recordScope
	failReserve bool // the keeper's scope refuses memory
	edgeErrs    []error
}

// newHarness links a keeper and an edge with the given one-way latency,
// inside a synctest bubble.
func newHarness(t testing.TB, latency time.Duration) *harness {
	h := newHarnessOutside(t, latency)
	h.bubble = true
	return h
}

// newHarnessOutside is newHarness for use outside a bubble.
func newHarnessOutside(t testing.TB, latency time.Duration) *harness {
	t.Helper()
	mn := mocknet.New()
	t.Cleanup(func() {
		if err := mn.Close(); err != nil {
			t.Error(err)
		}
	})
	mn.SetLinkDefaults(mocknet.LinkOptions{Latency: latency})
	h := &harness{
		keeperKey: testKey(t, 1),
		edgeKey:   testKey(t, 2),
		ctx:       t.Context(),
		served:    make(chan struct{}, 1),
	}
	var err error
	if h.keeper, err = mn.AddPeer(h.keeperKey, ma.StringCast("/ip4/100.64.0.1/tcp/4242")); err != nil {
		t.Fatal(err)
	}
	if h.edge, err = mn.AddPeer(h.edgeKey, ma.StringCast("/ip4/100.64.0.2/tcp/4242")); err != nil {
		t.Fatal(err)
	}
	h.edge.SetStreamHandler(Protocol, h.handle)
	if err := mn.LinkAll(); err != nil {
		t.Fatal(err)
	}
	if err := mn.ConnectAllButSelf(); err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() {
		h.mu.Lock()
		defer h.mu.Unlock()
		for _, err := range h.edgeErrs {
			t.Errorf("edge: %v", err)
		}
	})
	return h
}

// challenge returns a liveness challenge from the keeper to the edge.
func (h *harness) challenge(attempt uint32) proofs.Challenge {
	seed := sha256.Sum256([]byte("round 701 seed"))
	return proofs.Challenge{
		Network: "aro-devnet",
		Epoch:   7,
		Round:   701,
		Keeper:  h.keeper.ID(),
		Edge:    h.edge.ID(),
		Kind:    proofs.KindLiveness,
		Attempt: attempt,
		Seed:    seed[:],
	}
}

// handle is the edge's stream handler: what the engine does before it
// calls Serve.
func (h *harness) handle(s network.Stream) {
	if !h.bubble {
		defer func() { h.served <- struct{}{} }()
	}
	scope := &recordScope{}
	h.mu.Lock()
	h.edgeScope = scope
	h.mu.Unlock()
	s = scopeStream{Stream: s, scope: scope}
	b, err := wire.NewConn(s, proofs.MaxChallengeSize, time.Second).ReadFrame()
	if err != nil {
		h.edgeErr(fmt.Errorf("read challenge: %w", err))
		return
	}
	var c proofs.Challenge
	signer, _, err := wire.OpenMessage(b, proofs.ChallengeDomain, proofs.MaxChallengeSize, &c)
	if err == nil && (signer != c.Keeper || c.Edge != h.edge.ID()) {
		err = fmt.Errorf("challenge signed by %s for edge %s", signer, c.Edge)
	}
	if err != nil {
		_ = s.Reset()
		h.edgeErr(err)
		return
	}
	h.answer(h.ctx, c, s)
}

func (h *harness) edgeErr(err error) {
	h.mu.Lock()
	defer h.mu.Unlock()
	h.edgeErrs = append(h.edgeErrs, err)
}

// opener is the keeper engine's Opener for c.
func (h *harness) opener(c proofs.Challenge) proofs.Opener {
	return func(ctx context.Context, p protocol.ID) (network.Stream, error) {
		env, _, err := wire.SealMessage(h.keeperKey, proofs.ChallengeDomain, c)
		if err != nil {
			return nil, err
		}
		s, err := h.keeper.NewStream(ctx, h.edge.ID(), p)
		if err != nil {
			return nil, err
		}
		h.opened.Add(1)
		deadline, _ := ctx.Deadline()
		if err := wire.WriteFrame(s, env, deadline); err != nil {
			_ = s.Reset()
			return nil, err
		}
		scope := &recordScope{}
		h.mu.Lock()
		h.keeperScope = scope
		scope.failReserve = h.failReserve
		h.mu.Unlock()
		return scopeStream{Stream: countingStream{Stream: s, n: &h.read}, scope: scope}, nil
	}
}

// verify runs one attempt of c against answer with a deadline of d and
// waits for the edge's handler to finish, so nothing outlives the call
// and the edge's checks have been made. In a bubble, synctest.Wait also
// covers a handler that never ran because the keeper reset the stream
// before the edge read it.
func (h *harness) verify(t testing.TB, c proofs.Challenge, d time.Duration, answer answerFunc, opts ...Option) (proofs.Outcome, error) {
	t.Helper()
	h.answer = answer
	ctx, cancel := context.WithTimeout(h.ctx, d)
	defer cancel()
	before := h.opened.Load()
	out, err := NewVerifier(opts...).Verify(ctx, c, h.opener(c))
	if h.bubble {
		synctest.Wait()
		return out, err
	}
	for range h.opened.Load() - before {
		<-h.served
	}
	return out, err
}

// mustVerify is verify for attempts that must yield an outcome.
func (h *harness) mustVerify(t testing.TB, c proofs.Challenge, d time.Duration, answer answerFunc, opts ...Option) proofs.Outcome {
	t.Helper()
	out, err := h.verify(t, c, d, answer, opts...)
	if err != nil {
		t.Fatalf("Verify: %v", err)
	}
	return out
}

// countingStream counts the bytes read through it.
type countingStream struct {
	network.Stream
	n *atomic.Int64
}

func (s countingStream) Read(p []byte) (int, error) {
	n, err := s.Stream.Read(p)
	s.n.Add(int64(n))
	return n, err
}

// scopeStream gives a stream a scope that records what it is asked;
// mocknet's streams have a null scope.
type scopeStream struct {
	network.Stream
	scope *recordScope
}

func (s scopeStream) Scope() network.StreamScope { return s.scope }

type recordScope struct {
	network.NullScope
	mu          sync.Mutex
	service     string
	reserved    int // bytes reserved and not yet released
	maxReserved int
	failReserve bool
}

func (r *recordScope) SetService(srv string) error {
	r.mu.Lock()
	defer r.mu.Unlock()
	r.service = srv
	return nil
}

func (r *recordScope) ReserveMemory(n int, _ uint8) error {
	r.mu.Lock()
	defer r.mu.Unlock()
	if r.failReserve {
		return errors.New("resource limit exceeded")
	}
	r.reserved += n
	r.maxReserved = max(r.maxReserved, r.reserved)
	return nil
}

func (r *recordScope) ReleaseMemory(n int) {
	r.mu.Lock()
	defer r.mu.Unlock()
	r.reserved -= n
}

func (r *recordScope) state() (service string, reserved, maxReserved int) {
	r.mu.Lock()
	defer r.mu.Unlock()
	return r.service, r.reserved, r.maxReserved
}
