package node

import (
	"context"
	"sync"
	"sync/atomic"
	"testing"
	"testing/synctest"

	"github.com/aropeer/aropeer/beacon"
)

// countingSource delivers rounds 1..n on its one Watch and counts Watches.
type countingSource struct {
	n       uint64
	watches atomic.Int32
	start   chan struct{}
}

func (s *countingSource) Info() beacon.Info { return beacon.Info{} }
func (s *countingSource) Get(context.Context, uint64) (beacon.Beacon, error) {
	return beacon.Beacon{}, beacon.ErrUnavailable
}
func (s *countingSource) Watch(ctx context.Context) <-chan beacon.Beacon {
	s.watches.Add(1)
	ch := make(chan beacon.Beacon)
	go func() {
		defer close(ch)
		<-s.start
		for r := uint64(1); r <= s.n; r++ {
			select {
			case ch <- beacon.Beacon{Round: r}:
			case <-ctx.Done():
				return
			}
		}
	}()
	return ch
}

func TestBeaconFeedSharesOneWatch(t *testing.T) {
	synctest.Test(t, func(t *testing.T) {
		src := &countingSource{n: 50, start: make(chan struct{})}
		feed := newBeaconFeed(src)
		ctx, cancel := context.WithCancel(t.Context())
		defer cancel()
		var wg sync.WaitGroup
		wg.Go(func() { feed.run(ctx) })

		const watchers = 3
		got := make([][]uint64, watchers)
		var readers sync.WaitGroup
		for i := range watchers {
			ch := feed.Watch(ctx)
			readers.Go(func() {
				for b := range ch {
					got[i] = append(got[i], b.Round)
					if b.Round == src.n {
						return
					}
				}
			})
		}
		synctest.Wait()
		close(src.start)
		readers.Wait()

		if w := src.watches.Load(); w != 1 {
			t.Errorf("source watched %d times; want once for %d watchers", w, watchers)
		}
		for i, rounds := range got {
			if len(rounds) != int(src.n) {
				t.Fatalf("watcher %d got %d rounds; want %d", i, len(rounds), src.n)
			}
			for j, r := range rounds {
				if r != uint64(j+1) {
					t.Fatalf("watcher %d: round %d at position %d", i, r, j)
				}
			}
		}
		if l := feed.latest.Load(); l != src.n {
			t.Errorf("latest = %d; want %d", l, src.n)
		}
		cancel()
		wg.Wait()
	})
}
