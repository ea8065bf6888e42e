package bandwidth

import (
	"bytes"
	"context"
	"crypto/sha256"
	"errors"
	"fmt"
	"io"
	"math"
	"sync/atomic"
	"time"

	"github.com/libp2p/go-libp2p/core/network"
	"github.com/libp2p/go-libp2p/core/protocol"

	"github.com/aropeer/aropeer/proofs"
	"github.com/aropeer/aropeer/wire"
)

// ErrNoClaim means the edge claims no bandwidth either way: there is
// nothing to size a probe by, and the schedule should not have called
// for one.
var ErrNoClaim = errors.New("bandwidth: the edge claims no bandwidth")

// Verifier runs bandwidth probes from a keeper: it has the edge send it
// Up keystream, checking every byte as it arrives and metering it, then
// sends the edge Down keystream and checks the edge's signed report of
// it. Each direction lasts about the probe duration at the claimed rate.
type Verifier struct {
	claims proofs.Claims
	o      options
}

var _ proofs.Verifier = (*Verifier)(nil)

// NewVerifier judges edges against what claims says they claim.
func NewVerifier(claims proofs.Claims, opts ...Option) *Verifier {
	return &Verifier{claims: claims, o: newOptions(opts)}
}

// Kind returns proofs.KindBandwidth.
func (v *Verifier) Kind() proofs.Kind { return proofs.KindBandwidth }

// Protocol returns Protocol.
func (v *Verifier) Protocol() protocol.ID { return Protocol }

// probeBytes sizes one direction of a probe for a claim in Mbit/s: the
// bytes the claim moves in the probe duration, within the caps. A claim
// of 0 probes nothing that way.
func (v *Verifier) probeBytes(claim float64) uint64 {
	if claim == 0 {
		return 0
	}
	n := claim * 1e6 / 8 * v.o.probeDuration.Seconds()
	return uint64(min(max(n, minProbeBytes), float64(v.o.maxProbeBytes)))
}

// limit is how long a direction of n bytes may take: twice the probe
// duration (so an edge at half its claim still finishes, and fails on
// its figure rather than on time), plus the stall timeout.
func (v *Verifier) limit() time.Duration { return 2*v.o.probeDuration + v.o.stallTimeout }

// Verify runs one probe before ctx's deadline, which it requires.
//
// No answer, a refusal, or no bytes for the stall timeout is a Timeout;
// a wrong byte is a Fail naming its offset, as soon as it arrives; a rate
// below the minimum share of the claim either way is a Fail naming the
// measured and claimed figures. Measurements (both on a pass and on a
// fail by rate): "up_mbit" and "down_mbit" (edge to keeper and keeper to
// edge), "up_kbit" and "down_kbit" for finer figures, "mbit_s" the lower
// of the two measured directions, "bytes" both ways, "ms" the time of
// both transfers, "intervals" the steady intervals of the shorter
// measure. Evidence is the SHA-256 of the edge's signed report.
func (v *Verifier) Verify(ctx context.Context, c proofs.Challenge, open proofs.Opener) (proofs.Outcome, error) {
	if err := checkChallenge(c); err != nil {
		return proofs.Outcome{}, err
	}
	offer, ok := v.claims(c.Edge)
	if !ok || (offer.UpMbit == 0 && offer.DownMbit == 0) {
		return proofs.Outcome{}, fmt.Errorf("%w: edge %s", ErrNoClaim, c.Edge)
	}
	k := 1
	if v.o.probers != nil {
		k = max(1, v.o.probers(c))
	}
	req := request{Up: v.probeBytes(float64(offer.UpMbit) / float64(k)), Down: v.probeBytes(float64(offer.DownMbit) / float64(k))}
	s, noAnswer, err := proofs.Open(ctx, open, Protocol, "probe")
	if err != nil {
		return proofs.Outcome{}, fmt.Errorf("bandwidth: verify: %w", err)
	}
	if s == nil {
		return noAnswer, nil
	}
	stop := wire.ResetOnDone(ctx, s)
	defer stop()
	p := &probe{v: v, c: c, s: s, ctx: ctx, req: req, offer: offer, probers: k}
	out := p.run()
	if err := stopped(ctx); err != nil {
		return proofs.Outcome{}, err
	}
	if out.Result != proofs.Pass {
		_ = s.Reset()
	} else {
		_ = s.Close()
	}
	return out, nil
}

