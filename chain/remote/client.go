package remote

import (
	"context"
	"errors"
	"fmt"
	"log/slog"
	"time"

	"github.com/libp2p/go-libp2p/core/peer"

	"github.com/aropeer/aropeer/chain"
	"github.com/aropeer/aropeer/chain/local"
	"github.com/aropeer/aropeer/proofs"
	"github.com/aropeer/aropeer/wire"
)

// Client is chain.Settlement through the sequencer's ledger, plus its
// blocks. A refusal of the sequencer matches the chain sentinel a local
// ledger would have returned. It is safe for concurrent use.
type Client struct {
	streams   Streams
	sequencer peer.ID
	network   string
	timeout   time.Duration
	attempts  int
	backoff   time.Duration
	log       *slog.Logger
}

var _ chain.Settlement = (*Client)(nil)

// NewClient returns a client of the ledger of network that sequencer
// serves.
func NewClient(s Streams, sequencer peer.ID, network string, opts ...Option) *Client {
	o := newOptions(opts)
	return &Client{
		streams: s, sequencer: sequencer, network: network,
		timeout: o.timeout, attempts: o.attempts, backoff: o.backoff,
		log: o.log.With("component", "chain/remote", "sequencer", sequencer),
	}
}

// SubmitBatch implements chain.Settlement. Submission is idempotent, so a
// submission that got no answer is tried again.
func (c *Client) SubmitBatch(ctx context.Context, b proofs.SignedBatch) (chain.BatchRecord, error) {
	resp, err := c.call(ctx, request{Op: opSubmitBatch, Batch: &b}, true)
	if err == nil && resp.Record == nil {
		err = errNoResult
	}
	if err != nil {
		return chain.BatchRecord{}, fmt.Errorf("chain/remote: submit batch of epoch %d: %w", b.Batch.Epoch, err)
	}
	return *resp.Record, nil
}

// Batch implements chain.Settlement.
func (c *Client) Batch(ctx context.Context, epoch uint64) (chain.BatchRecord, error) {
	resp, err := c.call(ctx, request{Op: opBatch, Epoch: epoch}, true)
	if err == nil && resp.Record == nil {
		err = errNoResult
	}
	if err != nil {
		return chain.BatchRecord{}, fmt.Errorf("chain/remote: batch of epoch %d: %w", epoch, err)
	}
	return *resp.Record, nil
}

// Account implements chain.Settlement.
func (c *Client) Account(ctx context.Context, id peer.ID) (chain.Account, error) {
	if id == "" {
		return chain.Account{}, fmt.Errorf("chain/remote: account: %w: empty peer ID", chain.ErrInvalid)
	}
	resp, err := c.call(ctx, request{Op: opAccount, ID: id}, true)
	if err == nil && resp.Account == nil {
		err = errNoResult
	}
	if err != nil {
		return chain.Account{}, fmt.Errorf("chain/remote: account %s: %w", id, err)
	}
	return *resp.Account, nil
}

// Accounts implements chain.Settlement.
func (c *Client) Accounts(ctx context.Context) ([]chain.Account, error) {
	resp, err := c.call(ctx, request{Op: opAccounts}, true)
	if err != nil {
		return nil, fmt.Errorf("chain/remote: accounts: %w", err)
	}
	return resp.Accounts, nil
}

// Keepers implements chain.Settlement.
func (c *Client) Keepers(ctx context.Context) ([]chain.Account, error) {
	resp, err := c.call(ctx, request{Op: opKeepers}, true)
	if err != nil {
		return nil, fmt.Errorf("chain/remote: keepers: %w", err)
	}
	return resp.Accounts, nil
}

// SetStake implements chain.Settlement, but the sequencer refuses it with
// chain.ErrInvalid: stakes are changed by its operator, on its own node.
func (c *Client) SetStake(ctx context.Context, keeper peer.ID, stake uint64) error {
	if keeper == "" {
		return fmt.Errorf("chain/remote: set stake: %w: empty peer ID", chain.ErrInvalid)
	}
	if _, err := c.call(ctx, request{Op: opSetStake, ID: keeper, Stake: stake}, false); err != nil {
		return fmt.Errorf("chain/remote: set stake of %s: %w", keeper, err)
	}
	return nil
}

// SubmitDispute implements chain.Settlement. It is not tried again: a
// dispute applied whose answer was lost would be refused as settled.
func (c *Client) SubmitDispute(ctx context.Context, d chain.Dispute) (chain.Account, error) {
	resp, err := c.call(ctx, request{Op: opSubmitDispute, Dispute: &d}, false)
	if err == nil && resp.Account == nil {
		err = errNoResult
	}
	if err != nil {
		return chain.Account{}, fmt.Errorf("chain/remote: submit dispute: %w", err)
	}
	return *resp.Account, nil
}

