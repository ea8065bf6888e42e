package node

import (
	"context"
	"sync"
	"sync/atomic"

	"github.com/aropeer/aropeer/beacon"
)

// beaconFeed is the node's one Watch of its beacon source, shared by every
// service: a source counts and logs missing rounds per Watch, so each
// service watching on its own would count each gap again.
type beaconFeed struct {
	src    beacon.Source
	latest atomic.Uint64

	mu   sync.Mutex
	subs map[*feedSub]struct{}
}

type feedSub struct {
	ctx context.Context
	ch  chan beacon.Beacon
}

func newBeaconFeed(src beacon.Source) *beaconFeed {
	return &beaconFeed{src: src, subs: make(map[*feedSub]struct{})}
}

func (f *beaconFeed) Info() beacon.Info { return f.src.Info() }

func (f *beaconFeed) Get(ctx context.Context, round uint64) (beacon.Beacon, error) {
	return f.src.Get(ctx, round)
}

// GetFrom names the source that served round, when the source can say.
func (f *beaconFeed) GetFrom(ctx context.Context, round uint64) (beacon.Beacon, string, error) {
	if s, ok := f.src.(sourceNamer); ok {
		return s.GetFrom(ctx, round)
	}
	b, err := f.src.Get(ctx, round)
	return b, f.name(), err
}

func (f *beaconFeed) name() string {
	if n, ok := f.src.(interface{ Name() string }); ok {
		return n.Name()
	}
	return "beacon"
}

// Watch delivers every round the feed receives from now on, in order,
// until ctx ends. A subscriber that does not keep up holds the feed back
// rather than miss a round.
func (f *beaconFeed) Watch(ctx context.Context) <-chan beacon.Beacon {
	sub := &feedSub{ctx: ctx, ch: make(chan beacon.Beacon, 16)}
	f.mu.Lock()
	f.subs[sub] = struct{}{}
	f.mu.Unlock()
	go func() {
		<-ctx.Done()
		f.mu.Lock()
		delete(f.subs, sub)
		f.mu.Unlock()
		close(sub.ch) // run never sends to a sub it no longer holds
	}()
	return sub.ch
}

// run follows the source until ctx ends.
func (f *beaconFeed) run(ctx context.Context) {
	for b := range f.src.Watch(ctx) {
		f.latest.Store(b.Round)
		f.mu.Lock()
		for sub := range f.subs {
			select {
			case sub.ch <- b:
			case <-sub.ctx.Done():
			case <-ctx.Done():
			}
		}
		f.mu.Unlock()
	}
}
