package compute

import (
	"context"
	"crypto/sha256"
	"encoding/binary"
	"errors"
	"fmt"
	"hash"
	"io"
	"math/rand/v2"
	"time"

	"github.com/libp2p/go-libp2p/core/network"
	"github.com/libp2p/go-libp2p/core/protocol"

	"github.com/aropeer/aropeer/proofs"
	"github.com/aropeer/aropeer/wire"
)

// ErrNoClaim means the edge claims no compute: there is nothing to size a
// check by, and the schedule should not have called for one.
var ErrNoClaim = errors.New("compute: the edge claims no compute")

// Verifier runs compute spot-checks from a keeper. It proves two things
// about the edge's device: that it is as fast as its claimed class (the
// root of C must come back within the claim's budget, and the matrices
// are keyed by a nonce the edge learns only with the task, so nothing
// can be computed ahead), and that it did the work (rows drawn only after
// the root, from the keeper's own randomness, must match A·B exactly, so
// an edge that computed a share f of C passes with probability at most
// f^m).
type Verifier struct {
	claims proofs.Claims
	o      options
	secret [32]byte // keys each check's draws (randFor)
}

var _ proofs.Verifier = (*Verifier)(nil)

// NewVerifier judges edges against what claims says they claim.
func NewVerifier(claims proofs.Claims, opts ...Option) (*Verifier, error) {
	if claims == nil {
		return nil, errors.New("compute: NewVerifier: nil claims")
	}
	o, err := newOptions(opts)
	if err != nil {
		return nil, err
	}
	v := &Verifier{claims: claims, o: o}
	if _, err := io.ReadFull(o.rand, v.secret[:]); err != nil {
		return nil, fmt.Errorf("compute: NewVerifier: draw a secret: %w", err)
	}
	return v, nil
}

// randFor is the randomness of one check, nonce and rows: a ChaCha8
// stream keyed by the keeper's secret and the challenge's attempt, so
// that the edge cannot predict it and a check's draws do not depend on
// the order checks run in (a simulation with a seeded secret repeats).
func (v *Verifier) randFor(c proofs.Challenge) (io.Reader, error) {
	id, err := c.ID()
	if err != nil {
		return nil, err
	}
	h := sha256.New()
	h.Write([]byte("aro/compute/keeper-rand"))
	h.Write(v.secret[:])
	h.Write(id.Bytes())
	h.Write(binary.BigEndian.AppendUint32(nil, c.Attempt))
	var seed [32]byte
	h.Sum(seed[:0])
	return rand.NewChaCha8(seed), nil
}

// Kind returns proofs.KindCompute.
func (v *Verifier) Kind() proofs.Kind { return proofs.KindCompute }

// Protocol returns Protocol.
func (v *Verifier) Protocol() protocol.ID { return Protocol }

// Verify runs one check before ctx's deadline, which it requires.
//
// No answer before ctx's deadline, or a refused task, is a Timeout. A
// root later than the budget plus the round trip is a Fail saying so,
// with the budget and the time taken (the keeper waits up to twice the
// budget to learn it); so is a row that does not match A·B, naming it, a
// path that does not lead to the root, or a malformed frame.
// Measurements (on a pass and on a fail): "n", "compute_us" (the edge's
// own figure), "root_ms" (task sent to root received), "budget_ms",
// "rtt_ms" and, once rows were checked, "rows". Evidence is the SHA-256
// of the frames after the challenge, both ways, as framed on the stream.
func (v *Verifier) Verify(ctx context.Context, c proofs.Challenge, open proofs.Opener) (proofs.Outcome, error) {
	if err := checkChallenge(c); err != nil {
		return proofs.Outcome{}, err
	}
	offer, ok := v.claims(c.Edge)
	if !ok || offer.MilliTOPS == 0 {
		return proofs.Outcome{}, fmt.Errorf("%w: edge %s", ErrNoClaim, c.Edge)
	}
	n := v.o.params.N(offer.MilliTOPS)
	random, err := v.randFor(c)
	if err != nil {
		return proofs.Outcome{}, fmt.Errorf("compute: verify: %w", err)
	}
	nonce := make([]byte, NonceSize)
	if _, err := io.ReadFull(random, nonce); err != nil {
		return proofs.Outcome{}, fmt.Errorf("compute: verify: draw a nonce: %w", err)
	}
	s, noAnswer, err := proofs.Open(ctx, open, Protocol, "compute root")
	if err != nil {
		return proofs.Outcome{}, fmt.Errorf("compute: verify: %w", err)
	}
	if s == nil {
		return noAnswer, nil
	}
	stop := wire.ResetOnDone(ctx, s)
	defer stop()
	ck := &check{
		v: v, ctx: ctx, s: s, n: n, milliTOPS: offer.MilliTOPS,
		budget: v.o.params.Budget(n, offer.MilliTOPS),
		seed:   MatrixSeed(c.Seed, nonce), nonce: nonce, random: random,
		transcript: sha256.New(), noAnswer: noAnswer,
	}
	out, err := ck.run()
	if err == nil {
		err = proofs.Stopped(ctx)
	}
	if err != nil {
		_ = s.Reset()
		return proofs.Outcome{}, err
	}
	if out.Result != proofs.Pass {
		_ = s.Reset()
	} else {
		_ = s.Close()
	}
	return out, nil
}

