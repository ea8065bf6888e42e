package beacon

import (
	"bytes"
	"context"
	"errors"
	"fmt"
	"log/slog"
	"strings"
	"sync"
	"sync/atomic"
	"testing"
	"testing/synctest"
	"time"

	"go.uber.org/goleak"
)

func TestMain(m *testing.M) {
	goleak.VerifyTestMain(m)
}

// fakeSource is a Source driven by the test: get answers Get (nil: the
// source has nothing), and stream feeds Watch (nil: the source delivers
// nothing until its context ends).
type fakeSource struct {
	name   string
	info   Info
	get    func(ctx context.Context, round uint64) (Beacon, error)
	stream func(ctx context.Context, send func(Beacon) bool)

	gets    atomic.Int64
	watches sync.WaitGroup // Watch goroutines still running
}

func (f *fakeSource) Info() Info   { return f.info }
func (f *fakeSource) Name() string { return f.name }

func (f *fakeSource) Get(ctx context.Context, round uint64) (Beacon, error) {
	f.gets.Add(1)
	if f.get == nil {
		return Beacon{}, ErrUnavailable
	}
	return f.get(ctx, round)
}

func (f *fakeSource) Watch(ctx context.Context) <-chan Beacon {
	ch := make(chan Beacon)
	f.watches.Go(func() {
		defer close(ch)
		if f.stream == nil {
			<-ctx.Done()
			return
		}
		f.stream(ctx, func(b Beacon) bool {
			select {
			case ch <- b:
				return true
			case <-ctx.Done():
				return false
			}
		})
	})
	return ch
}

// roundCache is what a source has received, as gossip keeps it.
type roundCache struct {
	mu sync.Mutex
	m  map[uint64]Beacon
}

func (c *roundCache) add(b Beacon) {
	c.mu.Lock()
	defer c.mu.Unlock()
	if c.m == nil {
		c.m = make(map[uint64]Beacon)
	}
	c.m[b.Round] = b
}

func (c *roundCache) get(_ context.Context, round uint64) (Beacon, error) {
	c.mu.Lock()
	defer c.mu.Unlock()
	if b, ok := c.m[round]; ok {
		return b, nil
	}
	return Beacon{}, ErrUnavailable
}

// streamRounds streams s's beacons from round from on, each delay after
// its round's time, leaving out those drop reports. Each sent beacon goes
// to cache first, when there is one.
func streamRounds(t *testing.T, s *Signer, from uint64, delay time.Duration, drop func(uint64) bool, cache *roundCache) func(context.Context, func(Beacon) bool) {
	return func(ctx context.Context, send func(Beacon) bool) {
		for r := from; ; r++ {
			if !sleepUntil(ctx, s.Info().TimeOf(r).Add(delay)) {
				return
			}
			if drop != nil && drop(r) {
				continue
			}
			b := mustSign(t, s, r)
			if cache != nil {
				cache.add(b)
			}
			if !send(b) {
				return
			}
		}
	}
}

func sleepUntil(ctx context.Context, at time.Time) bool {
	d := time.Until(at)
	if d <= 0 {
		return ctx.Err() == nil
	}
	timer := time.NewTimer(d)
	defer timer.Stop()
	select {
	case <-timer.C:
		return true
	case <-ctx.Done():
		return false
	}
}

// signerGet serves any round of s whose time has come.
func signerGet(t *testing.T, s *Signer) func(context.Context, uint64) (Beacon, error) {
	return func(_ context.Context, round uint64) (Beacon, error) {
		if s.Info().TimeOf(round).After(time.Now()) {
			return Beacon{}, ErrNotYet
		}
		return mustSign(t, s, round), nil
	}
}

// logRecorder keeps log records for a test to read.
type logRecorder struct {
	mu   sync.Mutex
	recs []slog.Record
}

func (l *logRecorder) Enabled(context.Context, slog.Level) bool { return true }
func (l *logRecorder) WithAttrs([]slog.Attr) slog.Handler       { return l }
func (l *logRecorder) WithGroup(string) slog.Handler            { return l }

func (l *logRecorder) Handle(_ context.Context, r slog.Record) error {
	l.mu.Lock()
	defer l.mu.Unlock()
	l.recs = append(l.recs, r.Clone())
	return nil
}

