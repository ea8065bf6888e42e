package beacon

import (
	"bytes"
	"context"
	"errors"
	"fmt"
	"io"
	"log/slog"
	"net/http"
	"net/url"
	"sync"
	"sync/atomic"
	"time"

	"github.com/drand/drand/v2/common/chain"
	dlog "github.com/drand/drand/v2/common/log"
	dhttp "github.com/drand/go-clients/client/http"
	"github.com/drand/go-clients/drand"
)

// Defaults of an HTTPSource.
const (
	// DefaultHTTPTimeout bounds one request to one relay.
	DefaultHTTPTimeout = 5 * time.Second
	// DefaultMaxResponse caps a relay's response body. A beacon is about
	// 500 bytes of JSON.
	DefaultMaxResponse = 16 << 10
	// httpWatchTries is how many times a period Watch asks for a round it
	// lacks.
	httpWatchTries = 4
)

// HTTPOption configures an HTTPSource.
type HTTPOption func(*HTTPSource) error

// WithHTTPClock sets the clock Watch ticks by and Get judges future
// rounds by; the default is the system clock.
func WithHTTPClock(c Clock) HTTPOption {
	return func(h *HTTPSource) error {
		if c == nil {
			return errors.New("nil clock")
		}
		h.clock = c
		return nil
	}
}

// WithHTTPLogger sets the logger; the source adds a component attribute.
func WithHTTPLogger(l *slog.Logger) HTTPOption {
	return func(h *HTTPSource) error {
		if l == nil {
			return errors.New("nil logger")
		}
		h.log = l
		return nil
	}
}

// WithHTTPTransport sets the transport requests go through (a proxy, a
// test server's). drand's client builds its own http.Client around it, so
// it is a transport rather than a client. The default is a clone of
// http.DefaultTransport, so Close can drop its idle connections.
func WithHTTPTransport(rt http.RoundTripper) HTTPOption {
	return func(h *HTTPSource) error {
		if rt == nil {
			return errors.New("nil transport")
		}
		h.transport = rt
		return nil
	}
}

// WithHTTPTimeout bounds each request to one relay; the default is
// DefaultHTTPTimeout.
func WithHTTPTimeout(d time.Duration) HTTPOption {
	return func(h *HTTPSource) error {
		if d <= 0 {
			return fmt.Errorf("request timeout %v is not positive", d)
		}
		h.timeout = d
		return nil
	}
}

// WithHTTPMaxResponse caps a relay's response body in bytes; the default is
// DefaultMaxResponse.
func WithHTTPMaxResponse(n int64) HTTPOption {
	return func(h *HTTPSource) error {
		if n <= 0 {
			return fmt.Errorf("response cap %d is not positive", n)
		}
		h.maxBody = n
		return nil
	}
}

// WithHTTPGrace sets how long after a round's time Watch keeps asking for
// it while the relays already serve later rounds; the default is
// DefaultGracePeriods periods.
func WithHTTPGrace(d time.Duration) HTTPOption {
	return func(h *HTTPSource) error {
		if d < 0 {
			return fmt.Errorf("negative grace %v", d)
		}
		h.grace = d
		return nil
	}
}

// HTTPSource gets a chain's beacons from drand HTTP relays through drand's
// own client (go-clients client/http), one client per relay. The clients
// are built with the pinned chain info: a relay's /info is never asked
// for, so a relay cannot choose what its beacons are checked against.
// Every beacon the source returns passed this package's Verifier, whether
// or not drand's client checked it too.
type HTTPSource struct {
	info      Info
	verifier  *Verifier
	urls      []string
	clients   []drand.Client
	clock     Clock
	log       *slog.Logger
	transport http.RoundTripper
	timeout   time.Duration
	maxBody   int64
	grace     time.Duration

	preferred atomic.Int64 // the relay that served last, tried first
	closeOnce sync.Once
}

