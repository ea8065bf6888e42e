package beacon

import (
	"bytes"
	"context"
	"errors"
	"fmt"
	"log/slog"
	"slices"
	"sync"
	"time"
)

// Clock is the package's source of time, injected so that tests and
// simulations run on virtual time. node.Clock has the same shape.
type Clock interface {
	Now() time.Time
	After(d time.Duration) <-chan time.Time
}

// SystemClock returns the wall clock.
func SystemClock() Clock { return systemClock{} }

type systemClock struct{}

func (systemClock) Now() time.Time                         { return time.Now() }
func (systemClock) After(d time.Duration) <-chan time.Time { return time.After(d) }

// DefaultGracePeriods is the default grace, in chain periods: how long the
// mux keeps asking for a round it lacks, once the sources deliver later
// rounds, before it counts the round as missing. Relays serve a round
// within a second or two of its time; three periods also cover a lagging
// relay or a slow gossip hop, and a gap holds back the rounds after it by
// at most that much.
const DefaultGracePeriods = 3

// MuxOption configures a Mux.
type MuxOption func(*Mux) error

// WithMuxClock sets the mux's clock; the default is the system clock.
func WithMuxClock(c Clock) MuxOption {
	return func(m *Mux) error {
		if c == nil {
			return errors.New("nil clock")
		}
		m.clock = c
		return nil
	}
}

// WithMuxLogger sets the logger; the mux adds a component attribute.
func WithMuxLogger(l *slog.Logger) MuxOption {
	return func(m *Mux) error {
		if l == nil {
			return errors.New("nil logger")
		}
		m.log = l
		return nil
	}
}

// WithMuxGrace sets how long the mux keeps trying to obtain a round it
// lacks, from the moment a later round is in hand, before it counts the
// round as missing and moves on. The default is DefaultGracePeriods
// periods.
func WithMuxGrace(d time.Duration) MuxOption {
	return func(m *Mux) error {
		if d < 0 {
			return fmt.Errorf("negative grace %v", d)
		}
		m.grace = d
		return nil
	}
}

// Mux combines sources of one chain into one Source. Get returns the
// first beacon of the round that a source serves and that verifies. Watch
// merges the sources' streams into one that holds every round exactly
// once, in increasing order; it fills gaps from the sources' Get and skips
// a round only when no source can provide it within the grace. The mux
// verifies every beacon again itself, so a faulty source can cost a round
// but can never put its randomness in the stream.
type Mux struct {
	info     Info
	verifier *Verifier
	sources  []Source
	names    []string
	clock    Clock
	log      *slog.Logger
	grace    time.Duration
	metrics  metrics

	mu     sync.Mutex
	latest Beacon // zero until Watch delivers a round
	// verified holds the beacons that verified, with their sources'
	// names: every challenge and receipt a node judges asks for its
	// round's beacon, and a BLS check costs milliseconds.
	verified map[uint64]verifiedBeacon
}

// verifiedBeacon is a beacon that verified, and the source it came from.
type verifiedBeacon struct {
	b      Beacon
	source string
}

// verifiedRounds bounds the cache of verified beacons: about the rounds
// a challenge or receipt can still be judged in, and far more.
const verifiedRounds = 1024

// NewMux returns a mux over sources, which must all serve the chain info
// describes.
func NewMux(info Info, sources []Source, opts ...MuxOption) (*Mux, error) {
	if len(sources) == 0 {
		return nil, errors.New("beacon: mux needs at least one source")
	}
	v, err := NewVerifier(info)
	if err != nil {
		return nil, fmt.Errorf("beacon: mux: %w", err)
	}
	m := &Mux{
		info:     v.Info(),
		verifier: v,
		sources:  slices.Clone(sources),
		clock:    systemClock{},
		log:      slog.Default(),
		grace:    DefaultGracePeriods * info.Period,
	}
	for _, o := range opts {
		if err := o(m); err != nil {
			return nil, fmt.Errorf("beacon: mux option: %w", err)
		}
	}
	m.log = m.log.With("component", "beacon")
	for i, s := range m.sources {
		if s == nil {
			return nil, fmt.Errorf("beacon: mux: source %d is nil", i)
		}
		if h := s.Info().Hash; !bytes.Equal(h, info.Hash) {
			return nil, fmt.Errorf("beacon: mux: source %d serves chain %x, want %x", i, h, info.Hash)
		}
	}
	m.names = sourceNames(m.sources)
	m.metrics = newMetrics(m.names)
	return m, nil
}