// find returns the attributes of each record whose message starts with
// msg.
func (l *logRecorder) find(msg string) []map[string]slog.Value {
	l.mu.Lock()
	defer l.mu.Unlock()
	var found []map[string]slog.Value
	for _, r := range l.recs {
		if !strings.HasPrefix(r.Message, msg) {
			continue
		}
		attrs := map[string]slog.Value{}
		r.Attrs(func(a slog.Attr) bool {
			attrs[a.Key] = a.Value
			return true
		})
		found = append(found, attrs)
	}
	return found
}

func newTestMux(t *testing.T, info Info, sources []Source, opts ...MuxOption) *Mux {
	t.Helper()
	m, err := NewMux(info, sources, append([]MuxOption{WithMuxLogger(testLogger(t))}, opts...)...)
	if err != nil {
		t.Fatal(err)
	}
	return m
}

// collect reads the mux's stream until it has a beacon of round last or
// later, then ends the Watch and checks that its stream closes and that
// every source's Watch has stopped by then. A stream stuck short of last
// ends after an hour of virtual time, and the rounds it lacks fail the
// test rather than hang it.
func collect(t *testing.T, m *Mux, sources []Source, last uint64) []Beacon {
	got, _ := collectTimed(t, m, sources, last)
	return got
}

// collectTimed is collect that also returns when, in virtual time, each
// beacon was delivered.
func collectTimed(t *testing.T, m *Mux, sources []Source, last uint64) ([]Beacon, []time.Time) {
	t.Helper()
	ctx, cancel := context.WithTimeout(t.Context(), time.Hour)
	defer cancel()
	ch := m.Watch(ctx)
	var got []Beacon
	var at []time.Time
	for b := range ch {
		got = append(got, b)
		at = append(at, time.Now())
		if b.Round >= last {
			break
		}
	}
	if ctx.Err() != nil {
		t.Errorf("the stream stopped short of round %d", last)
	}
	cancel()
	for b := range ch {
		t.Errorf("round %d delivered after cancel", b.Round)
	}
	for _, s := range sources {
		if f, ok := s.(*fakeSource); ok {
			f.watches.Wait() // returns at once: the mux waited for it
		}
	}
	return got, at
}

// checkStream checks that got holds exactly the rounds of want, in order,
// each s's own beacon of its round.
func checkStream(t *testing.T, s *Signer, got []Beacon, want []uint64) {
	t.Helper()
	if len(got) != len(want) {
		var rounds []uint64
		for _, b := range got {
			rounds = append(rounds, b.Round)
		}
		t.Fatalf("delivered rounds %v, want %v", rounds, want)
	}
	for k, b := range got {
		checkBeacon(t, s, b, want[k])
	}
}

func roundsFrom(first, last uint64, except ...uint64) []uint64 {
	var rs []uint64
	for r := first; r <= last; r++ {
		skip := false
		for _, e := range except {
			skip = skip || r == e
		}
		if !skip {
			rs = append(rs, r)
		}
	}
	return rs
}

func TestNewMuxRefuses(t *testing.T) {
	s := newTestSigner(t, 1, 1_700_000_000)
	other := newTestSigner(t, 2, 1_700_000_000)
	good := &fakeSource{info: s.Info()}
	for _, tc := range []struct {
		name    string
		sources []Source
		opts    []MuxOption
	}{
		{"no source", nil, nil},
		{"nil source", []Source{good, nil}, nil},
		{"source of another chain", []Source{good, &fakeSource{info: other.Info()}}, nil},
		{"negative grace", []Source{good}, []MuxOption{WithMuxGrace(-time.Second)}},
		{"nil logger", []Source{good}, []MuxOption{WithMuxLogger(nil)}},
	} {
		t.Run(tc.name, func(t *testing.T) {
			if _, err := NewMux(s.Info(), tc.sources, tc.opts...); err == nil || !strings.HasPrefix(err.Error(), "beacon: ") {
				t.Fatalf("got %v, want a beacon: error", err)
			}
		})
	}
}