// NewHTTPSource returns a source for info's chain over the relays at urls
// (such as https://api.drand.sh), tried in that order at first. It makes
// no request.
func NewHTTPSource(info Info, urls []string, opts ...HTTPOption) (*HTTPSource, error) {
	if len(urls) == 0 {
		return nil, errors.New("beacon: http source needs at least one relay URL")
	}
	v, err := NewVerifier(info)
	if err != nil {
		return nil, fmt.Errorf("beacon: http source: %w", err)
	}
	h := &HTTPSource{
		info:     v.Info(),
		verifier: v,
		urls:     append([]string(nil), urls...),
		clock:    systemClock{},
		log:      slog.Default(),
		timeout:  DefaultHTTPTimeout,
		maxBody:  DefaultMaxResponse,
		grace:    DefaultGracePeriods * info.Period,
	}
	for _, o := range opts {
		if err := o(h); err != nil {
			return nil, fmt.Errorf("beacon: http source option: %w", err)
		}
	}
	h.log = h.log.With("component", "beacon")
	if h.transport == nil {
		if t, ok := http.DefaultTransport.(*http.Transport); ok {
			h.transport = t.Clone()
		} else {
			h.transport = http.DefaultTransport
		}
	}
	ci, err := drandChainInfo(h.info)
	if err != nil {
		return nil, err
	}
	rt := &cappedTransport{next: h.transport, max: h.maxBody}
	dl := drandLogger{h.log}
	for _, u := range h.urls {
		if err := checkRelayURL(u); err != nil {
			return nil, err
		}
		c, err := dhttp.NewWithInfo(dl, u, ci, rt)
		if err != nil {
			return nil, fmt.Errorf("beacon: relay %s: %w", u, err)
		}
		h.clients = append(h.clients, c)
	}
	return h, nil
}

// drandChainInfo converts info for drand's client, which puts the chain
// hash it computes in every URL; it goes through drand's own JSON so the
// conversion is drand's, and checks the hash it will use.
func drandChainInfo(info Info) (*chain.Info, error) {
	j, err := info.MarshalJSON()
	if err != nil {
		return nil, fmt.Errorf("beacon: http source: %w", err)
	}
	ci, err := chain.InfoFromJSON(bytes.NewReader(j))
	if err != nil {
		return nil, fmt.Errorf("beacon: http source: chain info for drand's client: %w", err)
	}
	if h := ci.Hash(); !bytes.Equal(h, info.Hash) {
		return nil, fmt.Errorf("beacon: http source: drand's client would ask for chain %x, want %x", h, info.Hash)
	}
	return ci, nil
}

func checkRelayURL(u string) error {
	p, err := url.Parse(u)
	if err != nil {
		return fmt.Errorf("beacon: relay URL %q: %w", u, err)
	}
	if (p.Scheme != "http" && p.Scheme != "https") || p.Host == "" {
		return fmt.Errorf("beacon: relay URL %q: want http:// or https:// and a host", u)
	}
	return nil
}

// Info returns the pinned chain info.
func (h *HTTPSource) Info() Info { return h.info.clone() }

// Name returns "http".
func (h *HTTPSource) Name() string { return "http" }

// Close drops the source's idle connections. The source must not be used
// after Close.
func (h *HTTPSource) Close() error {
	h.closeOnce.Do(func() {
		for _, c := range h.clients {
			_ = c.Close() // only closes a channel and idle connections
		}
	})
	return nil
}

// Get returns round's beacon; see GetFrom.
func (h *HTTPSource) Get(ctx context.Context, round uint64) (Beacon, error) {
	b, _, err := h.GetFrom(ctx, round)
	return b, err
}

