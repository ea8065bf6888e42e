package node

import "time"

// Clock is the node's source of time, injected so that a simulation can
// run many nodes on virtual or accelerated time.
type Clock interface {
	Now() time.Time
	After(d time.Duration) <-chan time.Time
}

type systemClock struct{}

func (systemClock) Now() time.Time                         { return time.Now() }
func (systemClock) After(d time.Duration) <-chan time.Time { return time.After(d) }

// WithClock sets the node's clock; the default is the system clock.
func WithClock(c Clock) Option {
	return func(n *Node) error { n.clock = c; return nil }
}