func TestMuxGetFirstVerifiedWins(t *testing.T) {
	synctest.Test(t, func(t *testing.T) {
		s := newTestSigner(t, 1, time.Now().Unix()-300)
		forger := newTestSigner(t, 2, s.Info().GenesisTime)
		hanging := &fakeSource{name: "hanging", info: s.Info(), get: func(ctx context.Context, _ uint64) (Beacon, error) {
			<-ctx.Done()
			return Beacon{}, ctx.Err()
		}}
		forged := &fakeSource{name: "forged", info: s.Info(), get: func(_ context.Context, round uint64) (Beacon, error) {
			return mustSign(t, forger, round), nil // at once, and wrong
		}}
		slow := &fakeSource{name: "slow", info: s.Info(), get: func(ctx context.Context, round uint64) (Beacon, error) {
			time.Sleep(2 * time.Second)
			return mustSign(t, s, round), nil
		}}
		m := newTestMux(t, s.Info(), []Source{hanging, forged, slow})

		b, err := m.Get(t.Context(), 50)
		if err != nil {
			t.Fatal(err)
		}
		checkBeacon(t, s, b, 50)
		// The hanging source was cancelled once the slow one answered.
		if d := hanging.gets.Load(); d != 1 {
			t.Errorf("hanging source asked %d times", d)
		}
		if v := value(t, m.metrics.invalid[1]); v != 1 {
			t.Errorf("forged source: invalid_total %v, want 1", v)
		}
		if v := value(t, m.metrics.verified[2]); v != 1 {
			t.Errorf("slow source: verified_total %v, want 1", v)
		}
		// GetFrom names the winner, for `aropeer beacon get`.
		if b, from, err := m.GetFrom(t.Context(), 51); err != nil || from != "slow" {
			t.Errorf("GetFrom(51) = %v from %q; want the slow source's", err, from)
		} else {
			checkBeacon(t, s, b, 51)
		}
	})
}

// TestMuxGetRemembers: a round that verified is not asked of the sources,
// nor verified, again; a copy comes back, so a caller that changes it
// does not change what others get.
func TestMuxGetRemembers(t *testing.T) {
	synctest.Test(t, func(t *testing.T) {
		s := newTestSigner(t, 1, time.Now().Unix()-300)
		src := &fakeSource{name: "src", info: s.Info(), get: func(_ context.Context, round uint64) (Beacon, error) {
			return mustSign(t, s, round), nil
		}}
		m := newTestMux(t, s.Info(), []Source{src})
		first, err := m.Get(t.Context(), 50)
		if err != nil {
			t.Fatal(err)
		}
		first.Randomness[0] ^= 0xff
		b, from, err := m.GetFrom(t.Context(), 50)
		if err != nil || from != "src" {
			t.Fatalf("GetFrom(50) again = %v from %q", err, from)
		}
		checkBeacon(t, s, b, 50)
		if n := src.gets.Load(); n != 1 {
			t.Errorf("the source was asked %d times for one round", n)
		}
		if v := value(t, m.metrics.verified[0]); v != 1 {
			t.Errorf("verified_total %v, want 1", v)
		}
	})
}

func TestMuxGetInvalidNeverWins(t *testing.T) {
	s := newTestSigner(t, 1, 1_700_000_000)
	forger := newTestSigner(t, 2, s.Info().GenesisTime)
	now := fixedClock{s.Info().TimeOf(100)}
	serve := func(f func(round uint64) Beacon) func(context.Context, uint64) (Beacon, error) {
		return func(_ context.Context, round uint64) (Beacon, error) { return f(round), nil }
	}
	bad := []Source{
		&fakeSource{name: "forged", info: s.Info(), get: serve(func(r uint64) Beacon { return mustSign(t, forger, r) })},
		&fakeSource{name: "other round", info: s.Info(), get: serve(func(r uint64) Beacon { return mustSign(t, s, r-1) })},
		&fakeSource{name: "other randomness", info: s.Info(), get: serve(func(r uint64) Beacon {
			b := mustSign(t, s, r)
			b.Randomness = mustSign(t, s, r+1).Randomness
			return b
		})},
		&fakeSource{name: "no randomness", info: s.Info(), get: serve(func(r uint64) Beacon {
			b := mustSign(t, s, r)
			b.Randomness = nil
			return b
		})},
	}
	m := newTestMux(t, s.Info(), bad, WithMuxClock(now))
	b, err := m.Get(t.Context(), 50)
	if !errors.Is(err, ErrUnavailable) || !errors.Is(err, ErrInvalid) {
		t.Fatalf("got %+v, %v; want ErrUnavailable from invalid beacons", b, err)
	}
	if b.Randomness != nil {
		t.Errorf("returned randomness %x", b.Randomness)
	}
	for i := range bad {
		if v := value(t, m.metrics.invalid[i]); v != 1 {
			t.Errorf("%s: invalid_total %v, want 1", m.names[i], v)
		}
	}
}

