package bandwidth

import (
	"crypto/rand"
	"errors"
	"fmt"
	"io"
	"log/slog"
	"math"
	"time"

	"github.com/libp2p/go-libp2p/core/crypto"
	"github.com/libp2p/go-libp2p/core/peer"
	"github.com/libp2p/go-libp2p/core/protocol"

	"github.com/aropeer/aropeer/proofs"
	"github.com/aropeer/aropeer/wire"
)

// Protocol carries bandwidth probes. On a stream that starts with the
// sealed challenge (sent by the engine), the keeper sends a request frame
// naming the bytes of each direction; the edge answers with an ack frame
// (empty, or the reason it refuses), then sends the Up bytes of
// keystream of the challenge seed, raw; then the keeper sends the Down
// bytes, raw (keystream of a secret of its own, so the edge cannot
// predict them); then the edge sends its signed Report of what it
// received, with its digest (downDigest), and closes.
const Protocol protocol.ID = "/aro/bandwidth/1.0.0"

// ServiceName is the resource manager service of the protocol's streams.
const ServiceName = "aro.bandwidth"

// ReportDomain signs an edge's report of the bytes it received.
var ReportDomain = wire.Domain{Name: "aro-bandwidth-report", PayloadType: "/aro/bandwidth/report"}

// Defaults.
const (
	DefaultProbeDuration = 2 * time.Second
	DefaultMaxProbeBytes = 256 << 20 // per direction
	DefaultMinShare      = 800_000   // ppm of the claim
	DefaultStallTimeout  = time.Second
	DefaultMaxConcurrent = 4
	DefaultEpochBytes    = 8 << 30 // both directions, all keepers
	// minProbeBytes keeps a tiny claim's probe long enough to meter.
	minProbeBytes = 64 << 10
	chunkSize     = 64 << 10
)

const (
	maxRequestSize = 64
	maxAckSize     = 512
	// maxSamples caps the arrivals a report carries; the edge coalesces
	// arrivals within sampleGranule, so a probe of up to maxSamples
	// milliseconds is reported in full.
	maxSamples    = 16 << 10
	sampleGranule = time.Millisecond
	// maxReportSize: two CBOR uint64 arrays of maxSamples, the rest small.
	maxReportSize = 2*9*maxSamples + 4<<10
)

// request is the keeper's first frame after the challenge.
type request struct {
	Up   uint64 `cbor:"up"`   // bytes the edge sends
	Down uint64 `cbor:"down"` // bytes the keeper sends
}

// ack is the edge's answer to a request.
type ack struct {
	Refused string `cbor:"refused,omitempty"`
}

// Report is the edge's signed account of the Down bytes it received:
// their digest (downDigest) and when they arrived. Every other field is set from the
// challenge, so it cannot be replayed for another probe.
type Report struct {
	Network string  `cbor:"net"`
	Round   uint64  `cbor:"round"`
	Attempt uint32  `cbor:"attempt"`
	Edge    peer.ID `cbor:"edge"`
	Keeper  peer.ID `cbor:"keeper"`
	Bytes   uint64  `cbor:"bytes"`
	Digest  []byte  `cbor:"digest"`
	// Micros[i] is when Sizes[i] bytes had arrived, in microseconds
	// after the edge started reading the Down bytes.
	Micros []uint64 `cbor:"micros"`
	Sizes  []uint64 `cbor:"sizes"`
}

func reportFor(c proofs.Challenge) Report {
	return Report{Network: c.Network, Round: c.Round, Attempt: c.Attempt, Edge: c.Edge, Keeper: c.Keeper}
}

// arrivals returns the report's samples as arrivals, or why they are
// malformed.
func (r Report) arrivals() ([]Arrival, error) {
	if len(r.Micros) != len(r.Sizes) {
		return nil, fmt.Errorf("%d times for %d sizes", len(r.Micros), len(r.Sizes))
	}
	out := make([]Arrival, len(r.Micros))
	var sum uint64
	for i, us := range r.Micros {
		if us > uint64(time.Hour/time.Microsecond) || r.Sizes[i] > r.Bytes-sum || r.Sizes[i] > math.MaxInt64 {
			return nil, fmt.Errorf("sample %d of %d bytes at %d µs", i, r.Sizes[i], us)
		}
		sum += r.Sizes[i] // at most r.Bytes: no overflow
		out[i] = Arrival{At: time.Duration(us) * time.Microsecond, Bytes: int64(r.Sizes[i])}
	}
	if sum != r.Bytes {
		return nil, fmt.Errorf("samples of %d bytes for %d received", sum, r.Bytes)
	}
	return out, nil
}

