package compute

import (
	"bytes"
	"context"
	"crypto/rand"
	"errors"
	"math"
	mrand "math/rand/v2"
	"strings"
	"sync"
	"sync/atomic"
	"testing"
	"time"

	"github.com/libp2p/go-libp2p/core/crypto"
	"github.com/libp2p/go-libp2p/core/host"
	"github.com/libp2p/go-libp2p/core/network"
	"github.com/libp2p/go-libp2p/core/peer"
	"github.com/libp2p/go-libp2p/core/protocol"
	mocknet "github.com/libp2p/go-libp2p/p2p/net/mock"
	ma "github.com/multiformats/go-multiaddr"

	"github.com/aropeer/aropeer/proofs"
	"github.com/aropeer/aropeer/wire"
)

// testParams keep products small: n = 64 for the claims below, with a
// budget that is all Overhead, far above what n = 64 takes anywhere.
func testParams() Params {
	p := DefaultParams()
	p.MaxN = 64
	p.Overhead = 2 * time.Second
	return p
}

// testClaim is an edge's compute offer of 1 TOPS.
var testClaim = proofs.Offer{Kind: proofs.KindCompute, Device: "test-cpu", MilliTOPS: 1000}

func claimOf(o proofs.Offer) func() (proofs.Offer, bool) {
	return func() (proofs.Offer, bool) { return o, true }
}

// detRand is a deterministic stand-in for crypto/rand.
func detRand(seed uint64) *mrand.ChaCha8 {
	return mrand.NewChaCha8([32]byte{byte(seed), byte(seed >> 8), 0xc0})
}

// protoNet is a keeper and an edge on an in-memory network; the edge
// answers compute checks with answer.
type protoNet struct {
	keeper, edge host.Host
	mu           sync.Mutex
	answer       func(ctx context.Context, c proofs.Challenge, s network.Stream)
	challenge    proofs.Challenge
}

func newProtoNet(t testing.TB) *protoNet {
	t.Helper()
	mn := mocknet.New()
	t.Cleanup(func() { mn.Close() })
	pn := &protoNet{}
	add := func(i byte) host.Host {
		k, _, err := crypto.GenerateEd25519Key(rand.Reader)
		if err != nil {
			t.Fatal(err)
		}
		h, err := mn.AddPeer(k, ma.StringCast("/ip4/100.64.0."+string('0'+i)+"/tcp/4242"))
		if err != nil {
			t.Fatal(err)
		}
		return h
	}
	pn.keeper, pn.edge = add(1), add(2)
	pn.edge.SetStreamHandler(Protocol, func(s network.Stream) {
		pn.mu.Lock()
		c, answer := pn.challenge, pn.answer
		pn.mu.Unlock()
		answer(context.Background(), c, s)
	})
	if err := mn.LinkAll(); err != nil {
		t.Fatal(err)
	}
	if err := mn.ConnectAllButSelf(); err != nil {
		t.Fatal(err)
	}
	return pn
}

func (pn *protoNet) challengeOf(i int) proofs.Challenge {
	return proofs.Challenge{
		Network: "devnet", Epoch: 1, Round: 40 + uint64(i), Keeper: pn.keeper.ID(), Edge: pn.edge.ID(),
		Kind: proofs.KindCompute, Seed: bytes.Repeat([]byte{byte(i), byte(i >> 8), 0x3c}, 11),
	}
}

// verify runs c through v against the edge's answer, within deadline.
func (pn *protoNet) verify(t testing.TB, v *Verifier, c proofs.Challenge, answer func(context.Context, proofs.Challenge, network.Stream), deadline time.Duration) proofs.Outcome {
	t.Helper()
	pn.mu.Lock()
	pn.challenge, pn.answer = c, answer
	pn.mu.Unlock()
	ctx, cancel := context.WithTimeout(context.Background(), deadline)
	defer cancel()
	open := func(ctx context.Context, p protocol.ID) (network.Stream, error) {
		return pn.keeper.NewStream(ctx, pn.edge.ID(), p)
	}
	out, err := v.Verify(ctx, c, open)
	if err != nil {
		t.Fatal(err)
	}
	return out
}

func newVerifier(t testing.TB, claim proofs.Offer, opts ...Option) *Verifier {
	t.Helper()
	claims := func(peer.ID) (proofs.Offer, bool) { return claim, true }
	v, err := NewVerifier(claims, append([]Option{WithParams(testParams())}, opts...)...)
	if err != nil {
		t.Fatal(err)
	}
	return v
}

