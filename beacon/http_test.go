package beacon

import (
	"bytes"
	"context"
	"encoding/hex"
	"encoding/json"
	"errors"
	"fmt"
	"log/slog"
	"net/http"
	"net/http/httptest"
	"os"
	"path/filepath"
	"regexp"
	"strconv"
	"strings"
	"sync"
	"testing"
	"testing/synctest"
	"time"
)

// testPeriod is the period of the test chains: drand's chain hash needs
// whole seconds.
const testPeriod = 3 * time.Second

// newTestSigner returns the beacon of a test chain whose round 1 starts at
// genesis; seed tells chains apart.
func newTestSigner(t testing.TB, seed byte, genesis int64) *Signer {
	t.Helper()
	s, err := NewSigner(bytes.Repeat([]byte{seed}, 32), testPeriod, genesis, "aropeer-test")
	if err != nil {
		t.Fatal(err)
	}
	return s
}

func mustSign(t testing.TB, s *Signer, round uint64) Beacon {
	t.Helper()
	b, err := s.Sign(round)
	if err != nil {
		t.Fatal(err)
	}
	return b
}

// beaconJSON encodes b as drand's relays serve it.
func beaconJSON(b Beacon) []byte {
	m := map[string]any{
		"round":      b.Round,
		"randomness": hex.EncodeToString(b.Randomness),
		"signature":  hex.EncodeToString(b.Signature),
	}
	if len(b.PreviousSignature) > 0 {
		m["previous_signature"] = hex.EncodeToString(b.PreviousSignature)
	}
	j, _ := json.Marshal(m)
	return j
}

// testLogger writes to the test's output, shown for failed or verbose
// tests only.
func testLogger(t *testing.T) *slog.Logger {
	return slog.New(slog.NewTextHandler(t.Output(), &slog.HandlerOptions{Level: slog.LevelDebug}))
}

// fixedClock stands still: Get only asks it what time it is.
type fixedClock struct{ t time.Time }

func (c fixedClock) Now() time.Time                     { return c.t }
func (fixedClock) After(time.Duration) <-chan time.Time { return nil }

// fakeRelay serves a chain's beacons under drand's v1 path,
// /{chainhash}/public/{round}, the only one go-clients v0.2.2 asks for
// (it has no v2 /v2/chains/... paths). It records every path asked.
type fakeRelay struct {
	hash  string
	serve func(w http.ResponseWriter, r *http.Request, round uint64)

	mu    sync.Mutex
	paths []string
}

func (f *fakeRelay) ServeHTTP(w http.ResponseWriter, r *http.Request) {
	f.mu.Lock()
	f.paths = append(f.paths, r.URL.Path)
	f.mu.Unlock()
	rest, ok := strings.CutPrefix(r.URL.Path, "/"+f.hash+"/public/")
	if !ok {
		http.NotFound(w, r)
		return
	}
	round, err := strconv.ParseUint(rest, 10, 64)
	if err != nil {
		http.NotFound(w, r)
		return
	}
	f.serve(w, r, round)
}

func (f *fakeRelay) requests() []string {
	f.mu.Lock()
	defer f.mu.Unlock()
	return append([]string(nil), f.paths...)
}

// serveBeacons serves s's beacon of any round whose time has come by now,
// and 404, as drand does, for the others.
func serveBeacons(s *Signer, now func() time.Time) func(http.ResponseWriter, *http.Request, uint64) {
	return func(w http.ResponseWriter, r *http.Request, round uint64) {
		if s.Info().TimeOf(round).After(now()) {
			http.Error(w, "round in the future", http.StatusNotFound)
			return
		}
		b, err := s.Sign(round)
		if err != nil {
			http.Error(w, err.Error(), http.StatusInternalServerError)
			return
		}
		w.Header().Set("Content-Type", "application/json")
		_, _ = w.Write(beaconJSON(b))
	}
}

// startRelay serves f over loopback until the test ends.
func startRelay(t *testing.T, f *fakeRelay) string {
	t.Helper()
	srv := httptest.NewServer(f)
	t.Cleanup(srv.Close)
	return srv.URL
}

// newTestHTTPSource returns a source over urls on its own transport, with
// everything closed when the test ends.
func newTestHTTPSource(t *testing.T, info Info, urls []string, opts ...HTTPOption) *HTTPSource {
	t.Helper()
	tr := &http.Transport{}
	t.Cleanup(tr.CloseIdleConnections)
	h, err := NewHTTPSource(info, urls, append([]HTTPOption{WithHTTPTransport(tr), WithHTTPLogger(testLogger(t))}, opts...)...)
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { _ = h.Close() })
	return h
}

