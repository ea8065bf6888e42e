package node

import "github.com/aropeer/aropeer/beacon"

// Clock is the node's source of time, injected so that a simulation can
// run many nodes on virtual or accelerated time. It is the beacon's clock,
// which the node passes down to its services.
type Clock = beacon.Clock

// WithClock sets the node's clock; the default is the system clock.
func WithClock(c Clock) Option {
	return func(n *Node) error { n.clock = c; return nil }
}