func newResponder(t testing.TB, exec Executor, opts ...Option) *Responder {
	t.Helper()
	r, err := NewResponder(exec, claimOf(testClaim), append([]Option{WithParams(testParams())}, opts...)...)
	if err != nil {
		t.Fatal(err)
	}
	return r
}

// TestHonestCPUPasses: the CPU executor passes every check, and the
// receipt has the figures the issue asks for.
func TestHonestCPUPasses(t *testing.T) {
	pn := newProtoNet(t)
	r := newResponder(t, CPU{})
	v := newVerifier(t, testClaim)
	for i := range 8 {
		out := pn.verify(t, v, pn.challengeOf(i), r.Serve, 10*time.Second)
		if out.Result != proofs.Pass || len(out.Evidence) != 32 {
			t.Fatalf("check %d: %+v", i, out)
		}
		for _, k := range []string{"n", "compute_us", "root_ms", "rows", "rtt_ms", "budget_ms"} {
			if _, ok := out.Measurements[k]; !ok {
				t.Fatalf("check %d: no %q in %v", i, k, out.Measurements)
			}
		}
		if out.Measurements["n"] != 64 || out.Measurements["rows"] != DefaultRows || out.Measurements["compute_us"] < 1 {
			t.Fatalf("check %d: %v", i, out.Measurements)
		}
	}
}

// lazy computes C honestly, then overwrites the rows bad picks with
// garbage, as an edge that computed only the rest would answer.
type lazy struct {
	bad func(i int) bool
}

func (x lazy) Multiply(ctx context.Context, n int, seed [32]byte) (*Product, error) {
	p, err := CPU{Workers: 1}.Multiply(ctx, n, seed)
	if err != nil {
		return nil, err
	}
	for i := range n {
		if x.bad(i) {
			row := p.Row(i)
			for j := range row {
				row[j] = int32(i*j + 1)
			}
		}
	}
	return p, nil
}

// TestLazyCaughtAtTheRate: an edge whose C is right in a share f of its
// rows passes a check of m distinct rows with probability C(fn, m) /
// C(n, m), at most f^m. Over many fixed seeds, each a different product
// of size 80 with exactly 8 garbage rows (f = 0.9), and a deterministic
// keeper randomness, the keeper's judging passes it at that rate,
// within four binomial standard deviations. Every fail names a row.
func TestLazyCaughtAtTheRate(t *testing.T) {
	const n, m, trials = 80, DefaultRows, 400
	keeperRand := detRand(7)
	passed := 0
	for trial := range trials {
		seed := MatrixSeed([]byte{byte(trial), byte(trial >> 8)}, make([]byte, NonceSize))
		p, err := lazy{bad: func(i int) bool { return (i+trial)%10 == 0 }}.Multiply(context.Background(), n, seed)
		if err != nil {
			t.Fatal(err)
		}
		tree := commit(p)
		rows, err := drawRows(keeperRand, n, m)
		if err != nil {
			t.Fatal(err)
		}
		ans, err := answer(p, tree, request{Rows: rows})
		if err != nil {
			t.Fatal(err)
		}
		frame, err := wire.Marshal(ans)
		if err != nil {
			t.Fatal(err)
		}
		switch reason := judgeRows(n, seed, tree.Root(), rows, frame); {
		case reason == "":
			passed++
		case !strings.Contains(reason, "differs from A·B"):
			t.Fatalf("trial %d: %q", trial, reason)
		}
	}
	f := 0.9
	want := 1.0 // C(72, 8) / C(80, 8)
	for i := range m {
		want *= float64(72-i) / float64(80-i)
	}
	sd := math.Sqrt(trials * want * (1 - want))
	if got := float64(passed); math.Abs(got-trials*want) > 4*sd {
		t.Errorf("passed %d of %d, the formula expects %.0f ± %.0f", passed, trials, trials*want, 4*sd)
	}
	if bound := trials*math.Pow(f, m) + 4*math.Sqrt(trials*math.Pow(f, m)*(1-math.Pow(f, m))); float64(passed) > bound {
		t.Errorf("passed %d of %d, above f^m's bound %.0f", passed, trials, bound)
	}
	t.Logf("f=%.1f, m=%d: passed %d of %d; distinct rows give %.3f, f^m = %.3f", f, m, passed, trials, want, math.Pow(f, m))
}

