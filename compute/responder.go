package compute

import (
	"context"
	"errors"
	"fmt"
	"sync"
	"time"

	"github.com/libp2p/go-libp2p/core/network"
	"github.com/libp2p/go-libp2p/core/protocol"

	"github.com/aropeer/aropeer/proofs"
	"github.com/aropeer/aropeer/wire"
)

// Responder answers compute checks on an edge with its Executor. It
// holds each check's product only until the check ends, and at most
// WithMaxMemory bytes of them at once: a task beyond is refused before
// anything is computed. The product is not reserved with the stream's
// resource scope, whose limits are sized for stream buffers; the cap is
// the Responder's own.
type Responder struct {
	exec  Executor
	claim func() (proofs.Offer, bool)
	o     options

	mu   sync.Mutex
	used int64 // bytes held by running checks
}

var _ proofs.Responder = (*Responder)(nil)

// NewResponder answers with exec, for the compute offer claim returns
// (the edge's current manifest's): the size a keeper asks for must be the
// one the claim gives under the network's Params.
func NewResponder(exec Executor, claim func() (proofs.Offer, bool), opts ...Option) (*Responder, error) {
	if exec == nil || claim == nil {
		return nil, errors.New("compute: NewResponder: nil executor or claim")
	}
	o, err := newOptions(opts)
	if err != nil {
		return nil, err
	}
	return &Responder{exec: exec, claim: claim, o: o}, nil
}

// Kind returns proofs.KindCompute.
func (r *Responder) Kind() proofs.Kind { return proofs.KindCompute }

// Protocol returns Protocol.
func (r *Responder) Protocol() protocol.ID { return Protocol }

// errTold marks a check the edge gave up, having told the keeper why (a
// refused task, or no product): its stream is closed, not reset, so that
// the keeper reads the reason.
var errTold = errors.New("compute: check given up")

// Serve runs one check on s. A refused task, or a product the executor
// could not make, is answered with the reason and the stream is closed,
// so that the keeper's receipt can say why; a check that fails otherwise
// has its stream reset.
func (r *Responder) Serve(ctx context.Context, c proofs.Challenge, s network.Stream) {
	if err := r.serve(ctx, c, s); err != nil {
		if errors.Is(err, errTold) {
			_ = s.Close()
		} else {
			_ = s.Reset()
		}
		r.o.log.Debug("compute check not served", "keeper", c.Keeper, "round", c.Round, "err", err)
	}
}

