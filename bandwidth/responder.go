package bandwidth

import (
	"context"
	"errors"
	"fmt"
	"io"
	"sync"
	"sync/atomic"
	"time"

	"github.com/libp2p/go-libp2p/core/crypto"
	"github.com/libp2p/go-libp2p/core/network"
	"github.com/libp2p/go-libp2p/core/protocol"

	"github.com/aropeer/aropeer/proofs"
	"github.com/aropeer/aropeer/wire"
)

// Responder serves bandwidth probes on an edge: it sends the keystream
// the keeper asks for and reports, signed, what it received. It protects
// the edge: at most WithMaxConcurrent probes at once, at most
// WithEpochBytes bytes an epoch, at most WithMaxProbeBytes a direction;
// it refuses beyond and counts the refusals. Which keepers may probe at
// all (the edge's committee) the challenge engine checks before Serve.
type Responder struct {
	key crypto.PrivKey
	o   options

	active atomic.Int64
	mu     sync.Mutex
	spent  map[uint64]uint64 // epoch -> bytes granted

	served, refusedBusy, refusedBudget, refusedSize atomic.Uint64
	sent, received                                  atomic.Uint64
}

var _ proofs.Responder = (*Responder)(nil)

// NewResponder returns a Responder that signs its reports with key, the
// edge's host key. key must not be nil.
func NewResponder(key crypto.PrivKey, opts ...Option) *Responder {
	if key == nil {
		panic("bandwidth: NewResponder: nil key")
	}
	return &Responder{key: key, o: newOptions(opts), spent: make(map[uint64]uint64)}
}

// Kind returns proofs.KindBandwidth.
func (r *Responder) Kind() proofs.Kind { return proofs.KindBandwidth }

// Protocol returns Protocol.
func (r *Responder) Protocol() protocol.ID { return Protocol }

// Stats counts what a Responder served and refused.
type Stats struct {
	Served uint64
	// RefusedBusy: over the concurrency cap; RefusedBudget: over the
	// epoch's byte budget; RefusedSize: a direction over the probe cap.
	RefusedBusy, RefusedBudget, RefusedSize uint64
	BytesSent, BytesReceived                uint64
}

// Stats returns the counters so far.
func (r *Responder) Stats() Stats {
	return Stats{
		Served:        r.served.Load(),
		RefusedBusy:   r.refusedBusy.Load(),
		RefusedBudget: r.refusedBudget.Load(),
		RefusedSize:   r.refusedSize.Load(),
		BytesSent:     r.sent.Load(),
		BytesReceived: r.received.Load(),
	}
}

// errRefused marks a probe the edge refused; the keeper was told why.
var errRefused = errors.New("bandwidth: probe refused")

// Serve runs one probe on s. A refused probe gets an ack naming why and
// the stream is closed, so that the keeper's receipt can say why; a probe
// that fails midway has its stream reset.
func (r *Responder) Serve(ctx context.Context, c proofs.Challenge, s network.Stream) {
	if err := r.serve(ctx, c, s); err != nil {
		if errors.Is(err, errRefused) {
			_ = s.Close()
		} else {
			_ = s.Reset()
		}
		r.o.log.Debug("bandwidth probe not served", "keeper", c.Keeper, "round", c.Round, "err", err)
	}
}