// relayTest is a chain at its round 100, and its relays' behaviours.
type relayTest struct {
	signer *Signer
	info   Info
	now    time.Time
}

func newRelayTest(t *testing.T) relayTest {
	const genesis = 1_700_000_000
	s := newTestSigner(t, 1, genesis)
	info := s.Info()
	return relayTest{signer: s, info: info, now: info.TimeOf(100).Add(time.Second)}
}

func (rt relayTest) relay(t *testing.T, serve func(http.ResponseWriter, *http.Request, uint64)) (*fakeRelay, string) {
	f := &fakeRelay{hash: rt.info.HashString(), serve: serve}
	return f, startRelay(t, f)
}

func (rt relayTest) good() func(http.ResponseWriter, *http.Request, uint64) {
	return serveBeacons(rt.signer, func() time.Time { return rt.now })
}

// The ways a relay can fail a request.
func (rt relayTest) bad(t *testing.T, kind string) func(http.ResponseWriter, *http.Request, uint64) {
	other := newTestSigner(t, 2, rt.info.GenesisTime)
	switch kind {
	case "500":
		return func(w http.ResponseWriter, _ *http.Request, _ uint64) {
			http.Error(w, "boom", http.StatusInternalServerError)
		}
	case "connection closed":
		return func(w http.ResponseWriter, _ *http.Request, _ uint64) {
			conn, _, err := http.NewResponseController(w).Hijack()
			if err == nil {
				_ = conn.Close()
			}
		}
	case "not JSON":
		return func(w http.ResponseWriter, _ *http.Request, _ uint64) {
			_, _ = w.Write([]byte("<html>maintenance</html>"))
		}
	case "bad signature":
		// Another key's beacon of the same round: well formed, and its
		// randomness is even SHA-256 of its signature.
		return func(w http.ResponseWriter, _ *http.Request, round uint64) {
			_, _ = w.Write(beaconJSON(mustSign(t, other, round)))
		}
	case "signature of another round":
		return func(w http.ResponseWriter, _ *http.Request, round uint64) {
			b := mustSign(t, rt.signer, round-1)
			b.Round = round
			_, _ = w.Write(beaconJSON(b))
		}
	case "wrong round":
		// A genuine beacon, of the round before: it verifies, but it is
		// not the round asked for.
		return func(w http.ResponseWriter, _ *http.Request, round uint64) {
			_, _ = w.Write(beaconJSON(mustSign(t, rt.signer, round-1)))
		}
	case "oversized":
		// A genuine beacon padded with whitespace past the cap, without a
		// Content-Length (the flush forces chunked encoding).
		return func(w http.ResponseWriter, _ *http.Request, round uint64) {
			_, _ = w.Write([]byte(" "))
			_ = http.NewResponseController(w).Flush()
			_, _ = w.Write(bytes.Repeat([]byte(" "), DefaultMaxResponse))
			_, _ = w.Write(beaconJSON(mustSign(t, rt.signer, round)))
		}
	case "oversized with length":
		return func(w http.ResponseWriter, _ *http.Request, round uint64) {
			body := append(bytes.Repeat([]byte(" "), DefaultMaxResponse), beaconJSON(mustSign(t, rt.signer, round))...)
			w.Header().Set("Content-Length", strconv.Itoa(len(body)))
			_, _ = w.Write(body)
		}
	}
	t.Fatalf("unknown relay kind %q", kind)
	return nil
}

var badRelayKinds = []string{
	"500", "connection closed", "not JSON", "bad signature",
	"signature of another round", "wrong round", "oversized", "oversized with length",
}

func checkBeacon(t *testing.T, s *Signer, b Beacon, round uint64) {
	t.Helper()
	want := mustSign(t, s, round)
	if b.Round != round || !bytes.Equal(b.Signature, want.Signature) || !bytes.Equal(b.Randomness, want.Randomness) {
		t.Fatalf("got round %d sig %x, want round %d sig %x", b.Round, b.Signature, round, want.Signature)
	}
	v, err := NewVerifier(s.Info())
	if err != nil {
		t.Fatal(err)
	}
	if err := v.Verify(b); err != nil {
		t.Fatal(err)
	}
}

// publicPath matches the only request drand's client should make.
var publicPath = regexp.MustCompile(`^/[0-9a-f]{64}/public/[0-9]+$`)