// probe is one run of the protocol from the keeper's side.
type probe struct {
	v     *Verifier
	c     proofs.Challenge
	s     network.Stream
	ctx   context.Context
	req   request
	offer proofs.Offer
	// probers is how many keepers probe the edge at once; this one judges
	// its share of the claim.
	probers int
	begin   time.Time // when the request was sent
}

func (p *probe) run() proofs.Outcome {
	msg, err := wire.Marshal(p.req)
	if err != nil {
		return timeout("keeper could not encode its request: " + err.Error())
	}
	stall := p.v.o.stallTimeout
	p.begin = time.Now()
	if err := wire.WriteFrame(p.s, msg, time.Now().Add(stall)); err != nil {
		return p.broken("sending the request", err, false)
	}
	g := newGuard(p.s, stall)
	frame, err := wire.ReadFrame(p.s, maxAckSize, time.Now().Add(stall))
	g.stop()
	if err != nil {
		return p.broken("waiting for the edge to accept the probe", err, g.fired())
	}
	var a ack
	if err := wire.Unmarshal(frame, &a, maxAckSize); err != nil {
		return fail("malformed ack: " + clip(err.Error()))
	}
	if a.Refused != "" {
		return timeout("the edge refused the probe: " + clip(a.Refused))
	}

	up, out, ok := p.receiveUp()
	if !ok {
		return out
	}
	down, env, out, ok := p.sendDown()
	if !ok {
		return out
	}
	return p.judge(up, down, env)
}

// receiveUp reads and checks the edge's Up bytes and meters them.
func (p *probe) receiveUp() (Throughput, proofs.Outcome, bool) {
	n := p.req.Up
	if n == 0 {
		return Throughput{}, proofs.Outcome{}, true
	}
	check := NewChecker(p.c.Seed, Up, p.c.Attempt)
	buf := make([]byte, chunkSize)
	var arrivals []Arrival
	g := newGuard(p.s, p.v.o.stallTimeout)
	defer g.stop()
	start := time.Now()
	limit := p.v.limit()
	var got uint64
	for got < n {
		if err := p.s.SetReadDeadline(time.Now().Add(p.v.o.stallTimeout)); err != nil {
			return Throughput{}, timeout("keeper could not set a deadline: " + err.Error()), false
		}
		k, err := p.s.Read(buf[:min(uint64(len(buf)), n-got)])
		if k > 0 {
			at := time.Since(start)
			g.kick()
			if _, err := check.Write(buf[:k]); err != nil {
				var m *MismatchError
				if errors.As(err, &m) {
					return Throughput{}, fail(fmt.Sprintf("wrong byte at offset %d of the %d the edge sends (up)", m.Offset, n)), false
				}
				return Throughput{}, fail(err.Error()), false
			}
			got += uint64(k)
			arrivals = append(arrivals, Arrival{At: at, Bytes: int64(k)})
			if at > limit && got < n {
				return p.tooSlow(Up, arrivals, got, n)
			}
		}
		if err != nil && got < n {
			if errors.Is(err, io.EOF) {
				return Throughput{}, fail(fmt.Sprintf("the edge sent %d of %d bytes up and closed", got, n)), false
			}
			return Throughput{}, p.broken(fmt.Sprintf("receiving up after %d of %d bytes", got, n), err, g.fired()), false
		}
	}
	t, err := meterComplete(arrivals, p.v.o.interval, p.window())
	if err != nil {
		return Throughput{}, fail(fmt.Sprintf("up: %v", err)), false
	}
	return t, proofs.Outcome{}, true
}

// window is where a probe's steady rate ends: for keepers probing
// together, the first 70% of the probe's duration, which every one of
// their flows fills (see MeterUntil); for a keeper alone, the whole
// transfer.
func (p *probe) window() time.Duration {
	if p.probers <= 1 {
		return 0
	}
	return p.v.o.probeDuration * 7 / 10
}

// meterComplete meters a transfer that delivered all its bytes. One that
// ended before steady intervals could form (a link much faster than the
// claim that sized it) gets its overall rate: with the ramp-up and the
// round trip in it, a lower bound of the link's, which is what the claim
// is judged against. A transfer whose bytes all arrived within the
// first sampleGranule (an edge reports times no finer) is taken to have
// lasted that long.
func meterComplete(arrivals []Arrival, interval, until time.Duration) (Throughput, error) {
	t, err := MeterUntil(arrivals, interval, until)
	if !errors.Is(err, ErrTooShort) || t.Bytes == 0 {
		return t, err
	}
	t.Duration = max(t.Duration, sampleGranule)
	t.Mbit, t.Intervals = mbit(t.Bytes, t.Duration), 0
	return t, nil
}