// Head implements chain.Settlement. A head of another network than the
// client's is an error wrapping ErrWrongNetwork.
func (c *Client) Head(ctx context.Context) (chain.Head, error) {
	resp, err := c.call(ctx, request{Op: opHead}, true)
	if err == nil && resp.Head == nil {
		err = errNoResult
	}
	if err != nil {
		return chain.Head{}, fmt.Errorf("chain/remote: head: %w", err)
	}
	if resp.Head.Network != c.network {
		return chain.Head{}, fmt.Errorf("%w: sequencer %s serves network %q, this node is on %q", ErrWrongNetwork, c.sequencer, resp.Head.Network, c.network)
	}
	return *resp.Head, nil
}

// Blocks returns every block from genesis to the sequencer's head, page
// by page, for local.Replay; it checks only that heights follow on.
func (c *Client) Blocks(ctx context.Context) ([]local.Block, error) {
	var out []local.Block
	for {
		from := uint64(len(out))
		resp, err := c.call(ctx, request{Op: opBlocks, From: from}, true)
		if err != nil {
			return nil, fmt.Errorf("chain/remote: blocks from %d: %w", from, err)
		}
		if len(resp.Blocks) == 0 {
			return out, nil
		}
		for i, b := range resp.Blocks {
			if b.Height != from+uint64(i) {
				return nil, fmt.Errorf("chain/remote: blocks from %d: block %d of the page claims height %d", from, i, b.Height)
			}
		}
		out = append(out, resp.Blocks...)
	}
}

// errNoResult means an answer without an error nor the result of its op.
var errNoResult = errors.New("sequencer answered without a result")

// call sends req and returns the answer, or the sequencer's refusal as an
// *Error. If retry is set, an attempt that got no answer (the stream
// failed, or the sequencer did) is made again after a backoff, up to the
// client's attempts; a refusal never is.
func (c *Client) call(ctx context.Context, req request, retry bool) (response, error) {
	enc, err := wire.Marshal(req)
	if err != nil {
		return response{}, fmt.Errorf("encode request: %w", err)
	}
	if limit := requestCap(req.Op); len(enc) > limit {
		return response{}, fmt.Errorf("%w: request of %d bytes, over the %d a %s request may carry", chain.ErrInvalid, len(enc), limit, req.Op)
	}
	attempts := 1
	if retry {
		attempts = c.attempts
	}
	var lastErr error
	for i := range attempts {
		if i > 0 {
			c.log.Debug("ledger request unanswered; retrying", "op", req.Op, "attempt", i+1, "err", lastErr)
			if err := sleep(ctx, c.backoff<<(i-1)); err != nil {
				return response{}, fmt.Errorf("%w (after %w)", err, lastErr)
			}
		}
		frame, err := c.exchange(ctx, req.Op, enc)
		if err != nil {
			if ctx.Err() != nil {
				return response{}, fmt.Errorf("%w (%w)", ctx.Err(), err)
			}
			if errors.Is(err, wire.ErrFrameTooLarge) {
				return response{}, fmt.Errorf("sequencer %s answered: %w", c.sequencer, err) // it would again
			}
			lastErr = err
			continue
		}
		var resp response
		if err := wire.Unmarshal(frame, &resp, responseCap(req.Op)); err != nil {
			return response{}, fmt.Errorf("sequencer %s answered: %w", c.sequencer, err)
		}
		if resp.Code != "" {
			return response{}, &Error{Code: resp.Code, Message: resp.Message}
		}
		return resp, nil
	}
	return response{}, fmt.Errorf("no answer from sequencer %s after %d attempts: %w", c.sequencer, attempts, lastErr)
}

// exchange sends one request frame on a new stream and reads the answer.
func (c *Client) exchange(ctx context.Context, op string, req []byte) ([]byte, error) {
	ctx, cancel := context.WithTimeout(ctx, c.timeout)
	defer cancel()
	s, err := c.streams.NewStream(ctx, c.sequencer, Protocol)
	if err != nil {
		return nil, fmt.Errorf("open stream: %w", err)
	}
	stopWatch := wire.ResetOnDone(ctx, s)
	defer stopWatch()
	deadline, _ := ctx.Deadline()
	if err := wire.WriteFrame(s, req, deadline); err != nil {
		_ = s.Reset()
		return nil, err
	}
	if err := s.CloseWrite(); err != nil {
		_ = s.Reset()
		return nil, fmt.Errorf("close %s request: %w", op, err)
	}
	frame, err := wire.ReadFrame(s, responseCap(op), deadline)
	if err != nil {
		_ = s.Reset()
		return nil, err
	}
	stopWatch()
	_ = s.Close() // the answer is in; a failed close loses nothing
	return frame, nil
}

func sleep(ctx context.Context, d time.Duration) error {
	t := time.NewTimer(d)
	defer t.Stop()
	select {
	case <-ctx.Done():
		return ctx.Err()
	case <-t.C:
		return nil
	}
}
