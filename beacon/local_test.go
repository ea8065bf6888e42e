package beacon

import (
	"bytes"
	"context"
	"errors"
	"log/slog"
	"sync"
	"testing"
	"testing/synctest"
	"time"
)

// localSigned is what a local beacon handed to publish, and when.
type localSigned struct {
	at time.Time
	b  Beacon
}

// localRun runs a local beacon until the returned stop is called, and
// records what it publishes.
func localRun(t *testing.T, l *Local, publish func(context.Context, Beacon) error) (stop func() []localSigned) {
	t.Helper()
	var mu sync.Mutex
	var signed []localSigned
	ctx, cancel := context.WithCancel(t.Context())
	done := make(chan error)
	go func() {
		done <- l.Run(ctx, func(ctx context.Context, b Beacon) error {
			mu.Lock()
			signed = append(signed, localSigned{time.Now(), b})
			mu.Unlock()
			if publish != nil {
				return publish(ctx, b)
			}
			return nil
		})
	}()
	return func() []localSigned {
		cancel()
		if err := <-done; err != nil {
			t.Errorf("Run = %v, want nil once its context ends", err)
		}
		mu.Lock()
		defer mu.Unlock()
		return signed
	}
}

func newLocal(signer *Signer) *Local {
	return NewLocal(signer, WithLocalLogger(slog.New(slog.DiscardHandler)))
}

func TestLocalSignsEachRoundAtItsTime(t *testing.T) {
	synctest.Test(t, func(t *testing.T) {
		signer := gossipChain(t, "local") // round 11 begins now
		info := signer.Info()
		verifier, err := NewVerifier(info)
		if err != nil {
			t.Fatal(err)
		}
		time.Sleep(time.Second) // start in the middle of round 11
		l := newLocal(signer)
		watch := l.Watch(t.Context())
		stop := localRun(t, l, nil)
		time.Sleep(3*gossipPeriod + time.Second) // into round 14
		signed := stop()

		if len(signed) != 4 {
			t.Fatalf("signed %d rounds, want 4 (11 to 14)", len(signed))
		}
		for i, s := range signed {
			round := uint64(11 + i)
			if s.b.Round != round {
				t.Errorf("beacon %d is round %d, want %d", i, s.b.Round, round)
			}
			// The current round at once, the later ones at their time.
			want := info.TimeOf(round)
			if i == 0 {
				want = want.Add(time.Second)
			}
			if !s.at.Equal(want) {
				t.Errorf("round %d signed at %s, want %s", round, s.at, want)
			}
			if err := verifier.Verify(s.b); err != nil {
				t.Errorf("round %d does not verify: %v", round, err)
			}
			if !bytes.Equal(s.b.Randomness, Complete(s.b).Randomness) || len(s.b.Randomness) != 32 {
				t.Errorf("round %d has no randomness", round)
			}
			got, err := l.Get(t.Context(), round)
			if err != nil || !bytes.Equal(got.Signature, s.b.Signature) {
				t.Errorf("Get(%d) = %v; want the beacon it signed", round, err)
			}
		}
		expectRounds(t, watch, 11, 12, 13, 14)

		// Nothing before it started, nothing after it stopped, nothing
		// before its time.
		for _, round := range []uint64{0, 1, 10} {
			if _, err := l.Get(t.Context(), round); !errors.Is(err, ErrUnavailable) {
				t.Errorf("Get(%d) before the start = %v, want ErrUnavailable", round, err)
			}
		}
		if _, err := l.Get(t.Context(), 15); !errors.Is(err, ErrNotYet) {
			t.Errorf("Get(15) = %v, want ErrNotYet", err)
		}
		time.Sleep(gossipPeriod)
		start := time.Now()
		if _, err := l.Get(t.Context(), 15); !errors.Is(err, ErrUnavailable) {
			t.Errorf("Get(15) after the beacon stopped = %v, want ErrUnavailable", err)
		}
		if waited := time.Since(start); waited != 0 {
			t.Errorf("Get(15) of a stopped beacon waited %s", waited)
		}
	})
}