// tooSlow fails a direction that ran past the limit, with its figure.
func (p *probe) tooSlow(d Direction, arrivals []Arrival, got, n uint64) (Throughput, proofs.Outcome, bool) {
	claim := p.offer.UpMbit
	if d == Down {
		claim = p.offer.DownMbit
	}
	reason := fmt.Sprintf("%s: %d of %d bytes within %s", d, got, n, p.v.limit())
	if t, err := Meter(arrivals, p.v.o.interval); err == nil {
		reason += fmt.Sprintf(": measured %.1f Mbit/s, claimed %d", t.Mbit, claim)
	}
	return Throughput{}, fail(reason), false
}

// sendDown sends the Down keystream and reads the edge's signed report.
func (p *probe) sendDown() (Throughput, []byte, proofs.Outcome, bool) {
	n := p.req.Down
	// The Down bytes are keyed by a secret of the keeper's, not by the
	// challenge seed: the edge knows the seed and could otherwise compute
	// the digest without receiving a byte.
	secret := make([]byte, 32)
	if _, err := io.ReadFull(p.v.o.rand, secret); err != nil {
		return Throughput{}, nil, timeout("keeper could not draw a secret: " + err.Error()), false
	}
	ks := NewKeystream(secret, Down, p.c.Attempt)
	var h downDigest
	buf := make([]byte, chunkSize)
	stall := p.v.o.stallTimeout
	g := newGuard(p.s, stall)
	start := time.Now()
	for sent := uint64(0); sent < n; {
		b := buf[:min(uint64(len(buf)), n-sent)]
		ks.Read(b)
		h.Write(b)
		if err := p.s.SetWriteDeadline(time.Now().Add(stall)); err != nil {
			g.stop()
			return Throughput{}, nil, timeout("keeper could not set a deadline: " + err.Error()), false
		}
		if _, err := p.s.Write(b); err != nil {
			g.stop()
			return Throughput{}, nil, p.broken(fmt.Sprintf("sending down after %d of %d bytes", sent, n), err, g.fired()), false
		}
		g.kick()
		sent += uint64(len(b))
		if time.Since(start) > p.v.limit() && sent < n {
			g.stop()
			return Throughput{}, nil, fail(fmt.Sprintf("down: the edge took %d of %d bytes within %s", sent, n, p.v.limit())), false
		}
	}
	g.stop()
	// The edge may still be receiving what the transports buffered: it
	// has until the direction's limit, and the stall timeout after it.
	wait := max(p.v.limit()-time.Since(start), 0) + stall
	g = newGuard(p.s, wait)
	env, err := wire.ReadFrame(p.s, maxReportSize, time.Now().Add(wait))
	g.stop()
	if err != nil {
		return Throughput{}, nil, p.broken("waiting for the edge's report", err, g.fired()), false
	}
	var rep Report
	signer, _, err := wire.OpenMessage(env, ReportDomain, maxReportSize, &rep)
	if err != nil {
		return Throughput{}, nil, fail("bad report: " + clip(err.Error())), false
	}
	want := reportFor(p.c)
	switch {
	case signer != p.c.Edge:
		return Throughput{}, nil, fail(fmt.Sprintf("report signed by %s, not the edge", signer)), false
	case rep.Network != want.Network || rep.Round != want.Round || rep.Attempt != want.Attempt || rep.Edge != want.Edge || rep.Keeper != want.Keeper:
		return Throughput{}, nil, fail("report for another challenge"), false
	case rep.Bytes != n:
		return Throughput{}, nil, fail(fmt.Sprintf("report of %d bytes received, %d sent", rep.Bytes, n)), false
	case !bytes.Equal(rep.Digest, h.Sum()):
		return Throughput{}, nil, fail("report digest does not match the bytes sent down"), false
	}
	if n == 0 {
		return Throughput{}, env, proofs.Outcome{}, true
	}
	arrivals, err := rep.arrivals()
	if err != nil {
		return Throughput{}, nil, fail("malformed report: " + clip(err.Error())), false
	}
	// The edge starts its clock after it read the request: its report
	// cannot span more than the keeper has seen since it sent it.
	if seen := time.Since(p.begin); len(arrivals) > 0 && arrivals[len(arrivals)-1].At > seen {
		return Throughput{}, nil, fail(fmt.Sprintf("report spans %s, more than the %s the keeper saw", arrivals[len(arrivals)-1].At, seen)), false
	}
	t, err := meterComplete(arrivals, p.v.o.interval, p.window())
	if err != nil {
		return Throughput{}, nil, fail(fmt.Sprintf("down: %v", err)), false
	}
	return t, env, proofs.Outcome{}, true
}

