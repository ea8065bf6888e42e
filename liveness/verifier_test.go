package liveness

import (
	"bytes"
	"context"
	"encoding/binary"
	"errors"
	"io"
	"strings"
	"testing"
	"testing/synctest"
	"time"

	"github.com/libp2p/go-libp2p/core/crypto"
	"github.com/libp2p/go-libp2p/core/network"
	"github.com/libp2p/go-libp2p/core/peer"
	"github.com/libp2p/go-libp2p/core/protocol"

	"github.com/aropeer/aropeer/proofs"
	"github.com/aropeer/aropeer/wire"
)

// The tests run in synctest bubbles: mocknet's link latency and the
// challenge deadlines run on the bubble's fake clock, so a 200 ms deadline
// costs no wall time and round trips are exact.

const (
	latency  = 10 * time.Millisecond // one way
	deadline = 200 * time.Millisecond
)

// honest answers with a Responder, as a real edge does.
func honest(key crypto.PrivKey) answerFunc {
	r := NewResponder(key)
	return r.Serve
}

// sendFrame answers with frame as it is (a length prefix is added).
func sendFrame(frame []byte) answerFunc {
	return func(_ context.Context, _ proofs.Challenge, s network.Stream) {
		if err := wire.WriteFrame(s, frame, time.Time{}); err != nil {
			_ = s.Reset()
			return
		}
		_ = s.Close()
	}
}

// sendRaw writes raw bytes, with no framing of its own.
func sendRaw(raw []byte) answerFunc {
	return func(_ context.Context, _ proofs.Challenge, s network.Stream) {
		if _, err := s.Write(raw); err != nil {
			_ = s.Reset()
			return
		}
		_ = s.Close()
	}
}

// sendHeartbeat answers with the right heartbeat altered by change and
// signed by key.
func sendHeartbeat(t testing.TB, key crypto.PrivKey, change func(*Heartbeat)) answerFunc {
	return func(ctx context.Context, c proofs.Challenge, s network.Stream) {
		hb := HeartbeatFor(c)
		change(&hb)
		env, err := SealHeartbeat(key, hb)
		if err != nil {
			t.Error(err)
			_ = s.Reset()
			return
		}
		sendFrame(env)(ctx, c, s)
	}
}

func peerOf(t testing.TB, k crypto.PrivKey) peer.ID {
	t.Helper()
	id, err := peer.IDFromPrivateKey(k)
	if err != nil {
		t.Fatal(err)
	}
	return id
}

func TestPass(t *testing.T) {
	synctest.Test(t, func(t *testing.T) {
		h := newHarness(t, latency)
		c := h.challenge(0)
		out := h.mustVerify(t, c, deadline, honest(h.edgeKey))
		if out.Result != proofs.Pass || out.Reason != "" {
			t.Fatalf("outcome %s (%q), want pass", out.Result, out.Reason)
		}
		// The challenge was sent when the opener returned; the heartbeat
		// crosses the link once each way after it.
		if us := out.Measurements["rtt_us"]; us < 2*latency.Microseconds() || us >= deadline.Microseconds() {
			t.Errorf("rtt_us = %d, want at least one round trip of %s and less than the deadline", us, 2*latency)
		}
		t.Logf("measurements %v", out.Measurements)
		if ms, us := out.Measurements["rtt_ms"], out.Measurements["rtt_us"]; ms != us/1000 {
			t.Errorf("rtt_ms = %d, rtt_us = %d: they disagree", ms, us)
		}
		// ed25519 is deterministic: the heartbeat sent is the one sealed here.
		env, err := SealHeartbeat(h.edgeKey, HeartbeatFor(c))
		if err != nil {
			t.Fatal(err)
		}
		if !bytes.Equal(out.Evidence, env) {
			t.Errorf("evidence %x, want the heartbeat envelope %x", out.Evidence, env)
		}
		for side, scope := range map[string]*recordScope{"keeper": h.keeperScope, "edge": h.edgeScope} {
			service, reserved, most := scope.state()
			if service != ServiceName || reserved != 0 || most < MaxHeartbeatSize {
				t.Errorf("%s scope: service %q, %d bytes still reserved, at most %d: want %q, 0, >= %d",
					side, service, reserved, most, ServiceName, MaxHeartbeatSize)
			}
		}
	})
}

