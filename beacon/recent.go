package beacon

import (
	"context"
	"fmt"
	"sync"
	"time"
)

// recentRounds holds the verified beacons a source has seen in its last
// size rounds, and lets Get and Watch wait for rounds still to come. It is
// shared by the gossip and local sources, which both learn of rounds by
// being handed them rather than by asking for them.
type recentRounds struct {
	info  Info
	clock Clock
	size  uint64
	// grace is how long past its time a round is waited for before it is
	// given up as never seen.
	grace time.Duration

	mu      sync.Mutex
	rounds  map[uint64]Beacon
	latest  uint64
	changed chan struct{} // closed and replaced whenever a round is added
}

func newRecentRounds(info Info, clock Clock, size int, grace time.Duration) *recentRounds {
	return &recentRounds{
		info:    info,
		clock:   clock,
		size:    uint64(size),
		grace:   grace,
		rounds:  make(map[uint64]Beacon),
		changed: make(chan struct{}),
	}
}

// addResult says what add did with a beacon.
type addResult int

const (
	roundAdded  addResult = iota
	roundHeld             // the round was already held; the held beacon is returned
	roundTooOld           // the round is below the window, so it was not kept
)

// add keeps a copy of a verified beacon. It never replaces a held round.
func (c *recentRounds) add(b Beacon) (Beacon, addResult) {
	c.mu.Lock()
	defer c.mu.Unlock()
	if prev, ok := c.rounds[b.Round]; ok {
		return cloneBeacon(prev), roundHeld
	}
	if c.belowWindow(b.Round) {
		return Beacon{}, roundTooOld
	}
	c.rounds[b.Round] = cloneBeacon(b)
	if b.Round > c.latest {
		c.evict(c.latest, b.Round)
		c.latest = b.Round
	}
	close(c.changed)
	c.changed = make(chan struct{})
	return b, roundAdded
}

// evict drops the rounds that fall out of the window when the latest round
// moves from old to latest. The loop is bounded by the window's size.
func (c *recentRounds) evict(old, latest uint64) {
	if latest-old >= c.size {
		for r := range c.rounds {
			if r+c.size <= latest {
				delete(c.rounds, r)
			}
		}
		return
	}
	for r := old + 1; r <= latest; r++ {
		if r > c.size {
			delete(c.rounds, r-c.size)
		}
	}
}

// belowWindow reports whether round is too old to be kept; c.mu is held.
func (c *recentRounds) belowWindow(round uint64) bool {
	return round+c.size <= c.latest
}

// lookup returns a copy of a held round: what leaves the cache cannot
// change what is in it.
func (c *recentRounds) lookup(round uint64) (Beacon, bool) {
	c.mu.Lock()
	defer c.mu.Unlock()
	b, ok := c.rounds[round]
	return cloneBeacon(b), ok
}

// notYet reports whether round's time is still to come at t. It asks both
// ways so that a round number too large for TimeOf cannot pass as past.
func (c *recentRounds) notYet(round uint64, t time.Time) bool {
	return round > c.info.RoundAt(t) || c.info.TimeOf(round).After(t)
}

// deadline is when round is given up as never seen.
func (c *recentRounds) deadline(round uint64) time.Time {
	return c.info.TimeOf(round).Add(c.grace)
}

// wait returns round once it is held. It waits no later than the round's
// deadline, so a round that is long past fails at once.
func (c *recentRounds) wait(ctx context.Context, round uint64) (Beacon, error) {
	for {
		c.mu.Lock()
		b, ok := c.rounds[round]
		changed := c.changed
		c.mu.Unlock()
		if ok {
			return cloneBeacon(b), nil
		}
		left := c.deadline(round).Sub(c.clock.Now())
		if left <= 0 {
			return Beacon{}, fmt.Errorf("beacon: round %d was not seen: %w", round, ErrUnavailable)
		}
		select {
		case <-changed:
		case <-c.clock.After(left):
		case <-ctx.Done():
			return Beacon{}, fmt.Errorf("beacon: wait for round %d: %w", round, ctx.Err())
		}
	}
}

// watch delivers held rounds from round from on, in strictly increasing
// order, until ctx ends. A missing round holds back the later ones until it
// arrives or its deadline passes; then it is skipped, never substituted.
// Its goroutine is owned by ctx.
func (c *recentRounds) watch(ctx context.Context, from uint64) <-chan Beacon {
	out := make(chan Beacon)
	go func() {
		defer close(out)
		next := max(from, 1)
		for {
			c.mu.Lock()
			b, ok := c.rounds[next]
			changed := c.changed
			c.mu.Unlock()
			if ok {
				select {
				case out <- cloneBeacon(b):
					next++
					continue
				case <-ctx.Done():
					return
				}
			}
			now := c.clock.Now()
			left := c.deadline(next).Sub(now)
			if left <= 0 {
				next = c.skip(next, now)
				continue
			}
			select {
			case <-changed:
			case <-c.clock.After(left):
			case <-ctx.Done():
				return
			}
		}
	}()
	return out
}

// skip returns the round a watcher waits for after giving up on next: the
// first held round after it, or else the first round whose deadline has
// not passed, whichever comes first. Every round in between was given up.
func (c *recentRounds) skip(next uint64, now time.Time) uint64 {
	open := c.info.RoundAt(now.Add(-c.grace)) + 1
	if open <= next {
		open = next + 1
	}
	c.mu.Lock()
	defer c.mu.Unlock()
	for r := range c.rounds {
		if r > next && r < open {
			open = r
		}
	}
	return open
}
