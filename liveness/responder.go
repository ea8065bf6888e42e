package liveness

import (
	"context"
	"fmt"
	"log/slog"
	"time"

	"github.com/libp2p/go-libp2p/core/crypto"
	"github.com/libp2p/go-libp2p/core/network"
	"github.com/libp2p/go-libp2p/core/protocol"

	"github.com/aropeer/aropeer/proofs"
	"github.com/aropeer/aropeer/wire"
)

// Responder answers liveness challenges on an edge with heartbeats signed
// by the edge's key.
type Responder struct {
	key          crypto.PrivKey
	writeTimeout time.Duration
	log          *slog.Logger
}

var _ proofs.Responder = (*Responder)(nil)

// NewResponder returns a Responder that signs with key, the edge's host
// key (the keeper checks that the signer is the challenged edge). key must
// not be nil.
func NewResponder(key crypto.PrivKey, opts ...Option) *Responder {
	if key == nil {
		panic("liveness: NewResponder: nil key")
	}
	o := newOptions(opts)
	return &Responder{key: key, writeTimeout: o.writeTimeout, log: o.log}
}

// Kind returns proofs.KindLiveness.
func (r *Responder) Kind() proofs.Kind { return proofs.KindLiveness }

// Protocol returns Protocol.
func (r *Responder) Protocol() protocol.ID { return Protocol }

// Serve answers c on s with one heartbeat frame and closes s. On any error
// it resets s instead, and the keeper records a timeout: a retry may find
// the edge in better shape.
func (r *Responder) Serve(ctx context.Context, c proofs.Challenge, s network.Stream) {
	if err := r.serve(ctx, c, s); err != nil {
		_ = s.Reset()
		// Debug: the keeper records the outcome; nothing here needs an operator.
		r.log.Debug("heartbeat not sent", "keeper", c.Keeper, "round", c.Round, "attempt", c.Attempt, "err", err)
	}
}

func (r *Responder) serve(ctx context.Context, c proofs.Challenge, s network.Stream) error {
	if c.Kind != proofs.KindLiveness {
		return fmt.Errorf("liveness: serve: challenge of kind %q", c.Kind)
	}
	release, err := reserve(s)
	if err != nil {
		return fmt.Errorf("liveness: serve: %w", err)
	}
	defer release()
	env, err := SealHeartbeat(r.key, HeartbeatFor(c))
	if err != nil {
		return err
	}
	if err := ctx.Err(); err != nil {
		return fmt.Errorf("liveness: serve: %w", err)
	}
	deadline := time.Now().Add(r.writeTimeout)
	if d, ok := ctx.Deadline(); ok && d.Before(deadline) {
		deadline = d
	}
	stop := wire.ResetOnDone(ctx, s)
	defer stop()
	if err := wire.WriteFrame(s, env, deadline); err != nil {
		return fmt.Errorf("liveness: serve: %w", err)
	}
	if err := s.Close(); err != nil {
		return fmt.Errorf("liveness: serve: close: %w", err)
	}
	return nil
}