func TestLocalBeforeGenesis(t *testing.T) {
	synctest.Test(t, func(t *testing.T) {
		genesis := time.Now().Add(10 * time.Second).Truncate(time.Second)
		signer, err := NewSigner(bytes.Repeat([]byte{1}, 32), gossipPeriod, genesis.Unix(), "test-genesis")
		if err != nil {
			t.Fatal(err)
		}
		l := newLocal(signer)
		watch := l.Watch(t.Context())
		stop := localRun(t, l, nil)
		if _, err := l.Get(t.Context(), 1); !errors.Is(err, ErrNotYet) {
			t.Errorf("Get(1) before genesis = %v, want ErrNotYet", err)
		}
		time.Sleep(time.Until(genesis) + gossipPeriod + time.Second)
		signed := stop()
		if len(signed) != 2 || signed[0].b.Round != 1 || !signed[0].at.Equal(genesis) {
			t.Fatalf("signed %d beacons, the first %+v; want rounds 1 and 2, the first at genesis", len(signed), signed)
		}
		expectRounds(t, watch, 1, 2)
	})
}

func TestLocalGapsAreNotInvented(t *testing.T) {
	synctest.Test(t, func(t *testing.T) {
		signer := gossipChain(t, "local")
		l := newLocal(signer)
		// A small cache, so that Get must sign old rounds again.
		l.rounds = newRecentRounds(l.info, l.clock, 2, l.info.Period)
		ctx, cancel := context.WithCancel(t.Context())
		watch := l.Watch(ctx)
		var watched []uint64
		watching := make(chan struct{})
		go func() {
			defer close(watching)
			for b := range watch {
				watched = append(watched, b.Round)
			}
		}()

		// Publishing round 12 stalls for two periods: round 13 is too late.
		stalled := false
		stop := localRun(t, l, func(_ context.Context, b Beacon) error {
			if b.Round == 12 && !stalled {
				stalled = true
				time.Sleep(2 * gossipPeriod)
				return errors.New("publish failed, and the beacon goes on")
			}
			return nil
		})
		time.Sleep(4*gossipPeriod + time.Second) // into round 15
		first := stop()
		time.Sleep(2 * gossipPeriod) // rounds 16 and 17 pass while it is down
		stop = localRun(t, l, nil)
		time.Sleep(time.Second)
		second := stop()

		rounds := func(ss []localSigned) []uint64 {
			var rs []uint64
			for _, s := range ss {
				rs = append(rs, s.b.Round)
			}
			return rs
		}
		if got := rounds(first); !equalRounds(got, 11, 12, 14, 15) {
			t.Errorf("first run signed rounds %v, want 11 12 14 15", got)
		}
		if got := rounds(second); !equalRounds(got, 17) {
			t.Errorf("second run signed rounds %v, want 17", got)
		}
		cancel()
		<-watching
		if !equalRounds(watched, 11, 12, 14, 15, 17) {
			t.Errorf("watch delivered rounds %v, want 11 12 14 15 17", watched)
		}

		for _, round := range []uint64{11, 12, 14, 15, 17} {
			b, err := l.Get(t.Context(), round)
			if err != nil {
				t.Errorf("Get(%d) of a signed round: %v", round, err)
				continue
			}
			if want := gossipSign(t, signer, round); !bytes.Equal(b.Signature, want.Signature) {
				t.Errorf("Get(%d) returned another signature", round)
			}
		}
		for _, round := range []uint64{10, 13, 16} {
			if _, err := l.Get(t.Context(), round); !errors.Is(err, ErrUnavailable) {
				t.Errorf("Get(%d) of a round that did not happen = %v, want ErrUnavailable", round, err)
			}
		}
	})
}

func equalRounds(got []uint64, want ...uint64) bool {
	if len(got) != len(want) {
		return false
	}
	for i := range got {
		if got[i] != want[i] {
			return false
		}
	}
	return true
}

func TestLocalRunsOnce(t *testing.T) {
	synctest.Test(t, func(t *testing.T) {
		l := newLocal(gossipChain(t, "local"))
		stop := localRun(t, l, nil)
		synctest.Wait()
		if err := l.Run(t.Context(), func(context.Context, Beacon) error { return nil }); err == nil {
			t.Error("a second Run of a running local beacon started")
		}
		stop()
	})
}

func TestLocalSource(t *testing.T) {
	var _ Source = (*Local)(nil)
	var _ Source = (*GossipSource)(nil)
	l := newLocal(DevnetSigner())
	if l.Name() != "local" || !bytes.Equal(l.Info().Hash, DevnetSigner().Info().Hash) {
		t.Errorf("Name %q, Info %x", l.Name(), l.Info().Hash)
	}
}
