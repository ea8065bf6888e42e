package proofs

import (
	"context"

	"github.com/libp2p/go-libp2p/core/network"
	"github.com/libp2p/go-libp2p/core/protocol"
)

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
