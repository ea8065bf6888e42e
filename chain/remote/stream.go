package remote

import "github.com/libp2p/go-libp2p/core/network"

// reserve accounts n bytes held for s to the resource manager, which may
// refuse them under memory pressure. The returned release gives them back.
func reserve(s network.Stream, n int) (release func(), err error) {
	if err := s.Scope().ReserveMemory(n, network.ReservationPriorityAlways); err != nil {
		return nil, err
	}
	return func() { s.Scope().ReleaseMemory(n) }, nil
}
