// Package remote serves a devnet's embedded ledger (chain/local) over
// libp2p, so that nodes other than the sequencer settle through it: Serve
// answers on the sequencer, and Client is a chain.Settlement for the
// others. Each stream carries one request and one response, both
// canonical CBOR frames.
package remote

import (
	"context"
	"errors"
	"fmt"

	"github.com/libp2p/go-libp2p/core/network"
	"github.com/libp2p/go-libp2p/core/peer"
	"github.com/libp2p/go-libp2p/core/protocol"

	"github.com/aropeer/aropeer/chain"
	"github.com/aropeer/aropeer/chain/local"
	"github.com/aropeer/aropeer/proofs"
	"github.com/aropeer/aropeer/wire"
)

// Protocol is the ledger protocol.
const Protocol protocol.ID = "/aro/ledger/1.0.0"

// ServiceName is the resource manager service of ledger streams.
const ServiceName = "aro-ledger"

// Streams is what the protocol needs of the libp2p host: open a stream to
// a peer, and serve a protocol. A host.Host satisfies it.
type Streams interface {
	NewStream(ctx context.Context, p peer.ID, pids ...protocol.ID) (network.Stream, error)
	SetStreamHandler(pid protocol.ID, handler network.StreamHandler)
	RemoveStreamHandler(pid protocol.ID)
}

// Ledger is what the sequencer serves: the settlement plus its blocks, in
// pages. *local.Ledger satisfies it.
type Ledger interface {
	chain.Settlement
	BlocksFrom(from uint64, limit int) ([]local.Block, error)
}

var _ Ledger = (*local.Ledger)(nil)

// Operations of a request.
const (
	opSubmitBatch   = "submit_batch"
	opBatch         = "batch"
	opAccount       = "account"
	opAccounts      = "accounts"
	opKeepers       = "keepers"
	opSetStake      = "set_stake"
	opSubmitDispute = "submit_dispute"
	opHead          = "head"
	opBlocks        = "blocks"
)

// Size caps. A submission is a batch (up to proofs.MaxBatchSize) and a
// signature of each keeper, so it is large; a dispute is two receipts,
// their inclusion proofs (a path of at most 64 hashes each) and a
// challenge; the rest are an op and a number or an ID. Records, account
// lists and pages of blocks can be large answers; an account or a head is
// small.
const (
	maxSubmitRequest  = 64 << 20
	maxDisputeRequest = 2*proofs.MaxReceiptSize + 2*(64*34+256) + proofs.MaxChallengeSize + 1<<10
	maxSmallRequest   = 4 << 10
	maxRequest        = maxSubmitRequest // what the server reads before it knows the op

	maxLargeResponse = 256 << 20
	maxSmallResponse = 64 << 10

	// A page of blocks holds up to maxPageBlocks blocks and, unless one
	// block alone is larger, up to pageBytes encoded.
	maxPageBlocks = 128
	pageBytes     = 16 << 20
)

// requestCap is the largest request of op.
func requestCap(op string) int {
	switch op {
	case opSubmitBatch:
		return maxSubmitRequest
	case opSubmitDispute:
		return maxDisputeRequest
	default:
		return maxSmallRequest
	}
}

// responseCap is the largest answer to op.
func responseCap(op string) int {
	switch op {
	case opSubmitBatch, opBatch, opAccounts, opKeepers, opBlocks:
		return maxLargeResponse
	default:
		return maxSmallResponse
	}
}

// request is one call. Op says which; only the fields that op needs are
// set.
type request struct {
	Op      string              `cbor:"op"`
	Batch   *proofs.SignedBatch `cbor:"batch,omitempty"`   // submit_batch
	Dispute *chain.Dispute      `cbor:"dispute,omitempty"` // submit_dispute
	ID      peer.ID             `cbor:"id,omitempty"`      // account, set_stake
	Epoch   uint64              `cbor:"epoch,omitempty"`   // batch
	Stake   uint64              `cbor:"stake,omitempty"`   // set_stake
	From    uint64              `cbor:"from,omitempty"`    // blocks: the first height wanted
}

// Fields of a request, to check that an op carries exactly its own.
const (
	fieldBatch = 1 << iota
	fieldDispute
	fieldID
	fieldEpoch
	fieldStake
	fieldFrom
)

var fieldNames = []string{"batch", "dispute", "id", "epoch", "stake", "from"}

