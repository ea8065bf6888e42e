package bandwidth

import (
	"bytes"
	"context"
	"crypto/rand"
	"io"
	"math"
	"strings"
	"sync"
	"testing"
	"time"

	"github.com/libp2p/go-libp2p/core/crypto"
	"github.com/libp2p/go-libp2p/core/host"
	"github.com/libp2p/go-libp2p/core/network"
	"github.com/libp2p/go-libp2p/core/peer"
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

// answerFunc is how the test edge answers a probe.
type answerFunc func(ctx context.Context, c proofs.Challenge, s network.Stream)

// protoNet is a keeper and an edge on an in-memory network whose link
// carries bps bytes a second (0: unlimited), shared by both directions.
// As in the storage tests, the opener plays the engine without sending
// the challenge: the edge's handler is given it directly.
type protoNet struct {
	mn           mocknet.Mocknet
	keeper, edge host.Host
	edgeKey      crypto.PrivKey
	mu           sync.Mutex
	answer       answerFunc
	challenge    proofs.Challenge
	handlers     sync.WaitGroup
}

func newProtoNet(t testing.TB, bps float64) *protoNet {
	t.Helper()
	mn := mocknet.New()
	pn := &protoNet{mn: mn}
	t.Cleanup(func() {
		pn.handlers.Wait()
		mn.Close()
	})
	mn.SetLinkDefaults(mocknet.LinkOptions{Bandwidth: bps})
	add := func(i byte) (host.Host, crypto.PrivKey) {
		k, _, err := crypto.GenerateEd25519Key(rand.Reader)
		if err != nil {
			t.Fatal(err)
		}
		h, err := mn.AddPeer(k, ma.StringCast("/ip4/100.64.0."+string('0'+i)+"/tcp/4242"))
		if err != nil {
			t.Fatal(err)
		}
		return h, k
	}
	pn.keeper, _ = add(1)
	pn.edge, pn.edgeKey = add(2)
	pn.edge.SetStreamHandler(Protocol, func(s network.Stream) {
		pn.handlers.Add(1)
		defer pn.handlers.Done()
		pn.mu.Lock()
		c, answer := pn.challenge, pn.answer
		pn.mu.Unlock()
		ctx, cancel := context.WithTimeout(context.Background(), 30*time.Second)
		defer cancel()
		answer(ctx, c, s)
	})
	if err := mn.LinkAll(); err != nil {
		t.Fatal(err)
	}
	if err := mn.ConnectAllButSelf(); err != nil {
		t.Fatal(err)
	}
	return pn
}

// resetLink restarts the link's rate limiter, so that the allowance it
// gathered while idle does not burst into the next probe.
func (pn *protoNet) resetLink(bps float64) {
	for _, l := range pn.mn.LinksBetweenPeers(pn.keeper.ID(), pn.edge.ID()) {
		l.SetOptions(mocknet.LinkOptions{Bandwidth: bps})
	}
}

func (pn *protoNet) challengeOf(epoch uint64, i int) proofs.Challenge {
	return proofs.Challenge{
		Network: "devnet", Epoch: epoch, Round: 40 + uint64(i), Keeper: pn.keeper.ID(), Edge: pn.edge.ID(),
		Kind: proofs.KindBandwidth, Seed: bytes.Repeat([]byte{byte(i), 0x5a, 0xa5, 7}, 8),
	}
}

func claims(up, down uint64) proofs.Claims {
	return func(peer.ID) (proofs.Offer, bool) {
		return proofs.Offer{Kind: proofs.KindBandwidth, UpMbit: up, DownMbit: down}, true
	}
}

func (pn *protoNet) verify(t testing.TB, v *Verifier, c proofs.Challenge, answer answerFunc, deadline time.Duration) proofs.Outcome {
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

// mbps is the link rate in bytes per second of m Mbit/s.
func mbps(m float64) float64 { return m * 1e6 / 8 }

// TestAccuracy: on links of 10, 50 and 200 Mbit/s an honest edge claiming
// its link passes, and the keeper measures each way within 3% of the
// link rate. (mocknet's links have one rate for both directions; the
// probe's directions run one after the other, so each has the link to
// itself.)
func TestAccuracy(t *testing.T) {
	if testing.Short() {
		t.Skip("probes take seconds")
	}
	for _, rate := range []uint64{10, 50, 200} {
		pn := newProtoNet(t, mbps(float64(rate)))
		r := NewResponder(pn.edgeKey)
		v := NewVerifier(claims(rate, rate), WithProbeDuration(1500*time.Millisecond))
		pn.resetLink(mbps(float64(rate)))
		out := pn.verify(t, v, pn.challengeOf(1, 0), r.Serve, 20*time.Second)
		if out.Result != proofs.Pass {
			t.Fatalf("%d Mbit/s: %+v", rate, out)
		}
		for _, k := range []string{"up_kbit", "down_kbit"} {
			got := float64(out.Measurements[k]) / 1000
			if math.Abs(got-float64(rate))/float64(rate) > 0.03 {
				t.Errorf("%d Mbit/s link: %s %.2f Mbit/s, off by more than 3%%", rate, k, got)
			}
		}
		if out.Measurements["mbit_s"] != min(out.Measurements["up_mbit"], out.Measurements["down_mbit"]) || out.Measurements["intervals"] < 5 || len(out.Evidence) != 32 {
			t.Errorf("%d Mbit/s: %+v", rate, out)
		}
		t.Logf("%d Mbit/s link: %v", rate, out.Measurements)
		if s := r.Stats(); s.Served != 1 || s.BytesSent == 0 || s.BytesReceived == 0 {
			t.Errorf("stats %+v", s)
		}
	}
}

// TestSlowEdgeFails: an edge claiming 5 times its link fails, the reason
// naming the measured and claimed rates.
func TestSlowEdgeFails(t *testing.T) {
	pn := newProtoNet(t, mbps(20))
	v := NewVerifier(claims(100, 100), WithProbeDuration(400*time.Millisecond), WithStallTimeout(500*time.Millisecond))
	pn.resetLink(mbps(20))
	out := pn.verify(t, v, pn.challengeOf(1, 0), NewResponder(pn.edgeKey).Serve, 10*time.Second)
	if out.Result != proofs.Fail || !strings.Contains(out.Reason, "claimed 100") || !strings.Contains(out.Reason, "measured") {
		t.Fatalf("%+v, want a fail naming the measured and claimed rates", out)
	}
	t.Log(out.Reason)
}

// TestFastEdgePasses: an edge whose link is far faster than its claim
// finishes the probe before steady intervals form; its overall rate, a
// lower bound of its link's, passes the claim.
func TestFastEdgePasses(t *testing.T) {
	pn := newProtoNet(t, 0) // unshaped
	v := NewVerifier(claims(5, 5))
	out := pn.verify(t, v, pn.challengeOf(1, 0), NewResponder(pn.edgeKey).Serve, 10*time.Second)
	if out.Result != proofs.Pass || out.Measurements["up_mbit"] < 5 || out.Measurements["down_mbit"] < 5 {
		t.Fatalf("%+v, want a pass measuring at least the claimed 5 Mbit/s", out)
	}
}

// cheat answers like an honest edge up to the Up bytes, which it
// produces with send.
func cheat(send func(s network.Stream, c proofs.Challenge, n uint64)) answerFunc {
	return func(ctx context.Context, c proofs.Challenge, s network.Stream) {
		msg, err := wire.ReadFrame(s, maxRequestSize, time.Now().Add(time.Second))
		var req request
		if err != nil || wire.Unmarshal(msg, &req, maxRequestSize) != nil {
			s.Reset()
			return
		}
		ackMsg, _ := wire.Marshal(ack{})
		wire.WriteFrame(s, ackMsg, time.Now().Add(time.Second))
		send(s, c, req.Up)
	}
}

// TestWrongBytesFail: an edge that sends a wrong byte fails at once,
// the reason naming its offset, without the keeper reading on.
func TestWrongBytesFail(t *testing.T) {
	pn := newProtoNet(t, 0)
	const bad = 300_001
	wrong := cheat(func(s network.Stream, c proofs.Challenge, n uint64) {
		data := make([]byte, n)
		NewKeystream(c.Seed, Up, c.Attempt).Read(data)
		data[bad] ^= 0x40
		s.Write(data[:bad+chunkSize])
		time.Sleep(2 * time.Second) // the keeper must not wait for the rest
		s.Reset()
	})
	v := NewVerifier(claims(100, 100))
	start := time.Now()
	out := pn.verify(t, v, pn.challengeOf(1, 0), wrong, 10*time.Second)
	if out.Result != proofs.Fail || !strings.Contains(out.Reason, "offset 300001") {
		t.Fatalf("%+v, want a fail at offset %d", out, bad)
	}
	if d := time.Since(start); d > time.Second {
		t.Errorf("judged after %s", d)
	}
	// Cached bytes of another probe are wrong bytes too.
	other := cheat(func(s network.Stream, c proofs.Challenge, n uint64) {
		data := make([]byte, n)
		NewKeystream(c.Seed, Up, c.Attempt+1).Read(data)
		s.Write(data)
		s.Close()
	})
	if out := pn.verify(t, v, pn.challengeOf(1, 1), other, 10*time.Second); out.Result != proofs.Fail || !strings.Contains(out.Reason, "offset 0 ") {
		t.Fatalf("%+v, want a fail at offset 0", out)
	}
}

// TestStallTimesOut: an edge that stops sending, or never accepts,
// times out after the stall timeout, well before the deadline.
func TestStallTimesOut(t *testing.T) {
	pn := newProtoNet(t, 0)
	stall := cheat(func(s network.Stream, c proofs.Challenge, n uint64) {
		data := make([]byte, 1<<20)
		NewKeystream(c.Seed, Up, c.Attempt).Read(data)
		s.Write(data)
		time.Sleep(time.Second)
		s.Reset()
	})
	silent := func(ctx context.Context, c proofs.Challenge, s network.Stream) {
		time.Sleep(time.Second)
		s.Reset()
	}
	v := NewVerifier(claims(100, 100), WithStallTimeout(200*time.Millisecond))
	for name, answer := range map[string]answerFunc{"stalls": stall, "silent": silent} {
		start := time.Now()
		out := pn.verify(t, v, pn.challengeOf(1, 0), answer, 10*time.Second)
		if out.Result != proofs.Timeout || !strings.Contains(out.Reason, "stalled") {
			t.Errorf("%s: %+v, want a timeout for a stall", name, out)
		}
		if d := time.Since(start); d > 800*time.Millisecond {
			t.Errorf("%s: judged after %s", name, d)
		}
	}
}

// TestEpochByteCap: an edge serves at most its bytes per epoch: the
// probe that would pass the budget is refused, counted, and named in the
// keeper's outcome; the next epoch has a fresh budget.
func TestEpochByteCap(t *testing.T) {
	pn := newProtoNet(t, mbps(100))
	v := NewVerifier(claims(100, 100), WithProbeDuration(400*time.Millisecond), WithInterval(50*time.Millisecond))
	per := 2 * v.probeBytes(100) // both ways
	r := NewResponder(pn.edgeKey, WithEpochBytes(2*per+per/2))
	for i, want := range []proofs.Result{proofs.Pass, proofs.Pass, proofs.Timeout} {
		out := pn.verify(t, v, pn.challengeOf(3, i), r.Serve, 10*time.Second)
		if out.Result != want {
			t.Fatalf("probe %d: %+v, want %s", i, out, want)
		}
		if want == proofs.Timeout && !strings.Contains(out.Reason, "budget for epoch 3") {
			t.Fatalf("probe %d: reason %q", i, out.Reason)
		}
	}
	if s := r.Stats(); s.RefusedBudget != 1 || s.Served != 2 || s.BytesSent != per {
		t.Errorf("stats %+v", s)
	}
	pn.resetLink(mbps(100))
	if out := pn.verify(t, v, pn.challengeOf(4, 0), r.Serve, 10*time.Second); out.Result != proofs.Pass {
		t.Errorf("next epoch: %+v", out)
	}
}

// TestProbeSizeCap: a keeper asking for more than the edge's cap per
// direction is refused and counted.
func TestProbeSizeCap(t *testing.T) {
	pn := newProtoNet(t, 0)
	r := NewResponder(pn.edgeKey, WithMaxProbeBytes(1<<20))
	v := NewVerifier(claims(100, 100), WithMaxProbeBytes(64<<20))
	out := pn.verify(t, v, pn.challengeOf(1, 0), r.Serve, 10*time.Second)
	if out.Result != proofs.Timeout || !strings.Contains(out.Reason, "over the cap") || r.Stats().RefusedSize != 1 {
		t.Fatalf("%+v, stats %+v", out, r.Stats())
	}
}

// TestConcurrencyCap: with one probe running, an edge capped at one
// refuses the next.
func TestConcurrencyCap(t *testing.T) {
	pn := newProtoNet(t, mbps(20))
	r := NewResponder(pn.edgeKey, WithMaxConcurrent(1))
	v := NewVerifier(claims(20, 20), WithProbeDuration(time.Second))
	c := pn.challengeOf(1, 0)
	pn.mu.Lock()
	pn.challenge, pn.answer = c, r.Serve
	pn.mu.Unlock()
	done := make(chan proofs.Outcome)
	go func() {
		ctx, cancel := context.WithTimeout(context.Background(), 10*time.Second)
		defer cancel()
		out, _ := v.Verify(ctx, c, func(ctx context.Context, p protocol.ID) (network.Stream, error) {
			return pn.keeper.NewStream(ctx, pn.edge.ID(), p)
		})
		done <- out
	}()
	for r.active.Load() == 0 {
		time.Sleep(5 * time.Millisecond)
	}
	out := pn.verify(t, v, pn.challengeOf(1, 1), r.Serve, 10*time.Second)
	if out.Result != proofs.Timeout || !strings.Contains(out.Reason, "at once") {
		t.Errorf("second probe: %+v, want refused", out)
	}
	if first := <-done; first.Result != proofs.Pass {
		t.Errorf("first probe: %+v", first)
	}
	if s := r.Stats(); s.RefusedBusy != 1 || s.Served != 1 {
		t.Errorf("stats %+v", s)
	}
}

// TestForgedReportFails: an edge that does not hash the Down bytes but
// reports the digest of what it guesses they were fails: they are keyed
// by the keeper's secret, not by the seed.
func TestForgedReportFails(t *testing.T) {
	pn := newProtoNet(t, mbps(100))
	forge := func(ctx context.Context, c proofs.Challenge, s network.Stream) {
		msg, err := wire.ReadFrame(s, maxRequestSize, time.Now().Add(time.Second))
		var req request
		if err != nil || wire.Unmarshal(msg, &req, maxRequestSize) != nil {
			s.Reset()
			return
		}
		ackMsg, _ := wire.Marshal(ack{})
		wire.WriteFrame(s, ackMsg, time.Now().Add(time.Second))
		r := NewResponder(pn.edgeKey)
		if err := r.send(s, c, req.Up); err != nil {
			s.Reset()
			return
		}
		guess := make([]byte, req.Down)
		NewKeystream(c.Seed, Down, c.Attempt).Read(guess)
		var sum downDigest
		sum.Write(guess)
		rep := reportFor(c)
		rep.Bytes, rep.Digest = req.Down, sum.Sum()
		for i := range 20 {
			rep.Micros = append(rep.Micros, uint64(i)*10_000)
			rep.Sizes = append(rep.Sizes, req.Down/20)
		}
		env, _ := sealReport(pn.edgeKey, rep)
		io.CopyN(io.Discard, s, int64(req.Down))
		wire.WriteFrame(s, env, time.Now().Add(time.Second))
		s.Close()
	}
	v := NewVerifier(claims(100, 100), WithProbeDuration(400*time.Millisecond), WithInterval(50*time.Millisecond))
	pn.resetLink(mbps(100))
	out := pn.verify(t, v, pn.challengeOf(1, 0), forge, 10*time.Second)
	if out.Result != proofs.Fail || !strings.Contains(out.Reason, "digest") {
		t.Fatalf("%+v, want a fail on the digest", out)
	}
}

// TestProbersShareTheClaim: a keeper that probes with two others judges
// its third of the claim, at half the minimum. Over a link of 20 Mbit/s,
// an edge claiming 48 passes when three keepers probe it together and
// fails when one does alone, the reason naming the share.
func TestProbersShareTheClaim(t *testing.T) {
	pn := newProtoNet(t, mbps(20))
	three := func(proofs.Challenge) int { return 3 }
	v := NewVerifier(claims(48, 48), WithProbeDuration(500*time.Millisecond), WithProbers(three))
	out := pn.verify(t, v, pn.challengeOf(1, 0), NewResponder(pn.edgeKey).Serve, 10*time.Second)
	if out.Result != proofs.Pass {
		t.Fatalf("with three probers: %+v", out)
	}
	alone := NewVerifier(claims(48, 48), WithProbeDuration(500*time.Millisecond))
	out = pn.verify(t, alone, pn.challengeOf(1, 1), NewResponder(pn.edgeKey).Serve, 10*time.Second)
	if out.Result != proofs.Fail || !strings.Contains(out.Reason, "claimed 48") {
		t.Fatalf("alone: %+v, want a fail against the whole claim", out)
	}
	// With others, a keeper fails the edge only below half the minimum of
	// its share (the round's sum is judged in aggregation): 20 of a share
	// of 30 passes, 20 of a share of 66.7 does not.
	split := NewVerifier(claims(90, 90), WithProbeDuration(500*time.Millisecond), WithProbers(three))
	out = pn.verify(t, split, pn.challengeOf(1, 2), NewResponder(pn.edgeKey).Serve, 10*time.Second)
	if out.Result != proofs.Pass {
		t.Fatalf("claim of 90 over a 20 Mbit/s link with three probers: %+v", out)
	}
	over := NewVerifier(claims(200, 200), WithProbeDuration(500*time.Millisecond), WithProbers(three))
	out = pn.verify(t, over, pn.challengeOf(1, 3), NewResponder(pn.edgeKey).Serve, 10*time.Second)
	if out.Result != proofs.Fail || !strings.Contains(out.Reason, "66.7 for each of 3 keepers probing together (at least 40% needed)") {
		t.Fatalf("claim of 200 over a 20 Mbit/s link with three probers: %+v", out)
	}
}
