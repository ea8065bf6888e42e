package proofs

import (
	"context"
	"errors"
	"fmt"
	"time"

	"github.com/libp2p/go-libp2p/core/network"
	"github.com/libp2p/go-libp2p/core/peer"
	"github.com/libp2p/go-libp2p/core/protocol"
)

// Claims looks up what an edge claims of a verifier's kind: its
// manifest's offer of that kind, which sizes a measured challenge
// (bandwidth, compute) and is what the edge is judged against.
type Claims func(edge peer.ID) (Offer, bool)

// Responder answers challenges of one kind on an edge. The engine has
// read the challenge from the stream and checked that the schedule called
// for it before Serve is called; Serve answers on the stream and closes
// or resets it.
type Responder interface {
	Kind() Kind
	Protocol() protocol.ID
	Serve(ctx context.Context, c Challenge, s network.Stream)
}

// Opener opens a stream to the challenged edge on a protocol, with the
// sealed challenge already sent as its first frame.
type Opener func(ctx context.Context, p protocol.ID) (network.Stream, error)

// Verifier runs one attempt of a challenge from a keeper and judges the
// answer. An edge that does not answer before ctx's deadline gives a
// Timeout outcome, not an error; an error means the keeper itself could
// not run the challenge.
type Verifier interface {
	Kind() Kind
	Protocol() protocol.ID
	Verify(ctx context.Context, c Challenge, open Opener) (Outcome, error)
}

// Open starts one attempt of a Verifier: it requires a deadline on ctx
// and opens the stream on p. When the edge cannot be reached in time it
// returns no stream and the Timeout outcome to record, its reason saying
// what the edge did not send (what, e.g. "heartbeat") within the budget;
// an error means the keeper is stopping or ctx has no deadline, and the
// edge must not be judged.
func Open(ctx context.Context, open Opener, p protocol.ID, what string) (network.Stream, Outcome, error) {
	deadline, ok := ctx.Deadline()
	if !ok {
		return nil, Outcome{}, fmt.Errorf("proofs: %s: context has no deadline", p)
	}
	// The reason quotes the budget, which is on the wall clock like the
	// deadline itself.
	noAnswer := Outcome{Result: Timeout, Reason: fmt.Sprintf("no %s within %s", what, max(time.Until(deadline), 0).Round(time.Millisecond))}
	if err := Stopped(ctx); err != nil {
		return nil, Outcome{}, err
	}
	if ctx.Err() != nil {
		return nil, noAnswer, nil
	}
	s, err := open(ctx, p)
	if err != nil {
		if err := Stopped(ctx); err != nil {
			return nil, Outcome{}, err
		}
		if ctx.Err() != nil {
			return nil, noAnswer, nil
		}
		// Dial errors can list every address tried; a receipt has a size cap.
		return nil, Outcome{Result: Timeout, Reason: "could not open a stream to the edge: " + clipReason(err.Error(), 300)}, nil
	}
	if s == nil {
		return nil, Outcome{}, fmt.Errorf("proofs: %s: opener returned no stream", p)
	}
	return s, noAnswer, nil
}

// Stopped returns an error when ctx was cancelled rather than run out: the
// keeper is stopping, and the edge must not be judged for it.
func Stopped(ctx context.Context) error {
	err := ctx.Err()
	if err == nil || errors.Is(err, context.DeadlineExceeded) {
		return nil
	}
	return fmt.Errorf("proofs: verify: %w", context.Cause(ctx))
}

func clipReason(s string, n int) string {
	if len(s) <= n {
		return s
	}
	return s[:n] + "…"
}
