package node

import (
	"cmp"
	"context"
	"encoding/binary"
	"errors"
	"fmt"
	"slices"
	"time"

	"github.com/libp2p/go-libp2p/core/host"
	"github.com/libp2p/go-libp2p/core/network"
	"github.com/libp2p/go-libp2p/core/peer"
	"github.com/libp2p/go-libp2p/core/protocol"

	"github.com/aropeer/aropeer/beacon"
	"github.com/aropeer/aropeer/wire"
)

// BeaconProtocol gives a peer a past round's beacon. Gossip carries a
// round only as it happens, and a node that missed it (a home host back
// from an outage, or one that started late) cannot judge the challenges
// of that round, nor draw the committees of an epoch whose first round it
// missed. The asker sends the round, 8 bytes big-endian, as one frame;
// the answer is one frame holding the beacon in drand's gossip form, or
// an empty frame if the node has not verified that round. The asker
// verifies the beacon as it does any source's.
const BeaconProtocol protocol.ID = "/aro/beacon/1.0.0"

const (
	// beaconAskTimeout bounds one question, both sides.
	beaconAskTimeout = 2 * time.Second
	// beaconAsks is how many peers one Get asks before it gives up.
	beaconAsks = 3
)

// serveBeacons answers BeaconProtocol from the rounds src has verified;
// it never waits for a round, so a question costs a map lookup.
func serveBeacons(h host.Host, src beacon.Source) {
	cached, ok := src.(interface {
		Cached(round uint64) (beacon.Beacon, bool)
	})
	if !ok {
		return
	}
	h.SetStreamHandler(BeaconProtocol, func(s network.Stream) {
		deadline := time.Now().Add(beaconAskTimeout)
		req, err := wire.ReadFrame(s, 8, deadline)
		if err != nil || len(req) != 8 {
			s.Reset()
			return
		}
		var data []byte
		if b, ok := cached.Cached(binary.BigEndian.Uint64(req)); ok {
			data, _ = beacon.Encode(b)
		}
		if err := wire.WriteFrame(s, data, deadline); err != nil {
			s.Reset()
			return
		}
		s.Close()
	})
}

// peerBeacons is the beacon source that asks connected peers for a round
// gossip did not bring: the peers the overlay keeps (an edge's committee,
// a keeper's fellow keepers) first, then the others, each group in ID
// order. It waits a quarter period past a round's time before asking, so
// that a round gossip is about to deliver costs no question. Its Watch
// delivers nothing: the mux asks Get for the rounds its watch lacks.
type peerBeacons struct {
	info  beacon.Info
	host  host.Host
	clock Clock
}

func (p *peerBeacons) Name() string      { return "peers" }
func (p *peerBeacons) Info() beacon.Info { return p.info }

func (p *peerBeacons) Watch(ctx context.Context) <-chan beacon.Beacon {
	ch := make(chan beacon.Beacon)
	context.AfterFunc(ctx, func() { close(ch) })
	return ch
}

func (p *peerBeacons) Get(ctx context.Context, round uint64) (beacon.Beacon, error) {
	if round == 0 {
		return beacon.Beacon{}, fmt.Errorf("%w: round 0 has no beacon", beacon.ErrUnavailable)
	}
	if wait := p.info.TimeOf(round).Add(p.info.Period / 4).Sub(p.clock.Now()); wait > 0 {
		select {
		case <-p.clock.After(wait):
		case <-ctx.Done():
			return beacon.Beacon{}, ctx.Err()
		}
	}
	var errs []error
	for _, id := range p.candidates() {
		b, err := p.ask(ctx, id, round)
		if err == nil {
			return b, nil
		}
		errs = append(errs, fmt.Errorf("%s: %w", id, err))
		if ctx.Err() != nil {
			break
		}
	}
	if len(errs) == 0 {
		errs = append(errs, errors.New("no peer connected"))
	}
	return beacon.Beacon{}, fmt.Errorf("%w: round %d from peers: %w", beacon.ErrUnavailable, round, errors.Join(errs...))
}

// candidates lists the connected peers to ask, best first.
func (p *peerBeacons) candidates() []peer.ID {
	peers := p.host.Network().Peers()
	cm := p.host.ConnManager()
	slices.SortFunc(peers, func(a, b peer.ID) int {
		pa, pb := cm.IsProtected(a, overlayTag), cm.IsProtected(b, overlayTag)
		if pa != pb {
			if pa {
				return -1
			}
			return 1
		}
		return cmp.Compare(a, b)
	})
	return peers[:min(len(peers), beaconAsks)]
}

// ask puts one question to one peer.
func (p *peerBeacons) ask(ctx context.Context, id peer.ID, round uint64) (beacon.Beacon, error) {
	ctx, cancel := context.WithTimeout(ctx, beaconAskTimeout)
	defer cancel()
	s, err := p.host.NewStream(ctx, id, BeaconProtocol)
	if err != nil {
		return beacon.Beacon{}, err
	}
	stop := wire.ResetOnDone(ctx, s)
	defer stop()
	deadline := time.Now().Add(beaconAskTimeout)
	if err := wire.WriteFrame(s, binary.BigEndian.AppendUint64(nil, round), deadline); err != nil {
		s.Reset()
		return beacon.Beacon{}, err
	}
	data, err := wire.ReadFrame(s, beacon.MaxGossipSize, deadline)
	if err != nil {
		s.Reset()
		return beacon.Beacon{}, err
	}
	s.Close()
	if len(data) == 0 {
		return beacon.Beacon{}, errors.New("the peer has not got the round")
	}
	return beacon.Decode(data)
}
