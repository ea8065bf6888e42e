package liveness

import (
	"context"

	"github.com/libp2p/go-libp2p/core/network"
)

// resetOnDone resets s when ctx ends, so cancellation stops a read or write
// that stream deadlines would not (mocknet's streams ignore deadlines
// altogether). The returned stop ends the watch and, if the reset already
// began, waits for it, so no goroutine outlives the caller.
func resetOnDone(ctx context.Context, s network.Stream) (stop func()) {
	done := make(chan struct{})
	stopWatch := context.AfterFunc(ctx, func() {
		_ = s.Reset()
		close(done)
	})
	return func() {
		if !stopWatch() {
			<-done
		}
	}
}

// reserve attaches s to the liveness service and reserves memory for one
// heartbeat frame, as go-libp2p's ping does, so the resource manager
// accounts for liveness streams and can refuse them under pressure. The
// returned release gives the memory back.
func reserve(s network.Stream) (release func(), err error) {
	if err := s.Scope().SetService(ServiceName); err != nil {
		return nil, err
	}
	if err := s.Scope().ReserveMemory(MaxHeartbeatSize, network.ReservationPriorityAlways); err != nil {
		return nil, err
	}
	return func() { s.Scope().ReleaseMemory(MaxHeartbeatSize) }, nil
}
