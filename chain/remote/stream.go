package remote

import (
	"context"
	"sync"

	"github.com/libp2p/go-libp2p/core/network"
)

// resetOnDone resets s when ctx ends, so a timeout or a stop cuts a read
// or write that stream deadlines would not (mocknet's streams ignore
// deadlines altogether). The returned stop ends the watch and, if the
// reset already began, waits for it, so no goroutine outlives the caller;
// it may be called more than once.
func resetOnDone(ctx context.Context, s network.Stream) (stop func()) {
	done := make(chan struct{})
	stopWatch := context.AfterFunc(ctx, func() {
		_ = s.Reset()
		close(done)
	})
	return sync.OnceFunc(func() {
		if !stopWatch() {
			<-done
		}
	})
}

// reserve accounts n bytes held for s to the resource manager, which may
// refuse them under memory pressure. The returned release gives them back.
func reserve(s network.Stream, n int) (release func(), err error) {
	if err := s.Scope().ReserveMemory(n, network.ReservationPriorityAlways); err != nil {
		return nil, err
	}
	return func() { s.Scope().ReleaseMemory(n) }, nil
}