func (r *Responder) serve(ctx context.Context, c proofs.Challenge, s network.Stream) error {
	if err := checkChallenge(c); err != nil {
		return err
	}
	if err := s.Scope().SetService(ServiceName); err != nil {
		return err
	}
	stop := wire.ResetOnDone(ctx, s)
	defer stop()
	stall := r.o.stall
	msg, err := wire.ReadFrame(s, maxTaskSize, time.Now().Add(stall))
	if err != nil {
		return fmt.Errorf("compute: read task: %w", err)
	}
	var t task
	if err := wire.Unmarshal(msg, &t, maxTaskSize); err != nil {
		return fmt.Errorf("compute: read task: %w", err)
	}
	refuse := func(reason string) error {
		msg, _ := wire.Marshal(ack{Refused: reason})
		_ = wire.WriteFrame(s, msg, time.Now().Add(stall))
		return fmt.Errorf("%w: refused: %s", errTold, reason)
	}
	n, budget, reason := r.accept(t)
	if reason != "" {
		return refuse(reason)
	}
	need := Footprint(n)
	if !r.reserve(need) {
		return refuse(fmt.Sprintf("a product of size %d needs %d bytes, over what this edge has left of its %d for checks", n, need, r.o.maxMemory))
	}
	defer r.release(need)
	if msg, err = wire.Marshal(ack{}); err != nil {
		return err
	}
	if err := wire.WriteFrame(s, msg, time.Now().Add(stall)); err != nil {
		return fmt.Errorf("compute: write ack: %w", err)
	}

	// The keeper gives up at twice the budget; so does the edge.
	pctx, cancel := context.WithTimeout(ctx, 2*budget+stall)
	start := time.Now()
	p, err := r.exec.Multiply(pctx, n, MatrixSeed(c.Seed, t.Nonce))
	took := time.Since(start)
	cancel()
	if err == nil {
		err = p.check(n)
	}
	var tree *proofs.HashTree
	var root rootMsg
	if err != nil {
		root.Error = clip(err.Error())
	} else {
		tree = commit(p)
		sum := tree.Root()
		root = rootMsg{Root: sum[:], ComputeMicros: uint64(max(took.Microseconds(), 1))}
	}
	if msg, err = wire.Marshal(root); err != nil {
		return err
	}
	if err := wire.WriteFrame(s, msg, time.Now().Add(stall)); err != nil {
		return fmt.Errorf("compute: write root: %w", err)
	}
	if tree == nil {
		return fmt.Errorf("%w: no product: %s", errTold, root.Error)
	}

	msg, err = wire.ReadFrame(s, maxRequestSize, time.Now().Add(stall))
	if err != nil {
		return fmt.Errorf("compute: read request: %w", err)
	}
	var req request
	if err := wire.Unmarshal(msg, &req, maxRequestSize); err != nil {
		return fmt.Errorf("compute: read request: %w", err)
	}
	ans, err := answer(p, tree, req)
	if err != nil {
		return err
	}
	if msg, err = wire.Marshal(ans); err != nil {
		return err
	}
	if err := wire.WriteFrame(s, msg, time.Now().Add(stall)); err != nil {
		return fmt.Errorf("compute: write rows: %w", err)
	}
	return s.Close()
}

// accept checks a task against the edge's claim: the size must be the
// one the claim gives. It returns the size and the claim's budget, or
// the reason to refuse.
func (r *Responder) accept(t task) (n int, budget time.Duration, reason string) {
	offer, ok := r.claim()
	if !ok || offer.MilliTOPS == 0 {
		return 0, 0, "this edge claims no compute"
	}
	if len(t.Nonce) != NonceSize {
		return 0, 0, fmt.Sprintf("nonce of %d bytes, want %d", len(t.Nonce), NonceSize)
	}
	want := r.o.params.N(offer.MilliTOPS)
	if int64(t.N) != int64(want) {
		return 0, 0, fmt.Sprintf("size %d, but this edge's claim of %d milli-TOPS gives %d", t.N, offer.MilliTOPS, want)
	}
	return want, r.o.params.Budget(want, offer.MilliTOPS), ""
}

// answer builds the rows a request asks for, with their paths.
func answer(p *Product, tree *proofs.HashTree, req request) (rowsMsg, error) {
	if len(req.Rows) == 0 || len(req.Rows) > MaxRows {
		return rowsMsg{}, fmt.Errorf("compute: request for %d rows, want 1 to %d", len(req.Rows), MaxRows)
	}
	ans := rowsMsg{Rows: make([]rowProof, len(req.Rows))}
	for k, i := range req.Rows {
		path, err := tree.Path(int(i))
		if err != nil {
			return rowsMsg{}, fmt.Errorf("compute: request for row %d of %d", i, p.N)
		}
		ans.Rows[k] = rowProof{Index: i, Row: rowBytes(p.Row(int(i)), nil), Path: path}
	}
	return ans, nil
}

// reserve takes n bytes of the memory cap, or reports that they are not
// left. Checks do not wait for memory: waiting would spend their budget.
func (r *Responder) reserve(n int64) bool {
	r.mu.Lock()
	defer r.mu.Unlock()
	if n > r.o.maxMemory-r.used {
		return false
	}
	r.used += n
	return true
}

func (r *Responder) release(n int64) {
	r.mu.Lock()
	r.used -= n
	r.mu.Unlock()
}
