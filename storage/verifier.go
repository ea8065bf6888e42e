package storage

import (
	"context"
	"crypto/sha256"
	"errors"
	"fmt"
	"io"
	"time"

	"github.com/libp2p/go-libp2p/core/protocol"

	"github.com/aropeer/aropeer/proofs"
	"github.com/aropeer/aropeer/wire"
)

// Verifier runs storage challenges from a keeper: it asks the edge for
// the leaves the challenge's seed names and checks each proof against the
// piece CID before the deadline.
type Verifier struct {
	leaves int
}

var _ proofs.Verifier = (*Verifier)(nil)

// NewVerifier checks leaves leaves per challenge (DefaultLeaves if 0).
func NewVerifier(leaves int) *Verifier {
	if leaves == 0 {
		leaves = DefaultLeaves
	}
	return &Verifier{leaves: leaves}
}

// Kind returns proofs.KindStorage.
func (v *Verifier) Kind() proofs.Kind { return proofs.KindStorage }

// Protocol returns Protocol.
func (v *Verifier) Protocol() protocol.ID { return Protocol }

// Verify opens a stream with open and judges the proofs that come back
// before ctx's deadline, which it requires. No answer in time is a
// Timeout; an answer with a proof that does not lead to the piece's
// commitment is a Fail naming the first leaf that did not match; a Pass
// measures "leaves" checked and "rtt_ms". Evidence is the SHA-256 of the
// answer.
func (v *Verifier) Verify(ctx context.Context, c proofs.Challenge, open proofs.Opener) (proofs.Outcome, error) {
	if err := checkChallenge(c, v.leaves); err != nil {
		return proofs.Outcome{}, err
	}
	s, noAnswer, err := proofs.Open(ctx, open, Protocol, "proofs")
	if err != nil {
		return proofs.Outcome{}, fmt.Errorf("storage: verify: %w", err)
	}
	if s == nil {
		return noAnswer, nil
	}
	deadline, _ := ctx.Deadline()
	start := time.Now()
	stop := wire.ResetOnDone(ctx, s)
	defer stop()
	frame, err := wire.ReadFrame(s, maxAnswerSize, deadline)
	rtt := time.Since(start)
	if err != nil {
		_ = s.Reset()
		if err := proofs.Stopped(ctx); err != nil {
			return proofs.Outcome{}, err
		}
		switch {
		case errors.Is(err, wire.ErrFrameTooLarge), errors.Is(err, wire.ErrBadFrame):
			return fail("unreadable answer: " + clip(err.Error())), nil
		case ctx.Err() != nil || errors.Is(err, wire.ErrTimeout) || errors.Is(err, io.EOF):
			return noAnswer, nil
		default:
			// A reset or a broken connection shows no cheating: it is
			// retried like silence.
			return proofs.Outcome{Result: proofs.Timeout, Reason: clip("stream failed before the proofs: " + err.Error())}, nil
		}
	}
	_ = s.Close()
	out := v.judge(c, frame)
	digest := sha256.Sum256(frame)
	out.Evidence = digest[:]
	if out.Result == proofs.Pass {
		out.Measurements = map[string]int64{"leaves": int64(v.leaves), "rtt_ms": rtt.Milliseconds()}
	}
	return out, nil
}

// judge checks an answer frame against c.
func (v *Verifier) judge(c proofs.Challenge, frame []byte) proofs.Outcome {
	var ans answer
	if err := wire.Unmarshal(frame, &ans, maxAnswerSize); err != nil {
		return fail("malformed answer: " + clip(err.Error()))
	}
	if ans.Error != "" {
		return fail("the edge could not prove " + clip(ans.Error))
	}
	want := LeafIndices(c.Seed, c.Piece.Size, v.leaves)
	if len(ans.Proofs) != len(want) {
		return fail(fmt.Sprintf("%d proofs for %d leaves", len(ans.Proofs), len(want)))
	}
	root, _ := RootOf(c.Piece.CID) // checked by checkChallenge
	for i, a := range ans.Proofs {
		if a.Index != want[i] {
			return fail(fmt.Sprintf("proof %d is of leaf %d, the challenge asks for leaf %d", i, a.Index, want[i]))
		}
		p, err := a.proof()
		if err == nil {
			err = Verify(root, c.Piece.Size, p)
		}
		if err != nil {
			return fail(clip(fmt.Sprintf("leaf %d does not match piece %s: %v", want[i], c.Piece.CID, err)))
		}
	}
	return proofs.Outcome{Result: proofs.Pass}
}

func fail(reason string) proofs.Outcome { return proofs.Outcome{Result: proofs.Fail, Reason: reason} }
