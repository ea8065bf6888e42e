package liveness

import (
	"context"
	"errors"
	"fmt"
	"io"
	"time"

	"github.com/libp2p/go-libp2p/core/protocol"

	"github.com/aropeer/aropeer/proofs"
	"github.com/aropeer/aropeer/wire"
)

// Verifier runs liveness challenges from a keeper: it waits for the edge's
// heartbeat, checks it against the challenge and measures the round trip.
type Verifier struct {
	clock Clock
}

var _ proofs.Verifier = (*Verifier)(nil)

// NewVerifier returns a Verifier.
func NewVerifier(opts ...Option) *Verifier {
	o := newOptions(opts)
	return &Verifier{clock: o.clock}
}

// Kind returns proofs.KindLiveness.
func (v *Verifier) Kind() proofs.Kind { return proofs.KindLiveness }

// Protocol returns Protocol.
func (v *Verifier) Protocol() protocol.ID { return Protocol }

// Verify opens a stream with open and judges the heartbeat that comes back
// before ctx's deadline, which it requires. A missing answer (the deadline
// passed, the edge could not be reached, or it closed or reset the
// stream) is a Timeout, which containment retries; a wrong answer is a
// Fail naming what was wrong; a Pass measures "rtt_ms" and "rtt_us" from
// the stream's opening (challenge sent) to the heartbeat's arrival. Evidence
// is the heartbeat envelope itself whenever one arrived (at most
// MaxEvidenceSize bytes), so that EvidenceChecker can check a pass in a
// dispute.
//
// Verify returns an error only when the keeper cannot run the challenge:
// a malformed challenge, a context without deadline or cancelled for
// another reason, or its own resource manager refusing the stream.
func (v *Verifier) Verify(ctx context.Context, c proofs.Challenge, open proofs.Opener) (proofs.Outcome, error) {
	if err := checkChallenge(c); err != nil {
		return proofs.Outcome{}, err
	}
	s, noAnswer, err := proofs.Open(ctx, open, Protocol, "heartbeat")
	if err != nil {
		return proofs.Outcome{}, fmt.Errorf("liveness: verify: %w", err)
	}
	if s == nil {
		return noAnswer, nil
	}
	deadline, _ := ctx.Deadline()
	start := v.clock.Now()
	stop := wire.ResetOnDone(ctx, s)
	defer stop()
	release, err := reserve(s)
	if err != nil {
		_ = s.Reset()
		return proofs.Outcome{}, fmt.Errorf("liveness: verify: %w", err)
	}
	defer release()

	env, err := wire.ReadFrame(s, MaxHeartbeatSize, deadline)
	end := v.clock.Now()
	if err != nil {
		_ = s.Reset()
		if err := stopped(ctx); err != nil {
			return proofs.Outcome{}, err
		}
		return judgeReadError(err, ctx.Err() != nil, noAnswer), nil
	}
	// One frame is all the protocol has; the edge's close needs no wait.
	_ = s.Close()
	return judge(c, env, end.Sub(start)), nil
}

// maxErrShown bounds what a reason quotes of an error.
const maxErrShown = 300

// checkChallenge refuses challenges the keeper should never have built.
func checkChallenge(c proofs.Challenge) error {
	switch {
	case c.Kind != proofs.KindLiveness:
		return fmt.Errorf("liveness: verify: challenge of kind %q", c.Kind)
	case c.Edge == "" || c.Keeper == "":
		return errors.New("liveness: verify: challenge without edge or keeper")
	case len(c.Seed) == 0:
		// An empty seed would give every challenge the same nonce.
		return errors.New("liveness: verify: challenge without seed")
	}
	return nil
}

// stopped returns an error when ctx was cancelled rather than run out: the
// keeper is stopping, and the edge must not be judged for it.
func stopped(ctx context.Context) error {
	err := ctx.Err()
	if err == nil || errors.Is(err, context.DeadlineExceeded) {
		return nil
	}
	return fmt.Errorf("liveness: verify: %w", context.Cause(ctx))
}

// judgeReadError turns a failed read into an outcome. A frame the edge got
// wrong fails; anything that looks like the edge or its link going away
// is a timeout, which containment retries.
func judgeReadError(err error, late bool, noAnswer proofs.Outcome) proofs.Outcome {
	switch {
	case errors.Is(err, wire.ErrFrameTooLarge):
		return fail(fmt.Sprintf("heartbeat frame over the %d-byte cap", MaxHeartbeatSize))
	case errors.Is(err, wire.ErrBadFrame):
		return fail(fmt.Sprintf("malformed heartbeat frame: %v", err))
	case late || errors.Is(err, wire.ErrTimeout):
		return noAnswer
	case errors.Is(err, io.EOF):
		return timeout("edge closed the stream without a heartbeat")
	default:
		return timeout(fmt.Sprintf("stream failed before a heartbeat: %v", err))
	}
}

// judge checks a heartbeat envelope against c.
func judge(c proofs.Challenge, env []byte, rtt time.Duration) proofs.Outcome {
	out := func(o proofs.Outcome) proofs.Outcome {
		// ReadFrame caps env already; the check keeps a receipt that
		// carries it under its own cap should either cap change.
		if len(env) <= MaxEvidenceSize {
			o.Evidence = env
		}
		return o
	}
	hb, signer, err := openHeartbeat(env)
	if err != nil {
		return out(fail(fmt.Sprintf("heartbeat does not open: %v", err)))
	}
	if signer != c.Edge {
		return out(fail(fmt.Sprintf("heartbeat signed by %s, not the edge %s", signer, c.Edge)))
	}
	if reason := hb.mismatch(HeartbeatFor(c)); reason != "" {
		return out(fail(reason))
	}
	rtt = max(rtt, 0) // a clock stepped backwards measures nothing
	return out(proofs.Outcome{
		Result: proofs.Pass,
		Measurements: map[string]int64{
			"rtt_ms": rtt.Milliseconds(),
			"rtt_us": rtt.Microseconds(),
		},
	})
}

func fail(reason string) proofs.Outcome {
	return proofs.Outcome{Result: proofs.Fail, Reason: reason}
}

func timeout(reason string) proofs.Outcome {
	return proofs.Outcome{Result: proofs.Timeout, Reason: reason}
}