// stepClock advances by step on each reading.
type stepClock struct {
	t    time.Time
	step time.Duration
}

func (c *stepClock) Now() time.Time {
	c.t = c.t.Add(c.step)
	return c.t
}

func TestPassClock(t *testing.T) {
	synctest.Test(t, func(t *testing.T) {
		h := newHarness(t, 0)
		clock := &stepClock{t: time.Unix(1700000000, 0), step: 1234 * time.Microsecond}
		out := h.mustVerify(t, h.challenge(0), deadline, honest(h.edgeKey), WithClock(clock))
		if out.Result != proofs.Pass {
			t.Fatalf("outcome %s (%q), want pass", out.Result, out.Reason)
		}
		if got := out.Measurements; got["rtt_us"] != 1234 || got["rtt_ms"] != 1 {
			t.Errorf("measurements %v, want rtt_us 1234 and rtt_ms 1 from the injected clock", got)
		}
	})
}

func TestWrongAnswer(t *testing.T) {
	other := testKey(t, 3)
	for _, tc := range []struct {
		name   string
		answer func(h *harness) answerFunc
		reason string // the outcome's reason starts with it
	}{
		{"nonce", func(h *harness) answerFunc {
			return sendHeartbeat(t, h.edgeKey, func(hb *Heartbeat) { hb.Nonce[0] ^= 1 })
		}, "heartbeat for nonce "},
		{"round", func(h *harness) answerFunc {
			return sendHeartbeat(t, h.edgeKey, func(hb *Heartbeat) { hb.Round-- })
		}, "heartbeat for round 700, want 701"},
		{"network", func(h *harness) answerFunc {
			return sendHeartbeat(t, h.edgeKey, func(hb *Heartbeat) { hb.Network = "aro-mainnet" })
		}, `heartbeat for network "aro-mainnet", want "aro-devnet"`},
		{"attempt", func(h *harness) answerFunc {
			return sendHeartbeat(t, h.edgeKey, func(hb *Heartbeat) { hb.Attempt = 3 })
		}, "heartbeat for attempt 3, want 0"},
		{"keeper", func(h *harness) answerFunc {
			return sendHeartbeat(t, h.edgeKey, func(hb *Heartbeat) { hb.Keeper = peerOf(t, other) })
		}, "heartbeat for keeper " + peerOf(t, other).String()},
		{"edge", func(h *harness) answerFunc {
			return sendHeartbeat(t, h.edgeKey, func(hb *Heartbeat) { hb.Edge = peerOf(t, other) })
		}, "heartbeat for edge " + peerOf(t, other).String()},
		{"other signer", func(h *harness) answerFunc {
			return sendHeartbeat(t, other, func(*Heartbeat) {})
		}, "heartbeat signed by " + peerOf(t, other).String() + ", not the edge "},
		{"other domain", func(h *harness) answerFunc {
			return func(ctx context.Context, c proofs.Challenge, s network.Stream) {
				env, _, err := wire.SealMessage(h.edgeKey, proofs.ChallengeDomain, HeartbeatFor(c))
				if err != nil {
					t.Error(err)
				}
				sendFrame(env)(ctx, c, s)
			}
		}, "heartbeat does not open: "},
		{"garbage", func(*harness) answerFunc { return sendFrame([]byte("I am alive")) }, "heartbeat does not open: "},
		{"non-minimal prefix", func(*harness) answerFunc { return sendRaw([]byte{0x81, 0x00, 'x'}) }, "malformed heartbeat frame: "},
		{"truncated frame", func(*harness) answerFunc { return sendRaw([]byte{100, 'x'}) }, "malformed heartbeat frame: "},
	} {
		t.Run(tc.name, func(t *testing.T) {
			synctest.Test(t, func(t *testing.T) {
				h := newHarness(t, latency)
				out := h.mustVerify(t, h.challenge(0), deadline, tc.answer(h))
				if out.Result != proofs.Fail || !strings.HasPrefix(out.Reason, tc.reason) {
					t.Fatalf("outcome %s (%q), want fail (%q...)", out.Result, out.Reason, tc.reason)
				}
				if out.Measurements != nil {
					t.Errorf("a failed heartbeat measured %v", out.Measurements)
				}
			})
		})
	}
}