// checkChallenge refuses challenges no keeper should build or answer.
func checkChallenge(c proofs.Challenge) error {
	switch {
	case c.Kind != proofs.KindBandwidth:
		return fmt.Errorf("bandwidth: challenge of kind %q", c.Kind)
	case len(c.Seed) == 0:
		return errors.New("bandwidth: challenge without seed")
	}
	return nil
}

// Option configures a Responder or a Verifier; an option that does not
// apply to one of them is ignored by it. A non-positive value leaves the
// default.
type Option func(*options)

type options struct {
	probeDuration time.Duration
	maxProbeBytes uint64
	minShare      uint64
	stallTimeout  time.Duration
	interval      time.Duration
	maxConcurrent int
	epochBytes    uint64
	rand          io.Reader
	log           *slog.Logger
	probers       func(proofs.Challenge) int
}

func newOptions(opts []Option) options {
	o := options{
		probeDuration: DefaultProbeDuration,
		maxProbeBytes: DefaultMaxProbeBytes,
		minShare:      DefaultMinShare,
		stallTimeout:  DefaultStallTimeout,
		interval:      DefaultInterval,
		maxConcurrent: DefaultMaxConcurrent,
		epochBytes:    DefaultEpochBytes,
		rand:          rand.Reader,
		log:           slog.Default(),
	}
	for _, opt := range opts {
		opt(&o)
	}
	o.log = o.log.With("component", "bandwidth")
	return o
}

// WithProbeDuration sets how long a Verifier's probe of each direction
// lasts at the claimed rate (DefaultProbeDuration).
func WithProbeDuration(d time.Duration) Option {
	return func(o *options) {
		if d > 0 {
			o.probeDuration = d
		}
	}
}

// WithMaxProbeBytes caps the bytes of one direction of one probe, on the
// Verifier (which sizes no probe larger) and on the Responder (which
// refuses larger requests); DefaultMaxProbeBytes.
func WithMaxProbeBytes(n uint64) Option {
	return func(o *options) {
		if n > 0 {
			o.maxProbeBytes = n
		}
	}
}

// WithMinShare sets, in ppm, the share of its claim an edge must measure
// each way to pass (DefaultMinShare).
func WithMinShare(ppm uint64) Option {
	return func(o *options) {
		if ppm > 0 {
			o.minShare = ppm
		}
	}
}

// WithStallTimeout sets how long either side waits for the next bytes
// before it gives the probe up (DefaultStallTimeout).
func WithStallTimeout(d time.Duration) Option {
	return func(o *options) {
		if d > 0 {
			o.stallTimeout = d
		}
	}
}

// WithInterval sets the width of the intervals a Verifier meters in
// (DefaultInterval).
func WithInterval(d time.Duration) Option {
	return func(o *options) {
		if d > 0 {
			o.interval = d
		}
	}
}

// WithMaxConcurrent sets how many probes a Responder serves at once
// (DefaultMaxConcurrent); it refuses more.
func WithMaxConcurrent(n int) Option {
	return func(o *options) {
		if n > 0 {
			o.maxConcurrent = n
		}
	}
}

// WithEpochBytes sets how many probe bytes, both ways, a Responder
// serves in one epoch (DefaultEpochBytes); it refuses probes beyond.
func WithEpochBytes(n uint64) Option {
	return func(o *options) {
		if n > 0 {
			o.epochBytes = n
		}
	}
}

// WithRand sets where a Verifier draws the secret that keys the Down
// bytes (crypto/rand by default).
func WithRand(r io.Reader) Option {
	return func(o *options) {
		if r != nil {
			o.rand = r
		}
	}
}

// WithProbers tells a Verifier how many keepers probe the edge of a
// challenge at once (its committee, which is due Together): each sizes
// its probe for, and judges its measure against, that share of the
// claim, as their measures add up to the edge's rate. Without it, one.
func WithProbers(f func(proofs.Challenge) int) Option {
	return func(o *options) { o.probers = f }
}

// WithLogger sets the logger.
func WithLogger(l *slog.Logger) Option {
	return func(o *options) {
		if l != nil {
			o.log = l
		}
	}
}

// sealReport signs r with key.
func sealReport(key crypto.PrivKey, r Report) ([]byte, error) {
	env, _, err := wire.SealMessage(key, ReportDomain, r)
	if err != nil {
		return nil, fmt.Errorf("bandwidth: seal report: %w", err)
	}
	return env, nil
}

// clip bounds a reason quoted in an answer or a receipt.
func clip(s string) string {
	const max = 300
	if len(s) <= max {
		return s
	}
	return s[:max] + "…"
}