// sourceNames names each source by its Name method, or by its position,
// and makes the names unique so each keeps its own metrics.
func sourceNames(sources []Source) []string {
	names := make([]string, len(sources))
	seen := make(map[string]bool, len(sources))
	for i, s := range sources {
		name := fmt.Sprintf("source%d", i)
		if n, ok := s.(interface{ Name() string }); ok && n.Name() != "" {
			name = n.Name()
		}
		if seen[name] {
			name = fmt.Sprintf("%s-%d", name, i)
		}
		seen[name] = true
		names[i] = name
	}
	return names
}

// Info returns the chain info the mux verifies against.
func (m *Mux) Info() Info { return m.info.clone() }

// Name returns "mux".
func (m *Mux) Name() string { return "mux" }

// Latest returns the latest round Watch delivered, if any.
func (m *Mux) Latest() (Beacon, bool) {
	m.mu.Lock()
	defer m.mu.Unlock()
	if m.latest.Round == 0 {
		return Beacon{}, false
	}
	return cloneBeacon(m.latest), true
}

func (m *Mux) setLatest(b Beacon) {
	m.mu.Lock()
	defer m.mu.Unlock()
	if b.Round > m.latest.Round {
		m.latest = b
		m.metrics.latest.Set(float64(b.Round))
	}
}

func cloneBeacon(b Beacon) Beacon {
	b.Signature = bytes.Clone(b.Signature)
	b.PreviousSignature = bytes.Clone(b.PreviousSignature)
	b.Randomness = bytes.Clone(b.Randomness)
	return b
}

// Get returns round's beacon from the first source that serves one that
// verifies. It asks every source at once rather than in turn: sources are
// few, a cache hit (gossip, local) answers at once while a relay may take
// a timeout to fail, and a round is wanted as soon as it exists. The
// others are cancelled as soon as one answers.
func (m *Mux) Get(ctx context.Context, round uint64) (Beacon, error) {
	if b, ok := m.Latest(); ok && b.Round == round {
		return b, nil
	}
	b, _, err := m.GetFrom(ctx, round)
	return b, err
}

// GetFrom is Get, and also names the source whose answer won.
func (m *Mux) GetFrom(ctx context.Context, round uint64) (Beacon, string, error) {
	if round == 0 {
		return Beacon{}, "", fmt.Errorf("%w: round 0 has no beacon", ErrUnavailable)
	}
	if t := m.info.TimeOf(round); t.After(m.clock.Now()) {
		return Beacon{}, "", fmt.Errorf("%w: round %d is due at %s", ErrNotYet, round, t.UTC().Format(time.RFC3339))
	}
	if v, ok := m.cached(round); ok {
		return v.b, v.source, nil
	}
	return m.get(ctx, round)
}

// Cached returns round's beacon if the mux has verified it, without
// asking any source: what a node can serve a peer that missed the round.
func (m *Mux) Cached(round uint64) (Beacon, bool) {
	v, ok := m.cached(round)
	return v.b, ok
}

// cached returns round's beacon if it verified before, as a copy the
// caller may keep.
func (m *Mux) cached(round uint64) (verifiedBeacon, bool) {
	m.mu.Lock()
	defer m.mu.Unlock()
	v, ok := m.verified[round]
	if ok {
		v.b = cloneBeacon(v.b)
	}
	return v, ok
}

// remember caches b, which verified, dropping rounds far behind it.
func (m *Mux) remember(b Beacon, source string) {
	m.mu.Lock()
	defer m.mu.Unlock()
	if m.verified == nil {
		m.verified = make(map[uint64]verifiedBeacon)
	}
	if len(m.verified) >= verifiedRounds {
		for r := range m.verified {
			if r+verifiedRounds/2 < b.Round {
				delete(m.verified, r)
			}
		}
		if len(m.verified) >= verifiedRounds {
			// Rounds asked out of order and far apart: start afresh.
			clear(m.verified)
		}
	}
	m.verified[b.Round] = verifiedBeacon{b: cloneBeacon(b), source: source}
}

