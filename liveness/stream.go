package liveness

import "github.com/libp2p/go-libp2p/core/network"

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