func TestMuxGetFutureRoundAsksNobody(t *testing.T) {
	s := newTestSigner(t, 1, 1_700_000_000)
	src := &fakeSource{info: s.Info(), get: signerGet(t, s)}
	m := newTestMux(t, s.Info(), []Source{src}, WithMuxClock(fixedClock{s.Info().TimeOf(100)}))
	if _, err := m.Get(t.Context(), 101); !errors.Is(err, ErrNotYet) {
		t.Errorf("got %v, want ErrNotYet", err)
	}
	if n := src.gets.Load(); n != 0 {
		t.Errorf("source asked %d times", n)
	}
}

func TestMuxWatchMergesInOrderOnce(t *testing.T) {
	synctest.Test(t, func(t *testing.T) {
		start := time.Now()
		s := newTestSigner(t, 1, start.Unix()-10)
		first := s.Info().RoundAt(start)
		last := first + 12
		// Source a is on time but has only even rounds. Source b has them
		// all, late by more than a period, so a's round r+1 comes before
		// b's round r; both have the even rounds. Neither answers Get for
		// a round it has not streamed.
		var ca, cb roundCache
		a := &fakeSource{name: "a", info: s.Info(), get: ca.get,
			stream: streamRounds(t, s, first, 100*time.Millisecond, func(r uint64) bool { return r%2 == 1 }, &ca)}
		b := &fakeSource{name: "b", info: s.Info(), get: cb.get,
			stream: streamRounds(t, s, first, testPeriod+time.Second, nil, &cb)}
		m := newTestMux(t, s.Info(), []Source{a, b})

		got := collect(t, m, []Source{a, b}, last)
		checkStream(t, s, got, roundsFrom(first, last))
		if v := value(t, m.metrics.missing); v != 0 {
			t.Errorf("missing_rounds_total %v: b filled every gap within the grace", v)
		}
		if l, ok := m.Latest(); !ok || l.Round != last {
			t.Errorf("Latest() = %d, %v; want %d", l.Round, ok, last)
		}
		if v := value(t, m.metrics.latest); v != float64(last) {
			t.Errorf("latest_round %v, want %d", v, last)
		}
		// Get of the latest round needs no source.
		before := a.gets.Load() + b.gets.Load()
		if l, err := m.Get(t.Context(), last); err != nil || l.Round != last {
			t.Errorf("Get(latest) = %d, %v", l.Round, err)
		}
		if after := a.gets.Load() + b.gets.Load(); after != before {
			t.Errorf("Get of the latest round asked the sources")
		}
	})
}

func TestMuxWatchNeverDeliversInvalid(t *testing.T) {
	synctest.Test(t, func(t *testing.T) {
		start := time.Now()
		s := newTestSigner(t, 1, start.Unix()-10)
		forger := newTestSigner(t, 2, s.Info().GenesisTime)
		first := s.Info().RoundAt(start)
		last := first + 6
		// The forger is always first, with a well-formed beacon of every
		// round under another key; the honest source comes later.
		forged := &fakeSource{name: "forged", info: s.Info(),
			get:    func(_ context.Context, r uint64) (Beacon, error) { return mustSign(t, forger, r), nil },
			stream: streamRounds(t, forger, first, 0, nil, nil)}
		honest := &fakeSource{name: "honest", info: s.Info(),
			stream: streamRounds(t, s, first, 2*time.Second, nil, nil)}
		m := newTestMux(t, s.Info(), []Source{forged, honest})

		got := collect(t, m, []Source{forged, honest}, last)
		checkStream(t, s, got, roundsFrom(first, last))
		if v := value(t, m.metrics.invalid[0]); v < float64(len(got)) {
			t.Errorf("forged source: invalid_total %v, want at least %d", v, len(got))
		}
		if v := value(t, m.metrics.verified[0]); v != 0 {
			t.Errorf("forged source: verified_total %v", v)
		}
		if v := value(t, m.metrics.verified[1]); v != float64(len(got)) {
			t.Errorf("honest source: verified_total %v, want %d", v, len(got))
		}
	})
}