// judge compares the measures with the claims.
func (p *probe) judge(up, down Throughput, env []byte) proofs.Outcome {
	digest := sha256.Sum256(env)
	out := proofs.Outcome{Result: proofs.Pass, Evidence: digest[:]}
	m := map[string]int64{
		"bytes": up.Bytes + down.Bytes,
		"ms":    (up.Duration + down.Duration).Milliseconds(),
	}
	lowest, intervals := math.Inf(1), math.MaxInt
	var reasons []string
	for _, d := range []struct {
		name  string
		t     Throughput
		claim uint64
	}{{"up", up, p.offer.UpMbit}, {"down", down, p.offer.DownMbit}} {
		if d.claim == 0 {
			continue
		}
		m[d.name+"_mbit"] = int64(math.Round(d.t.Mbit))
		m[d.name+"_kbit"] = int64(math.Round(d.t.Mbit * 1000))
		lowest, intervals = min(lowest, d.t.Mbit), min(intervals, d.t.Intervals)
		share := float64(d.claim) / float64(p.probers)
		// A keeper probing with others cannot tell a flow that got less
		// than its share of a fast link from a slow link: it fails the
		// edge only below half the minimum, and the round's sum, in
		// aggregation, holds the edge to the whole of it.
		need := float64(p.v.o.minShare)
		if p.probers > 1 {
			need /= 2
		}
		if d.t.Mbit*1e6 < share*need {
			claimed := fmt.Sprintf("claimed %d", d.claim)
			if p.probers > 1 {
				claimed += fmt.Sprintf(", %.1f for each of %d keepers probing together", share, p.probers)
			}
			reasons = append(reasons, fmt.Sprintf("%s measured %.1f Mbit/s, %s (at least %.0f%% needed)", d.name, d.t.Mbit, claimed, need/1e4))
		}
	}
	m["mbit_s"] = int64(math.Round(lowest))
	m["intervals"] = int64(intervals)
	out.Measurements = m
	if len(reasons) > 0 {
		out.Result = proofs.Fail
		out.Reason = reasons[0]
		if len(reasons) > 1 {
			out.Reason += "; " + reasons[1]
		}
	}
	return out
}

// broken turns a failed read or write into an outcome: a stall or the
// deadline is a Timeout, and so is a reset by the edge (a retry may find
// it in better shape); a stream that ended early is a Fail.
func (p *probe) broken(what string, err error, stalled bool) proofs.Outcome {
	switch {
	case stalled:
		return timeout(fmt.Sprintf("the edge stalled for %s %s", p.v.o.stallTimeout, what))
	case p.ctx.Err() != nil || errors.Is(err, wire.ErrTimeout) || errors.Is(err, context.DeadlineExceeded):
		return timeout("deadline passed " + what)
	case errors.Is(err, io.EOF):
		return fail("the edge closed the stream " + what)
	}
	return timeout(clip(fmt.Sprintf("stream failed %s: %v", what, err)))
}

// guard resets a stream when no progress is reported for idle: stream
// deadlines stop a blocked read or write on real transports, not on all
// (mocknet ignores them).
type guard struct {
	t       *time.Timer
	idle    time.Duration
	stalled atomic.Bool
}

func newGuard(s network.Stream, idle time.Duration) *guard {
	g := &guard{idle: idle}
	g.t = time.AfterFunc(idle, func() {
		g.stalled.Store(true)
		_ = s.Reset()
	})
	return g
}

func (g *guard) kick()       { g.t.Reset(g.idle) }
func (g *guard) stop()       { g.t.Stop() }
func (g *guard) fired() bool { return g.stalled.Load() }

// stopped returns an error when ctx was cancelled rather than run out:
// the keeper is stopping, and the edge must not be judged for it.
func stopped(ctx context.Context) error {
	err := ctx.Err()
	if err == nil || errors.Is(err, context.DeadlineExceeded) {
		return nil
	}
	return fmt.Errorf("bandwidth: verify: %w", context.Cause(ctx))
}

func fail(reason string) proofs.Outcome { return proofs.Outcome{Result: proofs.Fail, Reason: reason} }

func timeout(reason string) proofs.Outcome {
	return proofs.Outcome{Result: proofs.Timeout, Reason: reason}
}