func TestHTTPGetGoodRelay(t *testing.T) {
	rt := newRelayTest(t)
	f, u := rt.relay(t, rt.good())
	h := newTestHTTPSource(t, rt.info, []string{u}, WithHTTPClock(fixedClock{rt.now}))

	b, from, err := h.GetFrom(t.Context(), 42)
	if err != nil {
		t.Fatal(err)
	}
	checkBeacon(t, rt.signer, b, 42)
	if from != u {
		t.Errorf("served by %q, want %q", from, u)
	}
	// The current round is available, and nothing but beacons was asked:
	// in particular not /info, which is pinned, never fetched.
	if _, err := h.Get(t.Context(), 100); err != nil {
		t.Fatal(err)
	}
	want := []string{"/" + rt.info.HashString() + "/public/42", "/" + rt.info.HashString() + "/public/100"}
	if got := f.requests(); fmt.Sprint(got) != fmt.Sprint(want) {
		t.Errorf("requests %q, want %q", got, want)
	}
}

func TestHTTPSkipsBadRelays(t *testing.T) {
	for _, kind := range badRelayKinds {
		t.Run(kind, func(t *testing.T) {
			rt := newRelayTest(t)
			bad, badURL := rt.relay(t, rt.bad(t, kind))
			_, goodURL := rt.relay(t, rt.good())
			h := newTestHTTPSource(t, rt.info, []string{badURL, goodURL}, WithHTTPClock(fixedClock{rt.now}))

			b, from, err := h.GetFrom(t.Context(), 77)
			if err != nil {
				t.Fatal(err)
			}
			checkBeacon(t, rt.signer, b, 77)
			if from != goodURL {
				t.Errorf("served by %q, want the good relay %q", from, goodURL)
			}
			if n := len(bad.requests()); n != 1 {
				t.Errorf("bad relay asked %d times, want 1", n)
			}
		})
	}
}

func TestHTTPAllRelaysBad(t *testing.T) {
	for _, kind := range badRelayKinds {
		t.Run(kind, func(t *testing.T) {
			rt := newRelayTest(t)
			_, u1 := rt.relay(t, rt.bad(t, "500"))
			_, u2 := rt.relay(t, rt.bad(t, kind))
			h := newTestHTTPSource(t, rt.info, []string{u1, u2}, WithHTTPClock(fixedClock{rt.now}))

			b, from, err := h.GetFrom(t.Context(), 77)
			if !errors.Is(err, ErrUnavailable) {
				t.Fatalf("got %v, %q, %v; want ErrUnavailable", b, from, err)
			}
			if b.Round != 0 || b.Randomness != nil || from != "" {
				t.Errorf("a failed Get returned beacon %+v from %q", b, from)
			}
			// The error carries the last relay's reason.
			if !strings.Contains(err.Error(), u2) {
				t.Errorf("error %q does not name the last relay %s", err, u2)
			}
			invalid := kind == "bad signature" || kind == "signature of another round" || kind == "wrong round"
			if errors.Is(err, ErrInvalid) != invalid {
				t.Errorf("errors.Is(%q, ErrInvalid) = %v, want %v", err, !invalid, invalid)
			}
		})
	}
}

func TestHTTPOversizedRefusedByCap(t *testing.T) {
	for _, kind := range []string{"oversized", "oversized with length"} {
		t.Run(kind, func(t *testing.T) {
			rt := newRelayTest(t)
			_, u := rt.relay(t, rt.bad(t, kind))
			capped := newTestHTTPSource(t, rt.info, []string{u}, WithHTTPClock(fixedClock{rt.now}))
			_, err := capped.Get(t.Context(), 77)
			if !errors.Is(err, ErrUnavailable) || !errors.Is(err, errResponseTooLarge) {
				t.Fatalf("got %v, want ErrUnavailable for a response too large", err)
			}
			// The same response under a larger cap is a good beacon: the
			// cap, nothing else, refused it.
			roomy := newTestHTTPSource(t, rt.info, []string{u}, WithHTTPClock(fixedClock{rt.now}),
				WithHTTPMaxResponse(2*DefaultMaxResponse))
			b, err := roomy.Get(t.Context(), 77)
			if err != nil {
				t.Fatal(err)
			}
			checkBeacon(t, rt.signer, b, 77)
		})
	}
}

