package compute

import (
	"crypto/rand"
	"errors"
	"fmt"
	"io"
	"log/slog"
	"time"

	"github.com/libp2p/go-libp2p/core/protocol"

	"github.com/aropeer/aropeer/proofs"
)

// Protocol carries compute spot-checks. On a stream that starts with the
// sealed challenge (sent by the engine):
//
//  1. the keeper sends a task: the size n its claim gives, and a fresh
//     nonce of its own that keys the matrices with the challenge seed
//     (MatrixSeed);
//  2. the edge answers at once with an ack, empty or the reason it
//     refuses (a size its claim does not give, or one over its memory);
//     the keeper takes the round trip from it;
//  3. the edge computes C = A·B, commits its rows in an RFC 6962 tree and
//     sends the root with the time the product took, or the reason it
//     has none; the keeper requires it within Params.Budget of the
//     claim plus the round trip;
//  4. only then the keeper draws Params.Rows distinct row indices from
//     its own randomness and sends them;
//  5. the edge sends those rows with their audit paths, and both close.
//
// Every frame is canonical CBOR in a size-capped, length-prefixed frame.
const Protocol protocol.ID = "/aro/compute/1.0.0"

// ServiceName is the resource manager service of the protocol's streams.
const ServiceName = "aro.compute"

// Defaults of the options.
const (
	// DefaultMaxMemory is what a Responder holds for all its checks at
	// once: four at the default MaxN.
	DefaultMaxMemory = 4 * 10 * DefaultMaxN * DefaultMaxN
	// DefaultStallTimeout bounds each read and write other than the
	// product's.
	DefaultStallTimeout = 5 * time.Second
)

// Frame caps.
const (
	maxTaskSize    = 64
	maxAckSize     = 512
	maxRootSize    = 512
	maxRequestSize = 16 + MaxRows*5
)

// maxRowsSize caps a rows answer for size n and m rows: each row 4n
// bytes and a path of at most 64 nodes of 34 bytes, with room to spare.
func maxRowsSize(n, m int) int { return m*(4*n+16+64*34) + 512 }

// task is the keeper's first frame after the challenge.
type task struct {
	N     uint32 `cbor:"n"`
	Nonce []byte `cbor:"nonce"`
}

// ack is the edge's answer to a task.
type ack struct {
	Refused string `cbor:"refused,omitempty"`
}

// rootMsg is the edge's commitment to C, or why it has none.
type rootMsg struct {
	Root []byte `cbor:"root,omitempty"`
	// ComputeMicros is the time the product took on the edge, as it
	// reports it (a receipt records it; the deadline is the keeper's
	// own clock).
	ComputeMicros uint64 `cbor:"compute_us,omitempty"`
	Error         string `cbor:"error,omitempty"`
}

// request names the rows the keeper checks.
type request struct {
	Rows []uint32 `cbor:"rows"`
}

// rowsMsg answers a request: the rows asked for, in order.
type rowsMsg struct {
	Rows []rowProof `cbor:"rows"`
}

// rowProof is a row of C (n little-endian int32) with its audit path.
type rowProof struct {
	Index uint32   `cbor:"i"`
	Row   []byte   `cbor:"row"`
	Path  [][]byte `cbor:"path"`
}

// Footprint is the memory a check of size n holds on an edge: A and B
// (2n^2), C (4n^2), a packed copy of B as the CPU executor makes (4n^2)
// and the tree (64n). A Responder counts it against its memory cap.
func Footprint(n int) int64 { return 10*int64(n)*int64(n) + 64*int64(n) }

// checkChallenge refuses challenges no keeper should build or answer.
func checkChallenge(c proofs.Challenge) error {
	switch {
	case c.Kind != proofs.KindCompute:
		return fmt.Errorf("compute: challenge of kind %q", c.Kind)
	case len(c.Seed) == 0:
		return errors.New("compute: challenge without seed")
	}
	return nil
}

// Option configures a Responder or a Verifier; an option that does not
// apply to one of them is ignored by it.
type Option func(*options)

type options struct {
	params    Params
	maxMemory int64
	stall     time.Duration
	rand      io.Reader
	log       *slog.Logger
}

func newOptions(opts []Option) (options, error) {
	o := options{
		params:    DefaultParams(),
		maxMemory: DefaultMaxMemory,
		stall:     DefaultStallTimeout,
		rand:      rand.Reader,
		log:       slog.Default(),
	}
	for _, opt := range opts {
		opt(&o)
	}
	if err := o.params.Validate(); err != nil {
		return options{}, err
	}
	o.log = o.log.With("component", "compute")
	return o, nil
}

// WithParams sets the network's Params (DefaultParams); keeper and edge
// must use the same.
func WithParams(p Params) Option {
	return func(o *options) { o.params = p }
}

// WithMaxMemory sets the bytes a Responder holds for all its checks at
// once (DefaultMaxMemory), counted by Footprint; it refuses a task that
// would go over. A non-positive value leaves the default.
func WithMaxMemory(n int64) Option {
	return func(o *options) {
		if n > 0 {
			o.maxMemory = n
		}
	}
}

// WithStallTimeout bounds each read and write other than waiting for the
// product (DefaultStallTimeout). A non-positive value leaves the default.
func WithStallTimeout(d time.Duration) Option {
	return func(o *options) {
		if d > 0 {
			o.stall = d
		}
	}
}

// WithRand sets where a Verifier draws the secret that keys each check's
// nonce and rows (crypto/rand by default). Tests and simulations make it
// deterministic; in a keeper it must stay secret from the edge.
func WithRand(r io.Reader) Option {
	return func(o *options) {
		if r != nil {
			o.rand = r
		}
	}
}

// WithLogger sets the logger.
func WithLogger(l *slog.Logger) Option {
	return func(o *options) {
		if l != nil {
			o.log = l
		}
	}
}

// clip bounds a reason quoted in an answer or a receipt.
func clip(s string) string {
	const max = 300
	if len(s) <= max {
		return s
	}
	return s[:max] + "…"
}
