package sim

import (
	"bytes"
	"context"
	"fmt"
	"math/rand/v2"
	"os"
	"sync"
	"sync/atomic"
	"time"

	"github.com/libp2p/go-libp2p/core/network"

	"github.com/aropeer/aropeer/compute"
	"github.com/aropeer/aropeer/proofs"
)

// Honest is the strategy of every node the scenario does not assign one.
const Honest = "honest"

// strategyInfo describes a strategy: whose it is, its parameters, the
// kind its edges must offer and the kind whose verdicts catch it.
type strategyInfo struct {
	keeper       bool
	usesShare    bool
	usesMultiple bool
	// needs is the kind the strategy cheats on, which its edges offer.
	needs string
	// caughtBy is the kind whose fails (or, for "faults", declared
	// faults) show the strategy in a batch.
	caughtBy string
}

// strategies are the strategies the simulation plays. Each runs the real
// node code; what makes it cheat is a config, its data or an executor,
// never a change to the protocol code it runs.
var strategies = map[string]strategyInfo{
	// offline: away (refuses every challenge) for a share of rounds.
	"offline": {usesShare: true, caughtBy: string(proofs.KindLiveness)},
	// lazy-storage: keeps only a share of its piece's bytes.
	"lazy-storage": {usesShare: true, needs: "storage", caughtBy: string(proofs.KindStorage)},
	// fault-declarer: has lost part of its piece and says so at once.
	"fault-declarer": {usesShare: true, needs: "storage", caughtBy: "faults"},
	// bandwidth-liar: claims a multiple of what honest edges claim, more
	// than its link (the CPU, in memory) carries.
	"bandwidth-liar": {usesMultiple: true, needs: "bandwidth", caughtBy: string(proofs.KindBandwidth)},
	// lazy-compute: computes a share of the rows, fills the rest with
	// garbage.
	"lazy-compute": {usesShare: true, needs: "compute", caughtBy: string(proofs.KindCompute)},
	// slow-compute: a CPU claiming a multiple of what honest CPUs claim,
	// a GPU's class.
	"slow-compute": {usesMultiple: true, needs: "compute", caughtBy: string(proofs.KindCompute)},
	// replayer: answers every liveness and storage challenge with the
	// bytes of its first answer of that kind.
	"replayer": {caughtBy: string(proofs.KindLiveness)},
	// lazy-keeper: a keeper that signs liveness passes without asking
	// the edge; its passes carry no heartbeat, which any keeper holding
	// the challenge can show the ledger.
	"lazy-keeper": {keeper: true, caughtBy: "slashed"},
	// forger: a keeper that gossips challenges the schedule did not call
	// for, from a second host; honest nodes refuse them and shun it.
	"forger": {keeper: true, caughtBy: "shunned"},
	// equivocator: a keeper that signs a second, different receipt for
	// challenges it decided, and serves both to the keepers catching up.
	"equivocator": {keeper: true, caughtBy: "slashed"},
}

// damagePiece keeps the first share of the piece file at path and
// overwrites the rest with zeros, as a lazy edge that stored only part
// of it would answer.
func damagePiece(path string, share float64) error {
	f, err := os.OpenFile(path, os.O_RDWR, 0)
	if err != nil {
		return err
	}
	defer f.Close()
	st, err := f.Stat()
	if err != nil {
		return err
	}
	keep := int64(float64(st.Size()) * share)
	if _, err := f.WriteAt(make([]byte, st.Size()-keep), keep); err != nil {
		return fmt.Errorf("sim: damage piece: %w", err)
	}
	return f.Sync()
}

// lazyExecutor computes C honestly, then replaces all but a share of its
// rows with garbage: the work it saves is the work it skipped.
type lazyExecutor struct {
	share float64
	seed  uint64
}

func (l lazyExecutor) Multiply(ctx context.Context, n int, seed [32]byte) (*compute.Product, error) {
	p, err := (&compute.CPU{Workers: 1}).Multiply(ctx, n, seed)
	if err != nil {
		return nil, err
	}
	rng := rand.New(rand.NewPCG(l.seed, uint64(seed[0])|uint64(seed[1])<<8))
	for i := range n {
		if rng.Float64() >= l.share {
			row := p.Row(i)
			for j := range row {
				row[j] = int32(rng.Uint32())
			}
		}
	}
	return p, nil
}

// lazyVerifier passes every liveness challenge without opening a stream.
type lazyVerifier struct{ proofs.Verifier }