// check is one run of the protocol from the keeper's side.
type check struct {
	v         *Verifier
	ctx       context.Context
	s         network.Stream
	n         int
	milliTOPS uint64
	budget    time.Duration
	seed      [32]byte
	nonce     []byte
	random    io.Reader // the check's draws (randFor)
	// transcript hashes every frame after the challenge as framed.
	transcript hash.Hash
	noAnswer   proofs.Outcome
	m          map[string]int64
}

// run returns the outcome, or an error when the keeper itself failed.
func (k *check) run() (proofs.Outcome, error) {
	msg, err := wire.Marshal(task{N: uint32(k.n), Nonce: k.nonce})
	if err != nil {
		return proofs.Outcome{}, fmt.Errorf("compute: verify: encode task: %w", err)
	}
	deadline, _ := k.ctx.Deadline()
	sent := time.Now()
	if err := wire.WriteFrame(k.s, msg, deadline); err != nil {
		return k.broken("sending the task", err), nil
	}
	k.record(msg)
	frame, err := k.read(maxAckSize, time.Now().Add(k.v.o.stall))
	if err != nil {
		return k.broken("waiting for the edge to accept the task", err), nil
	}
	rtt := time.Since(sent)
	var a ack
	if err := wire.Unmarshal(frame, &a, maxAckSize); err != nil {
		return fail("malformed ack: " + clip(err.Error())), nil
	}
	if a.Refused != "" {
		return timeout("the edge refused the task: " + clip(a.Refused)), nil
	}
	k.m = map[string]int64{"n": int64(k.n), "rtt_ms": rtt.Milliseconds(), "budget_ms": k.budget.Milliseconds()}

	// The root is due within the budget and the round trip. The keeper
	// waits up to twice the budget for it, to tell how late it is.
	limit := k.budget + rtt
	frame, err = k.read(maxRootSize, sent.Add(rtt+2*k.budget))
	took := time.Since(sent)
	if err != nil {
		if took > limit && proofs.Stopped(k.ctx) == nil && !errors.Is(err, io.EOF) {
			return k.late(fmt.Sprintf("no root after %s", took.Round(time.Millisecond)), limit), nil
		}
		return k.broken("waiting for the root", err), nil
	}
	k.m["root_ms"] = took.Milliseconds()
	var rm rootMsg
	if err := wire.Unmarshal(frame, &rm, maxRootSize); err != nil {
		return k.fail("malformed root: " + clip(err.Error())), nil
	}
	if rm.Error != "" {
		return k.fail("the edge has no product: " + clip(rm.Error)), nil
	}
	if len(rm.Root) != sha256.Size {
		return k.fail(fmt.Sprintf("root of %d bytes, want %d", len(rm.Root), sha256.Size)), nil
	}
	k.m["compute_us"] = int64(min(rm.ComputeMicros, 1<<62))
	if took > limit {
		return k.late(fmt.Sprintf("root after %s", took.Round(time.Millisecond)), limit), nil
	}

	// Only now, with the root fixed, the rows to check.
	rows, err := drawRows(k.random, k.n, k.v.o.params.Rows)
	if err != nil {
		return proofs.Outcome{}, fmt.Errorf("compute: verify: draw rows: %w", err)
	}
	if msg, err = wire.Marshal(request{Rows: rows}); err != nil {
		return proofs.Outcome{}, fmt.Errorf("compute: verify: encode request: %w", err)
	}
	if err := wire.WriteFrame(k.s, msg, time.Now().Add(k.v.o.stall)); err != nil {
		return k.broken("sending the rows asked for", err), nil
	}
	k.record(msg)
	frame, err = k.read(maxRowsSize(k.n, len(rows)), time.Now().Add(k.v.o.stall))
	if err != nil {
		return k.broken("waiting for the rows", err), nil
	}
	if reason := judgeRows(k.n, k.seed, [32]byte(rm.Root), rows, frame); reason != "" {
		return k.fail(reason), nil
	}
	k.m["rows"] = int64(len(rows))
	return k.outcome(proofs.Pass, ""), nil
}

// read reads a frame before deadline (or ctx's, if earlier) and records
// it. Stream deadlines do not stop a read on every transport (mocknet
// ignores them): the stream is reset at the deadline too.
func (k *check) read(max int, deadline time.Time) ([]byte, error) {
	rctx, cancel := context.WithDeadline(k.ctx, deadline)
	defer cancel()
	stop := wire.ResetOnDone(rctx, k.s)
	defer stop()
	if d, ok := rctx.Deadline(); ok {
		deadline = d
	}
	frame, err := wire.ReadFrame(k.s, max, deadline)
	if err != nil {
		if rctx.Err() != nil {
			err = fmt.Errorf("%w: %w", wire.ErrTimeout, err)
		}
		return nil, err
	}
	k.record(frame)
	return frame, nil
}

