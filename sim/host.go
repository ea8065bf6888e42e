package sim

import (
	"github.com/libp2p/go-libp2p/core/host"
	"github.com/libp2p/go-libp2p/core/network"
	"github.com/libp2p/go-libp2p/core/peer"
)

// readLockedHost is a mock host whose network tells Connectedness under
// the mock network's read lock, as it lists connections, where mocknet
// takes its write lock. A DHT server asks it of every peer of every
// answer: in a real-time run of a thousand edges that fell behind, the
// bootstrap node's and keepers' DHT servers had 4,600 answers queued
// behind that one lock, and every connection opened or closed waited
// with them.
type readLockedHost struct{ host.Host }

func (h readLockedHost) Network() network.Network { return readLockedNetwork{h.Host.Network()} }

type readLockedNetwork struct{ network.Network }

// Connectedness is mocknet's: connected or not.
func (n readLockedNetwork) Connectedness(p peer.ID) network.Connectedness {
	if len(n.ConnsToPeer(p)) > 0 {
		return network.Connected
	}
	return network.NotConnected
}