func (v lazyVerifier) Verify(ctx context.Context, c proofs.Challenge, open proofs.Opener) (proofs.Outcome, error) {
	if c.Kind != proofs.KindLiveness {
		return v.Verifier.Verify(ctx, c, open)
	}
	return proofs.Outcome{Result: proofs.Pass}, nil
}

// device is a simulated accelerator of gops int8 GOPS: a product takes at
// least the time it would take on it. The wait is on the clock, so in a
// simulation in virtual time a device is as fast as it says and no
// faster, however fast the machine running it.
type device struct {
	gops float64
	exec compute.Executor
}

func (d device) Multiply(ctx context.Context, n int, seed [32]byte) (*compute.Product, error) {
	start := time.Now()
	p, err := d.exec.Multiply(ctx, n, seed)
	if err != nil {
		return nil, err
	}
	need := time.Duration(compute.Ops(n) / (d.gops * 1e9) * float64(time.Second))
	if wait := need - time.Since(start); wait > 0 {
		select {
		case <-time.After(wait):
		case <-ctx.Done():
			return nil, ctx.Err()
		}
	}
	return p, nil
}

// replayer answers a liveness or storage challenge with what it sent for
// the first one of the kind the scenario asked: an answer of an earlier
// round. Before the scenario's first round (from, 0 while the run starts)
// it answers honestly, since which warm-up challenges reach an edge that
// is still starting is a race; of the first round's challenges, which run
// at once, it keeps the answer to the keeper first in byte order. So a
// run repeats.
type replayer struct {
	proofs.Responder
	from   *atomic.Uint64
	mu     sync.Mutex
	saved  []byte
	source proofs.Challenge // the challenge saved answers
}

func replaying(from *atomic.Uint64) func(proofs.Responder) proofs.Responder {
	return func(r proofs.Responder) proofs.Responder {
		if k := r.Kind(); k != proofs.KindLiveness && k != proofs.KindStorage {
			return r
		}
		return &replayer{Responder: r, from: from}
	}
}

func (r *replayer) Serve(ctx context.Context, c proofs.Challenge, s network.Stream) {
	if from := r.from.Load(); from == 0 || c.Round < from {
		r.Responder.Serve(ctx, c, s)
		return
	}
	r.mu.Lock()
	saved := r.saved
	r.mu.Unlock()
	if saved == nil {
		rec := &recording{Stream: s}
		r.Responder.Serve(ctx, c, rec)
		r.mu.Lock()
		if rec.buf.Len() > 0 && (r.saved == nil || c.Round < r.source.Round ||
			(c.Round == r.source.Round && c.Keeper < r.source.Keeper)) {
			r.saved, r.source = rec.buf.Bytes(), c
		}
		r.mu.Unlock()
		return
	}
	_ = s.SetWriteDeadline(time.Now().Add(2 * time.Second))
	if _, err := s.Write(saved); err != nil {
		_ = s.Reset()
		return
	}
	_ = s.Close()
}

// recording is a stream that keeps a copy of what is written to it.
type recording struct {
	network.Stream
	buf bytes.Buffer
}

func (r *recording) Write(p []byte) (int, error) {
	r.buf.Write(p)
	return r.Stream.Write(p)
}

// presence keeps an offline edge away for a share of rounds: it refuses
// every attempt the schedule gives to a round it is away in, attempt k of
// a challenge of round r being due in round r+k. An attempt is judged by
// that round, not by the one it reaches the edge in: a keeper's attempt
// that waited for a slot behind a probe reaches the edge a little later
// in one run than in the next, and would be answered in one and not the
// other. For the same reason its links stay up: cut and restored at
// instants the nodes race, they made runs differ, and a refused attempt
// is what a keeper sees of an edge that is away either way.
type presence struct {
	awayIn atomic.Pointer[func(round uint64) bool] // nil until the runner knows the rounds
}

// follow sets the rounds the edge is away in.
func (p *presence) follow(awayIn func(round uint64) bool) { p.awayIn.Store(&awayIn) }

// away reports whether the edge is away for attempt c.
func (p *presence) away(c proofs.Challenge) bool {
	awayIn := p.awayIn.Load()
	return awayIn != nil && (*awayIn)(c.Round+uint64(c.Attempt))
}

func (p *presence) wrap(r proofs.Responder) proofs.Responder {
	return &presentResponder{Responder: r, p: p}
}

// presentResponder answers only the attempts due in rounds its edge is
// present in.
type presentResponder struct {
	proofs.Responder
	p *presence
}

func (r *presentResponder) Serve(ctx context.Context, c proofs.Challenge, s network.Stream) {
	if r.p.away(c) {
		_ = s.Reset()
		return
	}
	r.Responder.Serve(ctx, c, s)
}
