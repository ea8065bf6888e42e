// Package mockhost makes a mock host (go-libp2p's mocknet) behave, where
// aropeer's simulations and network tests need it, as a real one does.
package mockhost

import (
	"context"

	"github.com/libp2p/go-libp2p/core/host"
	"github.com/libp2p/go-libp2p/core/network"
	"github.com/libp2p/go-libp2p/core/peer"
	"github.com/libp2p/go-libp2p/core/protocol"
)

// Wrap returns h, a mock host, made to behave as a real one does: its
// network tells Connectedness under the mock network's read lock, and
// its streams, opened or accepted, are pipelined.
//
// Mocknet tells Connectedness under the lock it lists connections with,
// where it takes its write lock. A DHT server asks it of every peer of
// every answer: in a real-time run of a thousand edges that fell behind,
// the bootstrap node's and keepers' DHT servers had 4,600 answers queued
// behind that one lock, and every connection opened or closed waited
// with them.
func Wrap(h host.Host) host.Host { return wrapped{h} }

type wrapped struct{ host.Host }

func (h wrapped) Network() network.Network { return readLockedNetwork{h.Host.Network()} }

func (h wrapped) NewStream(ctx context.Context, p peer.ID, pids ...protocol.ID) (network.Stream, error) {
	s, err := h.Host.NewStream(ctx, p, pids...)
	if err != nil {
		return nil, err
	}
	return pipeline(s), nil
}

func (h wrapped) SetStreamHandler(pid protocol.ID, handler network.StreamHandler) {
	h.Host.SetStreamHandler(pid, func(s network.Stream) { handler(pipeline(s)) })
}

func (h wrapped) SetStreamHandlerMatch(pid protocol.ID, match func(protocol.ID) bool, handler network.StreamHandler) {
	h.Host.SetStreamHandlerMatch(pid, match, func(s network.Stream) { handler(pipeline(s)) })
}

type readLockedNetwork struct{ network.Network }

// Connectedness is mocknet's: connected or not.
func (n readLockedNetwork) Connectedness(p peer.ID) network.Connectedness {
	if len(n.ConnsToPeer(p)) > 0 {
		return network.Connected
	}
	return network.NotConnected
}
