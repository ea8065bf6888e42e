package node

import (
	"context"
	"fmt"
	"log/slog"
	"sync"
	"testing"
	"testing/synctest"
	"time"

	"github.com/libp2p/go-libp2p/core/crypto"

	"github.com/aropeer/aropeer/wire"
)

// TestBundlerSplits: the bundler gossips every envelope it is given, in
// bundles that open, none over the size or count cap: envelopes of the
// largest receipt's size fill a bundle by bytes, small ones by count.
func TestBundlerSplits(t *testing.T) {
	d := wire.Domain{Name: "aro-test", PayloadType: "/aro/test"}
	key, _, err := crypto.GenerateEd25519Key(nil)
	if err != nil {
		t.Fatal(err)
	}
	for _, c := range []struct {
		size, count int
	}{{16 << 10, 200}, {100, 2500}} {
		t.Run(fmt.Sprintf("%d of %d bytes", c.count, c.size), func(t *testing.T) {
			synctest.Test(t, func(t *testing.T) {
				b, sent := recordingBundler(key, d, 100*time.Millisecond)
				want := make(map[string]bool)
				for i := range c.count {
					env, err := wire.Seal(key, d, fmt.Appendf(make([]byte, 0, c.size), "%0*d", c.size-64, i))
					if err != nil {
						t.Fatal(err)
					}
					want[string(env)] = true
					b.add(env)
				}
				time.Sleep(time.Second) // the last bundle's timer
				bundles := sent()
				got := 0
				for _, msg := range bundles {
					if len(msg) > maxBundle {
						t.Errorf("a bundle of %d bytes, over %d", len(msg), maxBundle)
					}
					_, msgs, err := OpenBundle(msg, d, 32<<10)
					if err != nil {
						t.Fatal(err)
					}
					for _, m := range msgs {
						if !want[string(m.Envelope)] {
							t.Fatal("an envelope bundled twice, or never given")
						}
						delete(want, string(m.Envelope))
						got++
					}
				}
				if len(want) > 0 {
					t.Errorf("%d of %d envelopes never gossiped, in %d bundles", len(want), c.count, len(bundles))
				}
				if len(bundles) > c.count/10 {
					t.Errorf("%d envelopes in %d bundles: hardly bundled", got, len(bundles))
				}
			})
		})
	}
}

// TestBundlerSendsALoneEnvelopeAtOnce: an envelope that finds the topic
// quiet leaves at once, alone; a burst after it waits out the while and
// leaves as one bundle.
func TestBundlerSendsALoneEnvelopeAtOnce(t *testing.T) {
	d := wire.Domain{Name: "aro-test", PayloadType: "/aro/test"}
	key, _, err := crypto.GenerateEd25519Key(nil)
	if err != nil {
		t.Fatal(err)
	}
	synctest.Test(t, func(t *testing.T) {
		b, bundles := recordingBundler(key, d, BundleEvery)
		// sent returns how many envelopes each bundle sent so far held.
		sent := func() []int {
			var sizes []int
			for _, msg := range bundles() {
				_, msgs, err := OpenBundle(msg, d, 1<<10)
				if err != nil {
					t.Fatal(err)
				}
				sizes = append(sizes, len(msgs))
			}
			return sizes
		}
		seal := func(i int) []byte {
			env, err := wire.Seal(key, d, fmt.Appendf(nil, "envelope %d", i))
			if err != nil {
				t.Fatal(err)
			}
			return env
		}
		b.add(seal(0))
		if got := sent(); len(got) != 1 || got[0] != 1 {
			t.Fatalf("a lone envelope: bundles of %v sent at once, want [1]", got)
		}
		for i := 1; i <= 100; i++ {
			b.add(seal(i))
		}
		if got := sent(); len(got) != 1 {
			t.Fatalf("the burst left before the while: bundles of %v", got)
		}
		time.Sleep(BundleEvery)
		if got := sent(); len(got) != 2 || got[1] != 100 {
			t.Fatalf("after the while: bundles of %v, want [1 100]", got)
		}
		time.Sleep(BundleEvery)
		b.add(seal(101))
		if got := sent(); len(got) != 3 || got[2] != 1 {
			t.Fatalf("an envelope after a quiet while: bundles of %v, want [1 100 1]", got)
		}
	})
}

// recordingBundler returns a bundler of envelopes sealed under d by key
// that keeps the bundles it sends, and a function that waits for the
// bubble to settle and returns them.
func recordingBundler(key crypto.PrivKey, d wire.Domain, every time.Duration) (*bundler, func() [][]byte) {
	var mu sync.Mutex
	var bundles [][]byte
	b := &bundler{
		ctx: context.Background(), key: key, domain: d, every: every,
		log: slog.New(slog.DiscardHandler),
		publish: func(_ context.Context, msg []byte) error {
			mu.Lock()
			bundles = append(bundles, msg)
			mu.Unlock()
			return nil
		},
	}
	return b, func() [][]byte {
		synctest.Wait()
		mu.Lock()
		defer mu.Unlock()
		return append([][]byte(nil), bundles...)
	}
}