// GetFrom returns round's beacon and the URL of the relay that served it.
// A round whose time has not come fails with ErrNotYet and no request.
// Otherwise the relays are tried one at a time, the one that served last
// first, each with its own timeout; a relay that fails, or serves another
// round or a beacon that does not verify, is passed over. When none
// serves, the error wraps ErrUnavailable and the last relay's reason.
func (h *HTTPSource) GetFrom(ctx context.Context, round uint64) (Beacon, string, error) {
	if round == 0 {
		return Beacon{}, "", fmt.Errorf("%w: round 0 has no beacon", ErrUnavailable)
	}
	if t := h.info.TimeOf(round); t.After(h.clock.Now()) {
		return Beacon{}, "", fmt.Errorf("%w: round %d is due at %s", ErrNotYet, round, t.UTC().Format(time.RFC3339))
	}
	first := int(h.preferred.Load())
	var last error
	for k := range h.clients {
		i := (first + k) % len(h.clients)
		b, err := h.fetch(ctx, i, round)
		if err == nil {
			h.preferred.Store(int64(i))
			return b, h.urls[i], nil
		}
		if ctx.Err() != nil {
			return Beacon{}, "", fmt.Errorf("beacon: get round %d: %w", round, ctx.Err())
		}
		if errors.Is(err, ErrInvalid) {
			h.log.Warn("relay served a beacon that does not verify", "relay", h.urls[i], "round", round, "err", err)
		} else {
			h.log.Debug("relay failed", "relay", h.urls[i], "round", round, "err", err)
		}
		last = err
	}
	return Beacon{}, "", fmt.Errorf("%w: round %d: no relay served it; last: %w", ErrUnavailable, round, last)
}

// fetch asks relay i for round and verifies the answer.
func (h *HTTPSource) fetch(ctx context.Context, i int, round uint64) (Beacon, error) {
	ctx, cancel := context.WithTimeout(ctx, h.timeout)
	defer cancel()
	r, err := h.clients[i].Get(ctx, round)
	if err != nil {
		return Beacon{}, fmt.Errorf("relay %s: %w", h.urls[i], err)
	}
	if r.GetRound() != round {
		return Beacon{}, fmt.Errorf("%w: relay %s served round %d for round %d", ErrInvalid, h.urls[i], r.GetRound(), round)
	}
	// The randomness is derived here, never taken from the relay.
	b := h.verifier.Canonical(Beacon{
		Round:             r.GetRound(),
		Signature:         bytes.Clone(r.GetSignature()),
		PreviousSignature: bytes.Clone(r.GetPreviousSignature()),
	})
	if err := h.verifier.Verify(b); err != nil {
		return Beacon{}, fmt.Errorf("relay %s: %w", h.urls[i], err)
	}
	return b, nil
}

// Watch delivers the chain's rounds from the current one on. It asks for
// each round at its time, then again every quarter period until it has
// it, before it goes on to the next: after an outage it resumes with the
// first round it lacks and catches up in order. A round the relays still
// do not serve once its grace has passed, while they do serve the current
// round, is skipped and logged, so that one round the relays lack cannot
// hold the stream for ever; the mux may still find it elsewhere.
func (h *HTTPSource) Watch(ctx context.Context) <-chan Beacon {
	out := make(chan Beacon)
	go h.watch(ctx, out)
	return out
}

func (h *HTTPSource) watch(ctx context.Context, out chan<- Beacon) {
	defer close(out)
	retry := max(h.info.Period/httpWatchTries, time.Millisecond)
	next := max(1, h.info.RoundAt(h.clock.Now()))
	for {
		if d := h.info.TimeOf(next).Sub(h.clock.Now()); d > 0 && !h.sleep(ctx, d) {
			return
		}
		b, _, err := h.GetFrom(ctx, next)
		if err == nil {
			select {
			case out <- b:
			case <-ctx.Done():
				return
			}
			next++
			continue
		}
		if ctx.Err() != nil {
			return
		}
		if h.movedOn(ctx, next) {
			h.log.Warn("relays serve later rounds but not this one; skipping it", "round", next, "err", err)
			next++
			continue
		}
		if !h.sleep(ctx, retry) {
			return
		}
	}
}

// movedOn reports whether round's grace has passed while the relays serve
// the current round.
func (h *HTTPSource) movedOn(ctx context.Context, round uint64) bool {
	now := h.clock.Now()
	if now.Before(h.info.TimeOf(round).Add(h.grace)) {
		return false
	}
	cur := h.info.RoundAt(now)
	if cur <= round {
		return false
	}
	_, _, err := h.GetFrom(ctx, cur)
	return err == nil
}

func (h *HTTPSource) sleep(ctx context.Context, d time.Duration) bool {
	select {
	case <-h.clock.After(d):
		return true
	case <-ctx.Done():
		return false
	}
}