// TestMuxWatchStall stops every source for ten rounds. The stream comes
// back first, the relay-like source a second later; the mux then fetches
// the rounds it lacks from the relay, except three it never had: those are
// counted and logged, one line per gap, and nothing takes their place.
func TestMuxWatchStall(t *testing.T) {
	synctest.Test(t, func(t *testing.T) {
		start := time.Now()
		s := newTestSigner(t, 1, start.Unix()-10)
		first := s.Info().RoundAt(start)
		stallFrom, stallTo := first+5, first+15 // rounds [stallFrom, stallTo) are never streamed
		last := stallTo + 4
		lost := []uint64{stallFrom + 2, stallFrom + 3, stallFrom + 7}
		resume := s.Info().TimeOf(stallTo).Add(time.Second) // the stream is back at +200 ms

		var cache roundCache
		gossip := &fakeSource{name: "gossip", info: s.Info(), get: cache.get,
			stream: streamRounds(t, s, first, 200*time.Millisecond, func(r uint64) bool {
				return r >= stallFrom && r < stallTo
			}, &cache)}
		serve := signerGet(t, s)
		relay := &fakeSource{name: "relay", info: s.Info(), get: func(ctx context.Context, r uint64) (Beacon, error) {
			if time.Now().Before(resume) {
				return Beacon{}, errors.New("relay down")
			}
			for _, l := range lost {
				if r == l {
					return Beacon{}, ErrUnavailable
				}
			}
			return serve(ctx, r)
		}}
		logs := &logRecorder{}
		m := newTestMux(t, s.Info(), []Source{gossip, relay}, WithMuxLogger(slog.New(logs)))

		got := collect(t, m, []Source{gossip, relay}, last)
		checkStream(t, s, got, roundsFrom(first, last, lost...))
		if v := value(t, m.metrics.missing); v != float64(len(lost)) {
			t.Errorf("missing_rounds_total %v, want %d", v, len(lost))
		}
		gaps := logs.find("rounds missing")
		if len(gaps) != 2 {
			t.Fatalf("%d gap logs, want 2: %v", len(gaps), gaps)
		}
		for k, want := range [][2]uint64{{stallFrom + 2, stallFrom + 3}, {stallFrom + 7, stallFrom + 7}} {
			if f, l := gaps[k]["first"].Uint64(), gaps[k]["last"].Uint64(); f != want[0] || l != want[1] {
				t.Errorf("gap %d logged as %d..%d, want %d..%d", k, f, l, want[0], want[1])
			}
		}
		// While stalled the mux asked the sources but skipped nothing.
		if n := relay.gets.Load(); n < 10 {
			t.Errorf("relay asked %d times", n)
		}
	})
}

