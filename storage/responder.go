package storage

import (
	"context"
	"fmt"
	"log/slog"
	"time"

	"github.com/ipfs/go-cid"
	"github.com/libp2p/go-libp2p/core/network"
	"github.com/libp2p/go-libp2p/core/protocol"

	"github.com/aropeer/aropeer/proofs"
	"github.com/aropeer/aropeer/wire"
)

// Responder answers storage challenges on an edge from its pieces.
type Responder struct {
	prover Prover
	leaves int
	// damaged is told of a piece whose own proof does not verify, so that
	// the edge can declare the fault.
	damaged func(piece cid.Cid, err error)
	log     *slog.Logger
}

var _ proofs.Responder = (*Responder)(nil)

// NewResponder answers challenges of leaves leaves each from prover;
// damaged, if not nil, learns of each piece found damaged while
// answering.
func NewResponder(prover Prover, leaves int, damaged func(cid.Cid, error), log *slog.Logger) *Responder {
	if log == nil {
		log = slog.Default()
	}
	return &Responder{prover: prover, leaves: leaves, damaged: damaged, log: log}
}

// Kind returns proofs.KindStorage.
func (r *Responder) Kind() proofs.Kind { return proofs.KindStorage }

// Protocol returns Protocol.
func (r *Responder) Protocol() protocol.ID { return Protocol }

// writeTimeout bounds writing an answer, on top of the challenge's
// context.
const writeTimeout = 5 * time.Second

// Serve proves each leaf the challenge names and sends the proofs in one
// frame. It checks its own proofs first: a piece whose data no longer
// matches its commitment is reported to damaged, and the keeper is told
// which leaf could not be proven rather than sent a proof it would
// reject.
func (r *Responder) Serve(ctx context.Context, c proofs.Challenge, s network.Stream) {
	if err := r.serve(ctx, c, s); err != nil {
		_ = s.Reset()
		r.log.Debug("storage proof not sent", "keeper", c.Keeper, "round", c.Round, "err", err)
	}
}

func (r *Responder) serve(ctx context.Context, c proofs.Challenge, s network.Stream) error {
	if err := checkChallenge(c, r.leaves); err != nil {
		return err
	}
	if err := s.Scope().SetService(ServiceName); err != nil {
		return err
	}
	stop := wire.ResetOnDone(ctx, s)
	defer stop()
	ans := r.prove(c)
	deadline := time.Now().Add(writeTimeout)
	if d, ok := ctx.Deadline(); ok && d.Before(deadline) {
		deadline = d
	}
	msg, err := wire.Marshal(ans)
	if err != nil {
		return err
	}
	if err := wire.WriteFrame(s, msg, deadline); err != nil {
		return fmt.Errorf("storage: serve: %w", err)
	}
	return s.Close()
}

// prove builds the answer to c: every proof, each checked against the
// piece's commitment, or the reason there is none.
func (r *Responder) prove(c proofs.Challenge) answer {
	root, _ := RootOf(c.Piece.CID) // checked by checkChallenge
	indices := LeafIndices(c.Seed, c.Piece.Size, r.leaves)
	ps, err := r.prover.ProveLeaves(c.Piece.CID, indices)
	if err != nil {
		return r.fail(c.Piece.CID, err, fmt.Sprintf("piece %s: %v", c.Piece.CID, err))
	}
	var ans answer
	for i, p := range ps {
		if err := Verify(root, c.Piece.Size, p); err != nil {
			return r.fail(c.Piece.CID, err, fmt.Sprintf("leaf %d of piece %s: %v", indices[i], c.Piece.CID, err))
		}
		ans.Proofs = append(ans.Proofs, toAnswer(p))
	}
	return ans
}

// fail is the answer of an edge that cannot prove piece, for err: the
// reason, and the piece reported damaged.
func (r *Responder) fail(piece cid.Cid, err error, reason string) answer {
	if r.damaged != nil {
		r.damaged(piece, err)
	}
	return answer{Error: clip(reason)}
}

// clip bounds a reason quoted in an answer or a receipt.
func clip(s string) string {
	const max = 300
	if len(s) <= max {
		return s
	}
	return s[:max] + "…"
}