// errResponseTooLarge is what a relay's oversized body reads as.
var errResponseTooLarge = errors.New("beacon: relay response too large")

// cappedTransport caps response bodies, and turns a response other than
// 200 OK into an error. That bends the RoundTripper rule of leaving status
// codes to the caller, on purpose: drand's client returns an error for such
// a response without closing its body, which would hold the connection
// and the http.Client's timeout goroutine (60 s) behind it.
type cappedTransport struct {
	next http.RoundTripper
	max  int64
}

func (t *cappedTransport) RoundTrip(req *http.Request) (*http.Response, error) {
	resp, err := t.next.RoundTrip(req)
	if err != nil {
		return nil, err
	}
	if resp.StatusCode != http.StatusOK {
		_, _ = io.Copy(io.Discard, io.LimitReader(resp.Body, t.max))
		_ = resp.Body.Close()
		return nil, fmt.Errorf("relay answered %s", resp.Status)
	}
	if resp.ContentLength > t.max {
		_ = resp.Body.Close()
		return nil, fmt.Errorf("%w: %d bytes, cap %d", errResponseTooLarge, resp.ContentLength, t.max)
	}
	resp.Body = &cappedBody{rc: resp.Body, left: t.max}
	return resp, nil
}

// CloseIdleConnections lets http.Client.CloseIdleConnections reach the
// transport underneath.
func (t *cappedTransport) CloseIdleConnections() {
	if c, ok := t.next.(interface{ CloseIdleConnections() }); ok {
		c.CloseIdleConnections()
	}
}

// cappedBody fails the read that would go past its cap, rather than
// truncate silently.
type cappedBody struct {
	rc   io.ReadCloser
	left int64
}

func (b *cappedBody) Read(p []byte) (int, error) {
	if b.left < 0 {
		return 0, errResponseTooLarge
	}
	if int64(len(p)) > b.left+1 {
		p = p[:b.left+1]
	}
	n, err := b.rc.Read(p)
	if int64(n) > b.left {
		b.left = -1
		return 0, errResponseTooLarge
	}
	b.left -= int64(n)
	return n, err
}

func (b *cappedBody) Close() error { return b.rc.Close() }

// drandLogger routes drand's client logging to slog, so that the library
// neither writes to stdout nor replaces zap's global logger, as its
// default logger does.
type drandLogger struct{ l *slog.Logger }

var _ dlog.Logger = drandLogger{}

func (d drandLogger) Debug(kv ...any)               { d.l.Debug(fmt.Sprint(kv...)) }
func (d drandLogger) Info(kv ...any)                { d.l.Info(fmt.Sprint(kv...)) }
func (d drandLogger) Warn(kv ...any)                { d.l.Warn(fmt.Sprint(kv...)) }
func (d drandLogger) Error(kv ...any)               { d.l.Error(fmt.Sprint(kv...)) }
func (d drandLogger) Debugw(msg string, kv ...any)  { d.l.Debug(msg, kv...) }
func (d drandLogger) Infow(msg string, kv ...any)   { d.l.Info(msg, kv...) }
func (d drandLogger) Warnw(msg string, kv ...any)   { d.l.Warn(msg, kv...) }
func (d drandLogger) Errorw(msg string, kv ...any)  { d.l.Error(msg, kv...) }
func (d drandLogger) With(kv ...any) dlog.Logger    { return drandLogger{d.l.With(kv...)} }
func (d drandLogger) Named(s string) dlog.Logger    { return drandLogger{d.l.With("logger", s)} }
func (d drandLogger) AddCallerSkip(int) dlog.Logger { return d }
func (d drandLogger) Fatal(kv ...any)               { d.Fatalw(fmt.Sprint(kv...)) }
func (d drandLogger) Panic(kv ...any)               { d.Panicw(fmt.Sprint(kv...)) }
func (d drandLogger) Panicw(msg string, kv ...any) {
	d.l.Error(msg, kv...)
	panic("beacon: drand client: " + msg)
}

// Fatalw logs at error level: a library must not end the process.
func (d drandLogger) Fatalw(msg string, kv ...any) { d.l.Error(msg, append(kv, "fatal", true)...) }