func TestHTTPPrefersLastGoodRelay(t *testing.T) {
	rt := newRelayTest(t)
	down, u1 := rt.relay(t, rt.bad(t, "500"))
	up, u2 := rt.relay(t, rt.good())
	h := newTestHTTPSource(t, rt.info, []string{u1, u2}, WithHTTPClock(fixedClock{rt.now}))

	for round := uint64(10); round < 15; round++ {
		if _, from, err := h.GetFrom(t.Context(), round); err != nil || from != u2 {
			t.Fatalf("round %d: from %q, err %v", round, from, err)
		}
	}
	if n := len(down.requests()); n != 1 {
		t.Errorf("failed relay asked %d times, want once: the relay that served is tried first", n)
	}
	if n := len(up.requests()); n != 5 {
		t.Errorf("good relay asked %d times, want 5", n)
	}
}

func TestHTTPFutureRoundAsksNobody(t *testing.T) {
	rt := newRelayTest(t)
	f, u := rt.relay(t, rt.good())
	h := newTestHTTPSource(t, rt.info, []string{u}, WithHTTPClock(fixedClock{rt.now}))

	for _, round := range []uint64{101, 1 << 62} {
		if _, err := h.Get(t.Context(), round); !errors.Is(err, ErrNotYet) {
			t.Errorf("round %d: got %v, want ErrNotYet", round, err)
		}
	}
	if _, err := h.Get(t.Context(), 0); !errors.Is(err, ErrUnavailable) {
		t.Errorf("round 0: got %v, want ErrUnavailable", err)
	}
	if got := f.requests(); len(got) != 0 {
		t.Errorf("relay asked %q", got)
	}
}

func TestHTTPRequestTimeout(t *testing.T) {
	rt := newRelayTest(t)
	// A relay that never answers until the request is given up on.
	_, slow := rt.relay(t, func(_ http.ResponseWriter, r *http.Request, _ uint64) { <-r.Context().Done() })
	_, good := rt.relay(t, rt.good())
	h := newTestHTTPSource(t, rt.info, []string{slow, good}, WithHTTPClock(fixedClock{rt.now}),
		WithHTTPTimeout(50*time.Millisecond))
	b, from, err := h.GetFrom(t.Context(), 5)
	if err != nil || from != good {
		t.Fatalf("from %q, err %v; want the second relay after the first timed out", from, err)
	}
	checkBeacon(t, rt.signer, b, 5)
}

// TestHTTPGolden reads real League of Entropy beacons, as real relays
// serve them, through drand's client: an unchained quicknet round and a
// chained default round, whose previous signature must come through.
func TestHTTPGolden(t *testing.T) {
	for _, tc := range []struct {
		info  Info
		file  string
		round uint64
	}{
		{Quicknet(), "quicknet_1000.json", 1000},
		{Default(), "default_2634945.json", 2634945},
	} {
		t.Run(tc.file, func(t *testing.T) {
			body, err := os.ReadFile(filepath.Join("testdata", tc.file))
			if err != nil {
				t.Fatal(err)
			}
			var want struct {
				Randomness string `json:"randomness"`
				Previous   string `json:"previous_signature"`
			}
			if err := json.Unmarshal(body, &want); err != nil {
				t.Fatal(err)
			}
			f := &fakeRelay{hash: tc.info.HashString(), serve: func(w http.ResponseWriter, _ *http.Request, round uint64) {
				if round != tc.round {
					http.NotFound(w, nil)
					return
				}
				_, _ = w.Write(body)
			}}
			u := startRelay(t, f)
			now := tc.info.TimeOf(tc.round + 1)
			h := newTestHTTPSource(t, tc.info, []string{u}, WithHTTPClock(fixedClock{now}))
			b, err := h.Get(t.Context(), tc.round)
			if err != nil {
				t.Fatal(err)
			}
			if hex.EncodeToString(b.Randomness) != want.Randomness || hex.EncodeToString(b.PreviousSignature) != want.Previous {
				t.Errorf("got randomness %x previous %x, want %s, %s", b.Randomness, b.PreviousSignature, want.Randomness, want.Previous)
			}
			for _, p := range f.requests() {
				if !publicPath.MatchString(p) {
					t.Errorf("unexpected request %q", p)
				}
			}
		})
	}
}