// TestLazyCaughtOverTheStream: the same lazy edge over the protocol,
// with a fifth of its rows wrong, fails most checks naming a row, and
// never fails any other way.
func TestLazyCaughtOverTheStream(t *testing.T) {
	pn := newProtoNet(t)
	r := newResponder(t, lazy{bad: func(i int) bool { return i%5 == 0 }})
	v := newVerifier(t, testClaim, WithRand(detRand(3)))
	caught := 0
	for i := range 12 {
		out := pn.verify(t, v, pn.challengeOf(i), r.Serve, 10*time.Second)
		switch {
		case out.Result == proofs.Fail && strings.Contains(out.Reason, "differs from A·B"):
			caught++
		case out.Result != proofs.Pass:
			t.Fatalf("check %d: %+v", i, out)
		}
	}
	if caught < 6 { // expected 0.8^8 ≈ 17% pass: about 10 of 12 caught
		t.Fatalf("caught %d of 12", caught)
	}
}

// slow is honest but sleeps first, as a device far slower than its
// claim would take.
type slow struct{ d time.Duration }

func (x slow) Multiply(ctx context.Context, n int, seed [32]byte) (*Product, error) {
	select {
	case <-time.After(x.d):
	case <-ctx.Done():
		return nil, ctx.Err()
	}
	return CPU{}.Multiply(ctx, n, seed)
}

// TestSlowMissesDeadline: an honest edge ten times slower than its
// budget fails, the reason naming the deadline, the budget and the time.
func TestSlowMissesDeadline(t *testing.T) {
	p := testParams()
	p.Overhead = 20 * time.Millisecond
	budget := p.Budget(p.N(testClaim.MilliTOPS), testClaim.MilliTOPS)
	pn := newProtoNet(t)
	r := newResponder(t, slow{10 * budget}, WithParams(p))
	v := newVerifier(t, testClaim, WithParams(p))
	out := pn.verify(t, v, pn.challengeOf(1), r.Serve, 10*time.Second)
	if out.Result != proofs.Fail || !strings.Contains(out.Reason, "deadline missed") || !strings.Contains(out.Reason, "budget") {
		t.Fatalf("%+v, want a fail for the deadline", out)
	}
	if _, ok := out.Measurements["rtt_ms"]; !ok {
		t.Fatalf("no round trip in %v", out.Measurements)
	}
	t.Log(out.Reason)
}

// TestSilentEdgeTimesOut: an edge that never acks, before the keeper's
// deadline, is a timeout, not a fail.
func TestSilentEdgeTimesOut(t *testing.T) {
	pn := newProtoNet(t)
	silent := func(_ context.Context, _ proofs.Challenge, s network.Stream) {
		time.Sleep(300 * time.Millisecond)
		s.Reset()
	}
	out := pn.verify(t, newVerifier(t, testClaim), pn.challengeOf(0), silent, 100*time.Millisecond)
	if out.Result != proofs.Timeout {
		t.Fatalf("%+v, want a timeout", out)
	}
}

// fakeEdge speaks the protocol honestly with the CPU executor, then
// hands its rows answer to tamper before sending it.
func fakeEdge(tamper func(*rowsMsg) []byte) func(context.Context, proofs.Challenge, network.Stream) {
	return func(_ context.Context, c proofs.Challenge, s network.Stream) {
		defer s.Close()
		dl := time.Now().Add(5 * time.Second)
		msg, err := wire.ReadFrame(s, maxTaskSize, dl)
		var tk task
		if err != nil || wire.Unmarshal(msg, &tk, maxTaskSize) != nil {
			s.Reset()
			return
		}
		msg, _ = wire.Marshal(ack{})
		wire.WriteFrame(s, msg, dl)
		p, _ := CPU{}.Multiply(context.Background(), int(tk.N), MatrixSeed(c.Seed, tk.Nonce))
		tree := commit(p)
		root := tree.Root()
		msg, _ = wire.Marshal(rootMsg{Root: root[:], ComputeMicros: 5})
		wire.WriteFrame(s, msg, dl)
		msg, err = wire.ReadFrame(s, maxRequestSize, dl)
		var req request
		if err != nil || wire.Unmarshal(msg, &req, maxRequestSize) != nil {
			s.Reset()
			return
		}
		ans, _ := answer(p, tree, req)
		msg = tamper(&ans)
		if msg == nil {
			msg, _ = wire.Marshal(ans)
		}
		wire.WriteFrame(s, msg, dl)
	}
}