// TestMuxWatchGrace checks the grace from the other side: a round the
// sources lack while later ones arrive is waited for, for the grace, then
// given up on, and the later rounds follow in order. A source whose Get
// waits for what it never gets must not hold the stream for ever either.
func TestMuxWatchGrace(t *testing.T) {
	for _, withWaiter := range []bool{false, true} {
		t.Run(fmt.Sprintf("waiting source %v", withWaiter), func(t *testing.T) {
			synctest.Test(t, func(t *testing.T) {
				start := time.Now()
				s := newTestSigner(t, 1, start.Unix()-10)
				first := s.Info().RoundAt(start)
				hole := first + 2
				var cache roundCache
				sources := []Source{&fakeSource{name: "gossip", info: s.Info(), get: cache.get,
					stream: streamRounds(t, s, first, 0, func(r uint64) bool { return r == hole }, &cache)}}
				waiter := &fakeSource{name: "waiter", info: s.Info(), get: func(ctx context.Context, _ uint64) (Beacon, error) {
					<-ctx.Done()
					return Beacon{}, ctx.Err()
				}}
				if withWaiter {
					sources = append(sources, waiter)
				}
				m := newTestMux(t, s.Info(), sources, WithMuxGrace(2*testPeriod))

				got, at := collectTimed(t, m, sources, hole+3)
				checkStream(t, s, got, roundsFrom(first, hole+3, hole))
				if v := value(t, m.metrics.missing); v != 1 {
					t.Errorf("missing_rounds_total %v, want 1", v)
				}
				if withWaiter {
					if waiter.gets.Load() == 0 {
						t.Error("the waiting source was never asked")
					}
					return
				}
				// Round hole+1 came at its time and was held for the grace
				// (virtual time: a logical check, not a timing one).
				if k := int(hole - first); at[k].Before(s.Info().TimeOf(hole + 1).Add(2 * testPeriod)) {
					t.Errorf("round %d delivered at %v, before the grace for round %d had passed", got[k].Round, at[k], hole)
				}
			})
		})
	}
}

func TestMuxWatchClosesWithContext(t *testing.T) {
	synctest.Test(t, func(t *testing.T) {
		s := newTestSigner(t, 1, time.Now().Unix()-10)
		quiet := &fakeSource{name: "quiet", info: s.Info()}
		m := newTestMux(t, s.Info(), []Source{quiet})
		ctx, cancel := context.WithCancel(t.Context())
		ch := m.Watch(ctx)
		time.Sleep(10 * testPeriod)
		cancel()
		if b, ok := <-ch; ok {
			t.Fatalf("delivered round %d from a silent source", b.Round)
		}
		quiet.watches.Wait()
		if _, ok := m.Latest(); ok {
			t.Error("Latest reports a round that was never delivered")
		}
	})
}

func TestMuxSourceStreamEnds(t *testing.T) {
	synctest.Test(t, func(t *testing.T) {
		start := time.Now()
		s := newTestSigner(t, 1, start.Unix()-10)
		first := s.Info().RoundAt(start)
		// One source gives up at once; the other goes on.
		quitter := &fakeSource{name: "quitter", info: s.Info(), stream: func(context.Context, func(Beacon) bool) {}}
		steady := &fakeSource{name: "steady", info: s.Info(), stream: streamRounds(t, s, first, 0, nil, nil)}
		logs := &logRecorder{}
		m := newTestMux(t, s.Info(), []Source{quitter, steady}, WithMuxLogger(slog.New(logs)))
		got := collect(t, m, []Source{quitter, steady}, first+3)
		checkStream(t, s, got, roundsFrom(first, first+3))
		if n := len(logs.find("source stopped watching")); n != 1 {
			t.Errorf("%d logs of the source stopping, want 1", n)
		}
	})
}

// TestMuxOverHTTP runs the mux over a real HTTPSource (relays in memory)
// and a gossip-like source that misses rounds: the relay fills them.
func TestMuxOverHTTP(t *testing.T) {
	synctest.Test(t, func(t *testing.T) {
		start := time.Now()
		s := newTestSigner(t, 1, start.Unix()-10)
		first := s.Info().RoundAt(start)
		f := &fakeRelay{hash: s.Info().HashString(), serve: serveBeacons(s, time.Now)}
		h, err := NewHTTPSource(s.Info(), []string{"http://relay.test"}, WithHTTPTransport(memTransport{f}),
			WithHTTPLogger(testLogger(t)))
		if err != nil {
			t.Fatal(err)
		}
		defer h.Close()
		gossip := &fakeSource{name: "gossip", info: s.Info(),
			stream: streamRounds(t, s, first, 0, func(r uint64) bool { return r%3 == 0 }, nil)}
		m := newTestMux(t, s.Info(), []Source{gossip, h})

		got := collect(t, m, []Source{gossip, h}, first+8)
		checkStream(t, s, got, roundsFrom(first, first+8))
		if v := value(t, m.metrics.verified[1]); v == 0 {
			t.Error("no beacon counted from the http source")
		}
		if !bytes.Equal(m.Info().Hash, h.Info().Hash) {
			t.Error("mux and source disagree on the chain")
		}
	})
}