// get asks every source for round at once and returns the first answer
// that verifies, with its source's name. It returns once every source's
// call has returned.
func (m *Mux) get(ctx context.Context, round uint64) (Beacon, string, error) {
	type answer struct {
		i   int
		b   Beacon
		err error
	}
	ctx, cancel := context.WithCancel(ctx)
	answers := make(chan answer, len(m.sources)) // never blocks a sender
	var wg sync.WaitGroup
	defer func() { cancel(); wg.Wait() }()
	for i, s := range m.sources {
		wg.Go(func() {
			b, err := s.Get(ctx, round)
			answers <- answer{i, b, err}
		})
	}
	var errs []error
	notYet := true
	for range m.sources {
		a := <-answers
		if a.err == nil {
			a.err = m.check(a.i, round, a.b)
		}
		if a.err == nil {
			return a.b, m.names[a.i], nil
		}
		notYet = notYet && errors.Is(a.err, ErrNotYet)
		errs = append(errs, fmt.Errorf("%s: %w", m.names[a.i], a.err))
	}
	if err := ctx.Err(); err != nil {
		return Beacon{}, "", fmt.Errorf("beacon: get round %d: %w", round, err)
	}
	if notYet {
		return Beacon{}, "", fmt.Errorf("%w: round %d: %w", ErrNotYet, round, errors.Join(errs...))
	}
	return Beacon{}, "", fmt.Errorf("%w: round %d: %w", ErrUnavailable, round, errors.Join(errs...))
}

// check verifies b, which source i gave for round, and counts the result.
func (m *Mux) check(i int, round uint64, b Beacon) error {
	err := m.verifier.Verify(b)
	if err == nil && b.Round != round {
		err = fmt.Errorf("%w: asked for round %d, got round %d", ErrInvalid, round, b.Round)
	}
	if err == nil && len(b.Randomness) == 0 {
		// Verify accepts a beacon without randomness; the stream must not.
		err = fmt.Errorf("%w: round %d: no randomness", ErrInvalid, b.Round)
	}
	if err != nil {
		m.metrics.invalid[i].Inc()
		m.log.Warn("source gave a beacon that does not verify", "source", m.names[i], "round", b.Round, "err", err)
		return err
	}
	m.metrics.verified[i].Inc()
	m.remember(b, m.names[i])
	return nil
}

// Watch merges the sources' streams, from the current round on. A round
// that has not arrived by half a period after its time is asked of every
// source's Get, again every half period. A round is counted as missing
// and skipped only when no source could provide it for a whole grace
// during which a later round was in hand: the grace starts when the
// sources show the chain has moved on, not at the round's time, so after
// a stall the mux resumes from the first round it lacks, and catches up
// on every round a source can give within a grace of resuming.
//
// Beacons from a source for rounds already delivered or skipped are
// dropped unverified: nothing could be gained from them. A mux is meant
// to have one Watch at a time; each counts its own missing rounds.
func (m *Mux) Watch(ctx context.Context) <-chan Beacon {
	out := make(chan Beacon)
	w := &muxWatch{
		m:       m,
		out:     out,
		in:      make(chan sourced),
		fetched: make(chan fetchResult),
		pending: make(map[uint64]Beacon),
	}
	go w.run(ctx)
	return out
}

type sourced struct {
	i int
	b Beacon
}

type fetchResult struct {
	round uint64
	b     Beacon
	err   error
}

// muxWatch is the state of one Watch, owned by its run goroutine.
type muxWatch struct {
	m       *Mux
	out     chan<- Beacon
	in      chan sourced     // from the forwarders
	fetched chan fetchResult // from the fetch goroutine
	wg      sync.WaitGroup   // forwarders and fetches

	next    uint64            // the round to deliver next
	pending map[uint64]Beacon // verified rounds above next

	fetching    uint64 // round of the fetch in flight, 0 if none
	fetchStart  time.Time
	fetchCancel context.CancelFunc

	failed   uint64    // round whose last fetch failed, 0 if none
	failedAt time.Time // when that fetch started

	liveSince time.Time // when the first round above next arrived

	missFirst, missLast uint64 // the current run of missing rounds
}

func (w *muxWatch) run(parent context.Context) {
	ctx, cancel := context.WithCancel(parent)
	defer func() {
		cancel()
		w.wg.Wait()
		w.flushMissing()
		close(w.out)
	}()
	for i, s := range w.m.sources {
		ch := s.Watch(ctx)
		w.wg.Go(func() { w.forward(ctx, i, ch) })
	}
	w.next = max(1, w.m.info.RoundAt(w.m.clock.Now()))
	for {
		wake, ok := w.advance(ctx)
		if !ok {
			return
		}
		var timer <-chan time.Time
		if !wake.IsZero() {
			timer = w.m.clock.After(max(0, wake.Sub(w.m.clock.Now())))
		}
		select {
		case <-ctx.Done():
			return
		case s := <-w.in:
			w.accept(s)
		case r := <-w.fetched:
			w.fetchDone(r)
		case <-timer:
		}
	}
}