// opFields holds, for each op, the fields it may carry and those it must.
var opFields = map[string]struct{ allowed, required int }{
	opSubmitBatch:   {fieldBatch, fieldBatch},
	opBatch:         {fieldEpoch, 0},
	opAccount:       {fieldID, fieldID},
	opAccounts:      {0, 0},
	opKeepers:       {0, 0},
	opSetStake:      {fieldID | fieldStake, fieldID},
	opSubmitDispute: {fieldDispute, fieldDispute},
	opHead:          {0, 0},
	opBlocks:        {fieldFrom, 0},
}

func (r request) fields() int {
	n := 0
	for i, set := range []bool{r.Batch != nil, r.Dispute != nil, r.ID != "", r.Epoch != 0, r.Stake != 0, r.From != 0} {
		if set {
			n |= 1 << i
		}
	}
	return n
}

// decodeRequest decodes and checks one request frame.
func decodeRequest(frame []byte) (request, error) {
	var r request
	if err := wire.Unmarshal(frame, &r, maxRequest); err != nil {
		return request{}, fmt.Errorf("%w: %w", ErrBadRequest, err)
	}
	f, ok := opFields[r.Op]
	if !ok {
		return request{}, fmt.Errorf("%w: unknown op %q", ErrBadRequest, r.Op)
	}
	if len(frame) > requestCap(r.Op) {
		return request{}, fmt.Errorf("%w: %s request of %d bytes, over its cap of %d", ErrBadRequest, r.Op, len(frame), requestCap(r.Op))
	}
	got := r.fields()
	for i, name := range fieldNames {
		bit := 1 << i
		switch {
		case got&bit != 0 && f.allowed&bit == 0:
			return request{}, fmt.Errorf("%w: %s request with a %s field it does not take", ErrBadRequest, r.Op, name)
		case got&bit == 0 && f.required&bit != 0:
			return request{}, fmt.Errorf("%w: %s request without its %s field", ErrBadRequest, r.Op, name)
		}
	}
	return r, nil
}

// response is the answer to one request: on success the result field of
// its op, else a Code and the server's Message.
type response struct {
	Code     string             `cbor:"code,omitempty"`
	Message  string             `cbor:"msg,omitempty"`
	Record   *chain.BatchRecord `cbor:"record,omitempty"`
	Account  *chain.Account     `cbor:"account,omitempty"`
	Accounts []chain.Account    `cbor:"accounts,omitempty"`
	Head     *chain.Head        `cbor:"head,omitempty"`
	Blocks   []local.Block      `cbor:"blocks,omitempty"`
}

// Error codes of a response, one per chain sentinel, and one for requests
// the server could not read.
const (
	codeConflict       = "conflict"
	codeNoQuorum       = "no_quorum"
	codeEpochOrder     = "epoch_order"
	codeNotFound       = "not_found"
	codeInvalid        = "invalid"
	codeDisputeRefused = "dispute_refused"
	codeBadRequest     = "bad_request"
)

var codeErrors = []struct {
	code string
	err  error
}{
	{codeConflict, chain.ErrConflict},
	{codeNoQuorum, chain.ErrNoQuorum},
	{codeEpochOrder, chain.ErrEpochOrder},
	{codeNotFound, chain.ErrNotFound},
	{codeInvalid, chain.ErrInvalid},
	{codeDisputeRefused, chain.ErrDisputeRefused},
	{codeBadRequest, ErrBadRequest},
}

// codeOf returns the code of err, if it is a refusal the caller can act
// on rather than a failure of the server.
func codeOf(err error) (string, bool) {
	for _, c := range codeErrors {
		if errors.Is(err, c.err) {
			return c.code, true
		}
	}
	return "", false
}

// Errors of the client.
var (
	// ErrBadRequest means a request the sequencer cannot read: malformed,
	// over its cap, of an unknown op or with fields its op does not take
	// (a client of another version).
	ErrBadRequest = errors.New("chain/remote: bad request")
	// ErrWrongNetwork means the sequencer serves the ledger of another
	// network than the client's.
	ErrWrongNetwork = errors.New("chain/remote: sequencer of another network")
)

// Error is a refusal the sequencer answered with. It matches (errors.Is)
// the chain sentinel of its code, so callers branch on it as on a local
// ledger's error.
type Error struct {
	Code    string
	Message string // the sequencer's error
}

func (e *Error) Error() string {
	if e.sentinel() == nil {
		return fmt.Sprintf("sequencer refused with unknown code %q: %s", e.Code, e.Message)
	}
	return "sequencer: " + e.Message
}

func (e *Error) Unwrap() error { return e.sentinel() }

func (e *Error) sentinel() error {
	for _, c := range codeErrors {
		if c.code == e.Code {
			return c.err
		}
	}
	return nil
}