// A heartbeat recorded from attempt 0 does not answer attempt 1.
func TestReplay(t *testing.T) {
	synctest.Test(t, func(t *testing.T) {
		h := newHarness(t, latency)
		var sent bytes.Buffer
		record := func(ctx context.Context, c proofs.Challenge, s network.Stream) {
			NewResponder(h.edgeKey).Serve(ctx, c, teeStream{Stream: s, w: &sent})
		}
		first := h.mustVerify(t, h.challenge(0), deadline, record)
		if first.Result != proofs.Pass {
			t.Fatalf("attempt 0: outcome %s (%q), want pass", first.Result, first.Reason)
		}
		env, err := wire.ReadFrame(memStream{Reader: &sent}, MaxHeartbeatSize, time.Time{})
		if err != nil {
			t.Fatal(err)
		}
		if !bytes.Equal(env, first.Evidence) {
			t.Fatalf("recorded heartbeat is not the one attempt 0 judged")
		}
		out := h.mustVerify(t, h.challenge(1), deadline, sendFrame(env))
		if want := "heartbeat for attempt 0, want 1"; out.Result != proofs.Fail || out.Reason != want {
			t.Fatalf("replay: outcome %s (%q), want fail (%q)", out.Result, out.Reason, want)
		}
		if !bytes.Equal(out.Evidence, first.Evidence) {
			t.Errorf("replay evidence %x, want the replayed envelope %x", out.Evidence, first.Evidence)
		}
	})
}

// teeStream copies what is written to the stream into w.
type teeStream struct {
	network.Stream
	w io.Writer
}

func (s teeStream) Write(p []byte) (int, error) {
	s.w.Write(p)
	return s.Stream.Write(p)
}

// memStream is a wire.Stream over a reader.
type memStream struct{ io.Reader }

func (memStream) Write(p []byte) (int, error)      { return 0, errors.New("read only") }
func (memStream) SetReadDeadline(time.Time) error  { return nil }
func (memStream) SetWriteDeadline(time.Time) error { return nil }

// An edge that announces a huge answer fails after its length prefix,
// and the keeper reads no more of it.
func TestOversized(t *testing.T) {
	synctest.Test(t, func(t *testing.T) {
		h := newHarness(t, latency)
		const size = 1 << 20
		flood := func(_ context.Context, _ proofs.Challenge, s network.Stream) {
			if _, err := s.Write(binary.AppendUvarint(nil, size)); err != nil {
				_ = s.Reset()
				return
			}
			chunk := make([]byte, 64<<10)
			for range size / len(chunk) {
				if _, err := s.Write(chunk); err != nil {
					_ = s.Reset()
					return
				}
			}
			_ = s.Close()
		}
		out := h.mustVerify(t, h.challenge(0), deadline, flood)
		if want := "heartbeat frame over the 4096-byte cap"; out.Result != proofs.Fail || out.Reason != want {
			t.Fatalf("outcome %s (%q), want fail (%q)", out.Result, out.Reason, want)
		}
		if n := h.read.Load(); n > binary.MaxVarintLen64 {
			t.Errorf("keeper read %d bytes of a refused frame, want the length prefix only", n)
		}
	})
}

func TestNoAnswer(t *testing.T) {
	for _, tc := range []struct {
		name   string
		answer answerFunc
		reason string
	}{
		{"silent", func(_ context.Context, _ proofs.Challenge, s network.Stream) {
			// Holds the stream until the keeper gives up on it.
			_, _ = io.Copy(io.Discard, s)
			_ = s.Reset()
		}, "no heartbeat within 200ms"},
		{"reset", func(_ context.Context, _ proofs.Challenge, s network.Stream) {
			_ = s.Reset()
		}, "stream failed before a heartbeat: "},
		{"close", func(_ context.Context, _ proofs.Challenge, s network.Stream) {
			_ = s.Close()
		}, "edge closed the stream without a heartbeat"},
		{"responder cancelled", func(ctx context.Context, c proofs.Challenge, s network.Stream) {
			ctx, cancel := context.WithCancel(ctx)
			cancel()
			NewResponder(testKey(t, 2)).Serve(ctx, c, s)
		}, "stream failed before a heartbeat: "},
		{"responder for another kind", func(ctx context.Context, c proofs.Challenge, s network.Stream) {
			c.Kind = proofs.KindStorage
			NewResponder(testKey(t, 2)).Serve(ctx, c, s)
		}, "stream failed before a heartbeat: "},
	} {
		t.Run(tc.name, func(t *testing.T) {
			synctest.Test(t, func(t *testing.T) {
				h := newHarness(t, latency)
				out := h.mustVerify(t, h.challenge(0), deadline, tc.answer)
				if out.Result != proofs.Timeout || !strings.HasPrefix(out.Reason, tc.reason) {
					t.Fatalf("outcome %s (%q), want timeout (%q...)", out.Result, out.Reason, tc.reason)
				}
				if out.Evidence != nil || out.Measurements != nil {
					t.Errorf("no answer, yet evidence %x and measurements %v", out.Evidence, out.Measurements)
				}
			})
		})
	}
}

