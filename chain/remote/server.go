package remote

import (
	"context"
	"errors"
	"fmt"
	"log/slog"
	"sync"
	"time"

	"github.com/libp2p/go-libp2p/core/network"

	"github.com/aropeer/aropeer/chain"
	"github.com/aropeer/aropeer/wire"
)

// errLedger marks a failure of the ledger or of the server, rather than
// of the stream or the peer.
var errLedger = errors.New("chain/remote: ledger failed")

// server answers ledger requests from one ledger.
type server struct {
	ledger  Ledger
	log     *slog.Logger
	timeout time.Duration

	ctx    context.Context // cancelled by stop, to cut the streams in flight
	cancel context.CancelFunc

	mu      sync.Mutex
	stopped bool
	running sync.WaitGroup // handlers in flight
}

// Serve installs the handler of Protocol on s, answering from l, and
// returns stop, which removes it, cuts the streams in flight and waits
// for their handlers to return: after stop, l is no longer used. Of the
// options, WithTimeout applies; log may be nil for slog.Default().
func Serve(s Streams, l Ledger, log *slog.Logger, opts ...Option) (stop func()) {
	o := newOptions(opts)
	if log == nil {
		log = slog.Default()
	}
	srv := &server{ledger: l, log: log.With("component", "chain/remote"), timeout: o.timeout}
	srv.ctx, srv.cancel = context.WithCancel(context.Background())
	s.SetStreamHandler(Protocol, srv.handle)
	var once sync.Once
	return func() {
		once.Do(func() {
			s.RemoveStreamHandler(Protocol)
			srv.mu.Lock()
			srv.stopped = true
			srv.mu.Unlock()
			srv.cancel()
			srv.running.Wait()
		})
	}
}

// handle serves one stream: it closes it after an answer and resets it
// on any failure to give one.
func (srv *server) handle(s network.Stream) {
	srv.mu.Lock()
	if srv.stopped {
		srv.mu.Unlock()
		_ = s.Reset()
		return
	}
	srv.running.Add(1)
	srv.mu.Unlock()
	defer srv.running.Done()

	log := srv.log.With("peer", s.Conn().RemotePeer())
	op, err := srv.serve(s)
	if err == nil {
		return
	}
	if errors.Is(err, errLedger) {
		// The peer gets no answer and tries again, as after a crash.
		log.Error("ledger request failed", "op", op, "err", err)
	} else {
		// The peer was slow, went away or sent garbage, or the server
		// stops: nothing for an operator.
		log.Debug("ledger request not answered", "op", op, "err", err)
	}
	_ = s.Reset()
}

// serve reads one request from s, answers it and closes s. It returns the
// request's op, if it got that far.
func (srv *server) serve(s network.Stream) (op string, err error) {
	ctx, cancel := context.WithTimeout(srv.ctx, srv.timeout)
	defer cancel()
	stopWatch := wire.ResetOnDone(ctx, s)
	defer stopWatch()
	// A timeout fires as a reset: report it as one, not as the reset.
	defer func() {
		if err != nil && errors.Is(ctx.Err(), context.DeadlineExceeded) {
			err = fmt.Errorf("%w: after %s: %w", wire.ErrTimeout, srv.timeout, err)
		}
	}()
	deadline, _ := ctx.Deadline()

	if err := s.Scope().SetService(ServiceName); err != nil {
		return "", fmt.Errorf("chain/remote: set service: %w", err)
	}
	resp, op, err := srv.read(ctx, s, deadline)
	if err != nil {
		return op, err
	}
	enc, err := wire.Marshal(resp)
	if err != nil {
		return op, fmt.Errorf("%w: encode %s answer: %w", errLedger, op, err)
	}
	release, err := reserve(s, len(enc))
	if err != nil {
		return op, fmt.Errorf("chain/remote: reserve for %s answer: %w", op, err)
	}
	defer release()
	if err := wire.WriteFrame(s, enc, deadline); err != nil {
		return op, fmt.Errorf("chain/remote: write %s answer: %w", op, err)
	}
	stopWatch()
	if err := s.Close(); err != nil {
		return op, fmt.Errorf("chain/remote: close after %s answer: %w", op, err)
	}
	return op, nil
}

// read reads and answers the request on s. A request it cannot read, or
// one the ledger refuses, gets an answer that says why; only a failure
// of the stream or of the ledger is an error.
func (srv *server) read(ctx context.Context, s network.Stream, deadline time.Time) (response, string, error) {
	frame, err := wire.ReadFrame(s, maxRequest, deadline)
	if errors.Is(err, wire.ErrFrameTooLarge) {
		return refusal(fmt.Errorf("%w: request over %d bytes", ErrBadRequest, maxRequest)), "", nil
	}
	if err != nil {
		return response{}, "", fmt.Errorf("chain/remote: read request: %w", err)
	}
	release, err := reserve(s, len(frame))
	if err != nil {
		return response{}, "", fmt.Errorf("chain/remote: reserve for request: %w", err)
	}
	defer release()
	req, err := decodeRequest(frame)
	if err != nil {
		return refusal(err), req.Op, nil
	}
	resp, err := srv.answer(ctx, req)
	if _, ok := codeOf(err); ok {
		return refusal(err), req.Op, nil
	}
	if err != nil && ctx.Err() != nil {
		return response{}, req.Op, fmt.Errorf("chain/remote: %s: %w", req.Op, err) // cut off, not failed
	}
	if err != nil {
		return response{}, req.Op, fmt.Errorf("%w: %s: %w", errLedger, req.Op, err)
	}
	return resp, req.Op, nil
}

func refusal(err error) response {
	code, _ := codeOf(err)
	return response{Code: code, Message: err.Error()}
}

// answer asks the ledger what req asks.
func (srv *server) answer(ctx context.Context, req request) (response, error) {
	l := srv.ledger
	switch req.Op {
	case opSubmitBatch:
		rec, err := l.SubmitBatch(ctx, *req.Batch)
		return response{Record: &rec}, err
	case opBatch:
		rec, err := l.Batch(ctx, req.Epoch)
		return response{Record: &rec}, err
	case opAccount:
		a, err := l.Account(ctx, req.ID)
		return response{Account: &a}, err
	case opAccounts:
		as, err := l.Accounts(ctx)
		return response{Accounts: as}, err
	case opKeepers:
		as, err := l.Keepers(ctx)
		return response{Accounts: as}, err
	case opSetStake:
		return response{}, fmt.Errorf("%w: stake changes are made by the sequencer's operator, not over the network", chain.ErrInvalid)
	case opSubmitDispute:
		a, err := l.SubmitDispute(ctx, *req.Dispute)
		return response{Account: &a}, err
	case opHead:
		h, err := l.Head(ctx)
		return response{Head: &h}, err
	case opBlocks:
		return srv.page(req.From)
	}
	return response{}, fmt.Errorf("%w: unknown op %q", ErrBadRequest, req.Op) // decodeRequest lets none through
}

// page returns the blocks from height from on that fit a page. It halves
// a page over pageBytes rather than measure each block, as blocks are
// mostly small.
func (srv *server) page(from uint64) (response, error) {
	blocks, err := srv.ledger.BlocksFrom(from, maxPageBlocks)
	if err != nil {
		return response{}, err
	}
	for len(blocks) > 1 {
		enc, err := wire.Marshal(response{Blocks: blocks})
		if err != nil {
			return response{}, fmt.Errorf("encode blocks: %w", err)
		}
		if len(enc) <= pageBytes {
			break
		}
		blocks = blocks[:len(blocks)/2]
	}
	return response{Blocks: blocks}, nil
}