// record adds a frame to the transcript as it is framed on the stream.
func (k *check) record(frame []byte) {
	k.transcript.Write(binary.AppendUvarint(nil, uint64(len(frame))))
	k.transcript.Write(frame)
}

// late fails a root that missed its deadline, with the budget and the
// time it took.
func (k *check) late(what string, limit time.Duration) proofs.Outcome {
	return k.fail(fmt.Sprintf("deadline missed: %s, over the budget of %s (%s for n=%d at the claimed %.3f TOPS, plus a round trip of %s)",
		what, limit.Round(time.Millisecond), k.budget.Round(time.Millisecond), k.n, float64(k.milliTOPS)/1000, (limit - k.budget).Round(time.Millisecond)))
}

func (k *check) fail(reason string) proofs.Outcome { return k.outcome(proofs.Fail, reason) }

func (k *check) outcome(r proofs.Result, reason string) proofs.Outcome {
	return proofs.Outcome{Result: r, Reason: reason, Measurements: k.m, Evidence: k.transcript.Sum(nil)}
}

// broken turns a failed read or write into an outcome: the deadline, a
// reset or an early end is a Timeout (a retry may find the edge in
// better shape), a frame over its cap or malformed is a Fail.
func (k *check) broken(what string, err error) proofs.Outcome {
	switch {
	case k.ctx.Err() != nil || errors.Is(err, wire.ErrTimeout):
		return timeout(fmt.Sprintf("%s: deadline passed %s", k.noAnswer.Reason, what))
	case errors.Is(err, wire.ErrFrameTooLarge) || errors.Is(err, wire.ErrBadFrame):
		return k.fail(clip(fmt.Sprintf("bad frame %s: %v", what, err)))
	}
	return timeout(clip(fmt.Sprintf("stream failed %s: %v", what, err)))
}

// drawRows draws m distinct rows of n, uniformly, from r.
func drawRows(r io.Reader, n, m int) ([]uint32, error) {
	m = min(m, n)
	out := make([]uint32, 0, m)
	seen := make(map[uint32]bool, m)
	bound := ^uint64(0) - ^uint64(0)%uint64(n) // a multiple of n: no bias
	var b [8]byte
	for len(out) < m {
		if _, err := io.ReadFull(r, b[:]); err != nil {
			return nil, err
		}
		x := binary.LittleEndian.Uint64(b[:])
		if x >= bound {
			continue
		}
		i := uint32(x % uint64(n))
		if !seen[i] {
			seen[i] = true
			out = append(out, i)
		}
	}
	return out, nil
}

// judgeRows checks a rows answer against the root and the rows asked
// for: each path must lead to the root, then each row must equal the row
// of A·B the keeper computes itself. It returns "" when all hold, and
// the first fault otherwise.
func judgeRows(n int, seed, root [32]byte, want []uint32, frame []byte) string {
	var ans rowsMsg
	if err := wire.Unmarshal(frame, &ans, maxRowsSize(n, len(want))); err != nil {
		return "malformed rows: " + clip(err.Error())
	}
	if len(ans.Rows) != len(want) {
		return fmt.Sprintf("%d rows for the %d asked for", len(ans.Rows), len(want))
	}
	got := make([][]int32, len(want))
	for k, rp := range ans.Rows {
		if rp.Index != want[k] {
			return fmt.Sprintf("row %d answered where row %d was asked for", rp.Index, want[k])
		}
		row, err := decodeRow(rp.Row, n)
		if err != nil {
			return fmt.Sprintf("row %d: %v", rp.Index, err)
		}
		if err := proofs.VerifyPath(root, proofs.LeafHash(rp.Row), uint64(rp.Index), uint64(n), rp.Path); err != nil {
			return clip(fmt.Sprintf("row %d: bad path: %v", rp.Index, err))
		}
		got[k] = row
	}
	aRows := make([][]int8, len(want))
	for k, i := range want {
		aRows[k] = rowOfA(n, seed, int(i))
	}
	p := newRowProducts(n, aRows)
	rowsOfB(n, seed, p.add)
	exact := p.rows()
	for k, i := range want {
		for j, x := range got[k] {
			if x != exact[k][j] {
				return fmt.Sprintf("row %d differs from A·B at column %d: %d, want %d", i, j, x, exact[k][j])
			}
		}
	}
	return ""
}

func fail(reason string) proofs.Outcome { return proofs.Outcome{Result: proofs.Fail, Reason: reason} }

func timeout(reason string) proofs.Outcome {
	return proofs.Outcome{Result: proofs.Timeout, Reason: reason}
}