func TestNewHTTPSourceRefuses(t *testing.T) {
	info := newTestSigner(t, 1, 1_700_000_000).Info()
	broken := info
	broken.Period = 2 * testPeriod // no longer matches its hash
	for _, tc := range []struct {
		name string
		info Info
		urls []string
		opts []HTTPOption
	}{
		{"no relay", info, nil, nil},
		{"relay without scheme", info, []string{"api.drand.sh"}, nil},
		{"relay of another scheme", info, []string{"ftp://api.drand.sh"}, nil},
		{"info whose hash does not match", broken, []string{"https://api.drand.sh"}, nil},
		{"nil clock", info, []string{"https://api.drand.sh"}, []HTTPOption{WithHTTPClock(nil)}},
		{"zero timeout", info, []string{"https://api.drand.sh"}, []HTTPOption{WithHTTPTimeout(0)}},
		{"zero cap", info, []string{"https://api.drand.sh"}, []HTTPOption{WithHTTPMaxResponse(0)}},
	} {
		t.Run(tc.name, func(t *testing.T) {
			h, err := NewHTTPSource(tc.info, tc.urls, tc.opts...)
			if err == nil {
				_ = h.Close()
				t.Fatal("accepted")
			}
			if !strings.HasPrefix(err.Error(), "beacon: ") {
				t.Errorf("error %q lacks the package prefix", err)
			}
		})
	}
}

// memTransport serves requests in memory. Watch tests run under synctest,
// whose clock advances only when every goroutine of the test is blocked on
// it; a goroutine reading a real socket never counts as blocked, so the
// relay is called directly instead.
type memTransport struct{ h http.Handler }

func (m memTransport) RoundTrip(req *http.Request) (*http.Response, error) {
	rec := httptest.NewRecorder()
	m.h.ServeHTTP(rec, req)
	return rec.Result(), nil
}

// watchHTTP collects rounds from h's Watch until it has n, then ends it
// and checks that the channel closes.
func watchHTTP(t *testing.T, h *HTTPSource, n int) []Beacon {
	t.Helper()
	ctx, cancel := context.WithCancel(t.Context())
	ch := h.Watch(ctx)
	var got []Beacon
	for b := range ch {
		got = append(got, b)
		if len(got) == n {
			cancel()
			break
		}
	}
	for b := range ch {
		t.Errorf("round %d delivered after cancel", b.Round)
	}
	cancel()
	return got
}

func TestHTTPWatchCatchesUpAfterOutage(t *testing.T) {
	synctest.Test(t, func(t *testing.T) {
		start := time.Now()
		s := newTestSigner(t, 1, start.Unix()-10) // Watch starts in round 4
		first := s.Info().RoundAt(start)
		// The relays publish a round 500 ms after its time, and are down
		// from 10 s to 40 s after the start: ten rounds.
		down := func() bool {
			d := time.Since(start)
			return d >= 10*time.Second && d < 40*time.Second
		}
		good := serveBeacons(s, func() time.Time { return time.Now().Add(-500 * time.Millisecond) })
		f := &fakeRelay{hash: s.Info().HashString(), serve: func(w http.ResponseWriter, r *http.Request, round uint64) {
			if down() {
				http.Error(w, "down", http.StatusBadGateway)
				return
			}
			good(w, r, round)
		}}
		h, err := NewHTTPSource(s.Info(), []string{"http://relay.test"}, WithHTTPTransport(memTransport{f}),
			WithHTTPLogger(testLogger(t)))
		if err != nil {
			t.Fatal(err)
		}
		defer h.Close()

		got := watchHTTP(t, h, 25)
		for k, b := range got {
			checkBeacon(t, s, b, first+uint64(k))
		}
		// The outage delayed rounds but lost none: each was delivered no
		// earlier than its time.
		if end := time.Since(start); end < 40*time.Second {
			t.Errorf("25 rounds delivered within %v, before the relays came back", end)
		}
	})
}

func TestHTTPWatchSkipsRoundRelaysLack(t *testing.T) {
	synctest.Test(t, func(t *testing.T) {
		start := time.Now()
		s := newTestSigner(t, 1, start.Unix()-10)
		first := s.Info().RoundAt(start)
		lacking := first + 3
		good := serveBeacons(s, time.Now)
		f := &fakeRelay{hash: s.Info().HashString(), serve: func(w http.ResponseWriter, r *http.Request, round uint64) {
			if round == lacking {
				http.NotFound(w, r)
				return
			}
			good(w, r, round)
		}}
		logs := &logRecorder{}
		h, err := NewHTTPSource(s.Info(), []string{"http://relay.test"},
			WithHTTPTransport(memTransport{f}), WithHTTPLogger(slog.New(logs)))
		if err != nil {
			t.Fatal(err)
		}
		defer h.Close()

		got := watchHTTP(t, h, 9)
		want := first
		for _, b := range got {
			if want == lacking {
				want++
			}
			checkBeacon(t, s, b, want)
			want++
		}
		if n := len(logs.find("relays serve later rounds but not this one; skipping it")); n != 1 {
			t.Errorf("skip logged %d times, want once", n)
		}
	})
}