func TestOpenFails(t *testing.T) {
	synctest.Test(t, func(t *testing.T) {
		h := newHarness(t, latency)
		c := h.challenge(0)
		ctx, cancel := context.WithTimeout(t.Context(), deadline)
		defer cancel()
		unreachable := func(context.Context, protocol.ID) (network.Stream, error) {
			return nil, errors.New("no addresses")
		}
		out, err := NewVerifier().Verify(ctx, c, unreachable)
		if err != nil || out.Result != proofs.Timeout || out.Reason != "could not open a stream to the edge: no addresses" {
			t.Errorf("unreachable edge: outcome %s (%q), error %v; want timeout", out.Result, out.Reason, err)
		}
		stuck := func(ctx context.Context, _ protocol.ID) (network.Stream, error) {
			<-ctx.Done()
			return nil, ctx.Err()
		}
		out, err = NewVerifier().Verify(ctx, c, stuck)
		if err != nil || out.Result != proofs.Timeout || out.Reason != "no heartbeat within 200ms" {
			t.Errorf("dial past the deadline: outcome %s (%q), error %v; want timeout", out.Result, out.Reason, err)
		}
	})
}

// A keeper that stops, or cannot run the challenge, judges nobody.
func TestVerifyErrors(t *testing.T) {
	synctest.Test(t, func(t *testing.T) {
		h := newHarness(t, latency)
		silent := func(_ context.Context, _ proofs.Challenge, s network.Stream) {
			_, _ = io.Copy(io.Discard, s)
			_ = s.Reset()
		}

		stopCtx, stop := context.WithTimeout(h.ctx, deadline)
		defer stop()
		h.answer = silent
		time.AfterFunc(50*time.Millisecond, stop)
		_, err := NewVerifier().Verify(stopCtx, h.challenge(0), h.opener(h.challenge(0)))
		synctest.Wait()
		if !errors.Is(err, context.Canceled) {
			t.Errorf("keeper stopped mid-challenge: error %v, want context.Canceled", err)
		}

		h.mu.Lock()
		h.failReserve = true
		h.mu.Unlock()
		_, err = h.verify(t, h.challenge(0), deadline, honest(h.edgeKey))
		if err == nil || !strings.Contains(err.Error(), "resource limit exceeded") {
			t.Errorf("keeper out of memory: error %v, want the resource manager's refusal", err)
		}
		h.mu.Lock()
		h.failReserve = false
		h.mu.Unlock()

		noCall := func(context.Context, protocol.ID) (network.Stream, error) {
			t.Error("opened a stream for a challenge it should refuse")
			return nil, errors.New("unreachable")
		}
		ctx, cancel := context.WithTimeout(h.ctx, deadline)
		defer cancel()
		wrongKind := h.challenge(0)
		wrongKind.Kind = proofs.KindCompute
		noSeed := h.challenge(0)
		noSeed.Seed = nil
		for name, run := range map[string]func() error{
			"no deadline": func() error {
				_, err := NewVerifier().Verify(h.ctx, h.challenge(0), noCall)
				return err
			},
			"wrong kind": func() error {
				_, err := NewVerifier().Verify(ctx, wrongKind, noCall)
				return err
			},
			"no seed": func() error {
				_, err := NewVerifier().Verify(ctx, noSeed, noCall)
				return err
			},
		} {
			if err := run(); err == nil || !strings.HasPrefix(err.Error(), "liveness: verify: ") {
				t.Errorf("%s: error %v, want a liveness: verify: error", name, err)
			}
		}
	})
}