// TestWrongAnswersFail: a flipped row byte, a flipped path bit, another
// row, too few rows, a short path, garbage and an edge without a product
// each fail with a reason that says what.
func TestWrongAnswersFail(t *testing.T) {
	pn := newProtoNet(t)
	v := newVerifier(t, testClaim)
	failing := newResponder(t, failingExec{})
	for name, tc := range map[string]struct {
		answer func(context.Context, proofs.Challenge, network.Stream)
		reason string
	}{
		"a flipped row byte": {fakeEdge(func(a *rowsMsg) []byte { a.Rows[3].Row[17] ^= 1; return nil }), "bad path"},
		"a flipped path bit": {fakeEdge(func(a *rowsMsg) []byte { a.Rows[0].Path[2][5] ^= 0x10; return nil }), "bad path"},
		"a short path":       {fakeEdge(func(a *rowsMsg) []byte { a.Rows[1].Path = a.Rows[1].Path[1:]; return nil }), "bad path"},
		"another row": {fakeEdge(func(a *rowsMsg) []byte {
			a.Rows[2].Index = (a.Rows[2].Index + 1) % 64
			return nil
		}), "was asked for"},
		"too few rows": {fakeEdge(func(a *rowsMsg) []byte { a.Rows = a.Rows[:5]; return nil }), "5 rows for the 8 asked for"},
		"a short row":  {fakeEdge(func(a *rowsMsg) []byte { a.Rows[4].Row = a.Rows[4].Row[:8]; return nil }), "row of 8 bytes"},
		"garbage":      {fakeEdge(func(*rowsMsg) []byte { return []byte{0xff, 0x00} }), "malformed rows"},
		"no product":   {failing.Serve, "has no product: compute: out of order"},
	} {
		out := pn.verify(t, v, pn.challengeOf(9), tc.answer, 10*time.Second)
		if out.Result != proofs.Fail || !strings.Contains(out.Reason, tc.reason) {
			t.Errorf("%s: %+v, want a fail saying %q", name, out, tc.reason)
		}
	}
}

type failingExec struct{}

func (failingExec) Multiply(context.Context, int, [32]byte) (*Product, error) {
	return nil, errors.New("compute: out of order")
}

// counting counts products started.
type counting struct {
	n     atomic.Int64
	inner Executor
}

func (x *counting) Multiply(ctx context.Context, n int, seed [32]byte) (*Product, error) {
	x.n.Add(1)
	return x.inner.Multiply(ctx, n, seed)
}

// TestMemoryCapRefuses: a task whose footprint is over the edge's memory
// cap is refused before anything is computed, and the keeper's receipt
// says why (a timeout, retried); checks running at once share the cap.
func TestMemoryCapRefuses(t *testing.T) {
	pn := newProtoNet(t)
	exec := &counting{inner: CPU{}}
	r := newResponder(t, exec, WithMaxMemory(Footprint(64)-1))
	out := pn.verify(t, newVerifier(t, testClaim), pn.challengeOf(2), r.Serve, 10*time.Second)
	if out.Result != proofs.Timeout || !strings.Contains(out.Reason, "refused") || !strings.Contains(out.Reason, "bytes") {
		t.Fatalf("%+v, want a refusal for memory", out)
	}
	if exec.n.Load() != 0 {
		t.Fatalf("%d products computed for a refused task", exec.n.Load())
	}

	shared := newResponder(t, exec, WithMaxMemory(Footprint(64)*3/2))
	if !shared.reserve(Footprint(64)) || shared.reserve(Footprint(64)) {
		t.Fatal("two checks of 64 fit a cap of one and a half")
	}
	shared.release(Footprint(64))
	if !shared.reserve(Footprint(64)) {
		t.Fatal("the cap was not released")
	}
}

// TestSizeMismatchRefused: an edge refuses a size its own claim does not
// give (a keeper with other Params, or a stale claim).
func TestSizeMismatchRefused(t *testing.T) {
	pn := newProtoNet(t)
	p := testParams()
	p.MaxN = 128
	exec := &counting{inner: CPU{}}
	r := newResponder(t, exec) // n = 64
	out := pn.verify(t, newVerifier(t, testClaim, WithParams(p)), pn.challengeOf(3), r.Serve, 10*time.Second)
	if out.Result != proofs.Timeout || !strings.Contains(out.Reason, "size 128") || exec.n.Load() != 0 {
		t.Fatalf("%+v", out)
	}
}

// TestVerifyNeedsAClaim: no claim is the keeper's error, not a verdict.
func TestVerifyNeedsAClaim(t *testing.T) {
	v, err := NewVerifier(func(peer.ID) (proofs.Offer, bool) { return proofs.Offer{}, false })
	if err != nil {
		t.Fatal(err)
	}
	ctx, cancel := context.WithTimeout(context.Background(), time.Second)
	defer cancel()
	_, err = v.Verify(ctx, proofs.Challenge{Kind: proofs.KindCompute, Seed: []byte{1}}, nil)
	if !errors.Is(err, ErrNoClaim) {
		t.Fatalf("%v, want ErrNoClaim", err)
	}
}