// forward copies source i's stream into w.in until ctx ends, then drains
// it until the source closes it, so that the mux's stream closes only
// after every source's Watch has stopped.
func (w *muxWatch) forward(ctx context.Context, i int, ch <-chan Beacon) {
	defer func() {
		for range ch {
		}
	}()
	for {
		select {
		case <-ctx.Done():
			return
		case b, ok := <-ch:
			if !ok {
				if ctx.Err() == nil {
					w.m.log.Warn("source stopped watching; the mux goes on with the others", "source", w.m.names[i])
				}
				return
			}
			select {
			case w.in <- sourced{i, b}:
			case <-ctx.Done():
				return
			}
		}
	}
}

// accept verifies a beacon from a source's stream and keeps it until its
// turn.
func (w *muxWatch) accept(s sourced) {
	if s.b.Round < w.next {
		return
	}
	if w.m.check(s.i, s.b.Round, s.b) != nil {
		return
	}
	if len(w.pending) == 0 && s.b.Round > w.next {
		// The sources show the chain has moved past next: the grace of
		// the rounds before it starts now. Fetches that failed during a
		// stall, before the sources came back, do not count.
		w.liveSince = w.m.clock.Now()
	}
	w.pending[s.b.Round] = s.b
}

func (w *muxWatch) fetchDone(r fetchResult) {
	if r.round != w.fetching {
		return // a fetch cancelled because its round came by another way
	}
	w.fetchCancel()
	w.fetching = 0
	if r.err != nil {
		w.m.log.Debug("no source could give a round yet", "round", r.round, "err", r.err)
		w.failed, w.failedAt = r.round, w.fetchStart
		return
	}
	if r.round >= w.next {
		w.pending[r.round] = r.b
	}
}

// advance delivers the rounds in hand in order and decides what to do
// about the first one missing. It returns when it must wait for a source,
// a fetch or the time it returns (zero for none), and false once ctx has
// ended.
func (w *muxWatch) advance(ctx context.Context) (time.Time, bool) {
	for {
		if b, ok := w.pending[w.next]; ok {
			delete(w.pending, w.next)
			if !w.deliver(ctx, b) {
				return time.Time{}, false
			}
			continue
		}
		if w.fetching != 0 && w.fetching != w.next {
			w.fetchCancel()
			w.fetching = 0
		}
		now := w.m.clock.Now()
		due := w.m.info.TimeOf(w.next)
		later := len(w.pending) > 0
		if !later {
			// The sources are on time or stalled: give them half a
			// period to deliver before asking.
			if poll := due.Add(w.m.info.Period / 2); now.Before(poll) {
				return poll, true
			}
		}
		if w.fetching == w.next {
			return time.Time{}, true
		}
		if w.failed == w.next {
			deadline := w.liveSince.Add(w.m.grace)
			if later && !w.failedAt.Before(deadline) {
				w.skip()
				continue
			}
			retry := w.failedAt.Add(w.m.info.Period / 2)
			if later && deadline.Before(retry) {
				retry = deadline
			}
			if now.Before(retry) {
				return retry, true
			}
		}
		w.startFetch(ctx, now)
		return time.Time{}, true
	}
}

// startFetch asks every source for w.next. The fetch is bounded by the
// grace (a period at least), so that a source whose Get waits for a round
// it never gets cannot hold the stream: relays' failover fits in it.
func (w *muxWatch) startFetch(ctx context.Context, now time.Time) {
	round := w.next
	fctx, cancel := context.WithTimeout(ctx, max(w.m.grace, w.m.info.Period))
	w.fetching, w.fetchStart, w.fetchCancel = round, now, cancel
	w.wg.Go(func() {
		b, _, err := w.m.get(fctx, round)
		select {
		case w.fetched <- fetchResult{round, b, err}:
		case <-ctx.Done():
		}
	})
}

func (w *muxWatch) deliver(ctx context.Context, b Beacon) bool {
	w.flushMissing()
	select {
	case w.out <- b:
	case <-ctx.Done():
		return false
	}
	w.next = b.Round + 1
	w.m.setLatest(b)
	return true
}

// skip gives up on w.next: no source could provide it for a grace while a
// later round was in hand. Nothing takes its place.
func (w *muxWatch) skip() {
	w.m.metrics.missing.Inc()
	if w.missFirst == 0 {
		w.missFirst = w.next
	}
	w.missLast = w.next
	w.next++
}

// flushMissing logs the current run of missing rounds, once for the run.
func (w *muxWatch) flushMissing() {
	if w.missFirst == 0 {
		return
	}
	w.m.log.Warn("rounds missing: no source could provide them within the grace; they yield no randomness",
		"first", w.missFirst, "last", w.missLast, "count", w.missLast-w.missFirst+1, "grace", w.m.grace)
	w.missFirst, w.missLast = 0, 0
}
