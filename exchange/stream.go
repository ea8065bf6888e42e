package exchange

import (
	"context"
	"time"

	"github.com/libp2p/go-libp2p/core/network"

	"github.com/aropeer/aropeer/wire"
)

// ServiceName is the resource manager service of the protocol's streams.
const ServiceName = "aro.receipts"

// watch resets s when ctx, which must have a deadline, ends: that stops
// reads and writes on streams that ignore deadlines (mocknet's do) and
// when ctx is cancelled. It returns the deadline to pass to every read and
// write. done ends the watch and, if the reset began, waits for it, so no
// goroutine outlives the caller.
func watch(ctx context.Context, s network.Stream) (deadline time.Time, done func()) {
	deadline, _ = ctx.Deadline()
	return deadline, wire.ResetOnDone(ctx, s)
}

// attach sets the service of s, so the resource manager accounts for the
// protocol's streams, and reserves n bytes for what s reads; release gives
// them back.
func attach(s network.Stream, n int) (release func(), err error) {
	if err := s.Scope().SetService(ServiceName); err != nil {
		return nil, err
	}
	return reserve(s, n)
}

// reserve reserves n bytes for s, so the resource manager can refuse
// streams under memory pressure; release gives them back.
func reserve(s network.Stream, n int) (release func(), err error) {
	if err := s.Scope().ReserveMemory(n, network.ReservationPriorityAlways); err != nil {
		return nil, err
	}
	return func() { s.Scope().ReleaseMemory(n) }, nil
}