func (r *Responder) serve(ctx context.Context, c proofs.Challenge, s network.Stream) error {
	if err := checkChallenge(c); err != nil {
		return err
	}
	if err := s.Scope().SetService(ServiceName); err != nil {
		return err
	}
	if err := s.Scope().ReserveMemory(2*chunkSize, network.ReservationPriorityAlways); err != nil {
		return fmt.Errorf("bandwidth: serve: %w", err)
	}
	defer s.Scope().ReleaseMemory(2 * chunkSize)
	stop := wire.ResetOnDone(ctx, s)
	defer stop()
	refuse := func(counter *atomic.Uint64, reason string) error {
		counter.Add(1)
		msg, _ := wire.Marshal(ack{Refused: reason})
		_ = wire.WriteFrame(s, msg, time.Now().Add(r.o.stallTimeout))
		return fmt.Errorf("%w: %s", errRefused, reason)
	}
	if n := r.active.Add(1); n > int64(r.o.maxConcurrent) {
		r.active.Add(-1)
		return refuse(&r.refusedBusy, fmt.Sprintf("%d probes running, the most this edge serves at once", n-1))
	}
	defer r.active.Add(-1)

	msg, err := wire.ReadFrame(s, maxRequestSize, time.Now().Add(r.o.stallTimeout))
	if err != nil {
		return fmt.Errorf("bandwidth: read request: %w", err)
	}
	var req request
	if err := wire.Unmarshal(msg, &req, maxRequestSize); err != nil {
		return fmt.Errorf("bandwidth: read request: %w", err)
	}
	if req.Up > r.o.maxProbeBytes || req.Down > r.o.maxProbeBytes {
		return refuse(&r.refusedSize, fmt.Sprintf("probe of %d bytes up and %d down, over the cap of %d each way", req.Up, req.Down, r.o.maxProbeBytes))
	}
	if left, ok := r.grant(c.Epoch, req.Up+req.Down); !ok {
		return refuse(&r.refusedBudget, fmt.Sprintf("probe of %d bytes, %d left of this edge's budget for epoch %d", req.Up+req.Down, left, c.Epoch))
	}
	if msg, err = wire.Marshal(ack{}); err != nil {
		return err
	}
	if err := wire.WriteFrame(s, msg, time.Now().Add(r.o.stallTimeout)); err != nil {
		return fmt.Errorf("bandwidth: write ack: %w", err)
	}
	if err := r.send(s, c, req.Up); err != nil {
		return err
	}
	rep, err := r.receive(s, c, req.Down)
	if err != nil {
		return err
	}
	env, err := sealReport(r.key, rep)
	if err != nil {
		return err
	}
	if err := wire.WriteFrame(s, env, time.Now().Add(r.o.stallTimeout)); err != nil {
		return fmt.Errorf("bandwidth: write report: %w", err)
	}
	r.served.Add(1)
	return s.Close()
}

// grant takes n bytes from epoch's budget, and forgets epochs before the
// previous one. It returns what was left when it refuses.
func (r *Responder) grant(epoch, n uint64) (left uint64, ok bool) {
	r.mu.Lock()
	defer r.mu.Unlock()
	for e := range r.spent {
		if e+1 < epoch {
			delete(r.spent, e)
		}
	}
	spent := r.spent[epoch]
	if n > r.o.epochBytes-spent {
		return r.o.epochBytes - spent, false
	}
	r.spent[epoch] = spent + n
	return 0, true
}

// send writes n bytes of c's Up keystream, each write within the stall
// timeout.
func (r *Responder) send(s network.Stream, c proofs.Challenge, n uint64) error {
	ks := NewKeystream(c.Seed, Up, c.Attempt)
	buf := make([]byte, chunkSize)
	for n > 0 {
		b := buf[:min(uint64(len(buf)), n)]
		ks.Read(b)
		if err := s.SetWriteDeadline(time.Now().Add(r.o.stallTimeout)); err != nil {
			return err
		}
		if _, err := s.Write(b); err != nil {
			return fmt.Errorf("bandwidth: send: %w", err)
		}
		r.sent.Add(uint64(len(b)))
		n -= uint64(len(b))
	}
	return s.SetWriteDeadline(time.Time{})
}

// receive reads n bytes, folding them into their digest and sampling their arrivals, each
// read within the stall timeout, and returns the report of them.
func (r *Responder) receive(s network.Stream, c proofs.Challenge, n uint64) (Report, error) {
	rep := reportFor(c)
	var h downDigest
	buf := make([]byte, chunkSize)
	start := time.Now()
	var last time.Duration = -1
	for rep.Bytes < n {
		if err := s.SetReadDeadline(time.Now().Add(r.o.stallTimeout)); err != nil {
			return Report{}, err
		}
		k, err := s.Read(buf[:min(uint64(len(buf)), n-rep.Bytes)])
		if k > 0 {
			h.Write(buf[:k])
			rep.Bytes += uint64(k)
			r.received.Add(uint64(k))
			at := time.Since(start).Truncate(sampleGranule)
			if at == last || len(rep.Sizes) == maxSamples {
				rep.Sizes[len(rep.Sizes)-1] += uint64(k)
				if at != last { // the last sample takes the rest
					rep.Micros[len(rep.Micros)-1] = uint64(at / time.Microsecond)
				}
			} else {
				rep.Micros = append(rep.Micros, uint64(at/time.Microsecond))
				rep.Sizes = append(rep.Sizes, uint64(k))
			}
			last = at
		}
		if err != nil {
			if errors.Is(err, io.EOF) && rep.Bytes == n {
				break
			}
			return Report{}, fmt.Errorf("bandwidth: receive after %d of %d bytes: %w", rep.Bytes, n, err)
		}
	}
	rep.Digest = h.Sum()
	return rep, s.SetReadDeadline(time.Time{})
}
