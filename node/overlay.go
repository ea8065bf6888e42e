package node

import (
	"context"
	"log/slog"
	"slices"
	"sync"
	"time"

	pubsub "github.com/libp2p/go-libp2p-pubsub"
	"github.com/libp2p/go-libp2p/core/network"
	"github.com/libp2p/go-libp2p/core/peer"
	routedhost "github.com/libp2p/go-libp2p/p2p/host/routed"

	"github.com/aropeer/aropeer/challenge"
)

// overlayTag protects the connections the keepers' gossip travels on.
const overlayTag = "aro-overlay"

// overlayDialTimeout bounds one dial, DHT lookup included.
const overlayDialTimeout = 10 * time.Second

// overlay keeps the connections the keepers' topics travel on. Edges are
// leaves: they publish manifests and reports but neither receive nor
// relay the network's challenges, receipts, manifests and reports, which
// would cost every home host a signature check for every message of the
// network. So a keeper stays connected to every keeper of the epoch, and
// an edge to its committee, the keepers its gossip must reach: each round
// it dials those it lost (a home host back from an outage has lost them
// all, and with them its beacons), and the connections are kept from the
// connection manager's trimming (kept), as are a keeper's to the edges it
// challenges. An edge keeps no other keeper: one it reached for a DHT put
// or by peer exchange, or one of its committee of the epoch before, it
// leaves once only gossip runs on the connection. Each costs a home host
// an entry in its NAT's table and its share of every beacon's gossip, and
// a simulation of a thousand edges a third of its memory.
type overlay struct {
	host   *routedhost.RoutedHost
	engine *challenge.Engine
	params challenge.Params
	keeper bool
	self   peer.ID
	log    *slog.Logger

	protected map[uint64][]peer.ID

	// Dials run on their own: the beacon feed waits for a watcher that
	// does not keep up. dialing holds the peers being dialled.
	dials   sync.WaitGroup
	mu      sync.Mutex
	dialing map[peer.ID]bool
}

func (o *overlay) run(ctx context.Context, feed *beaconFeed) {
	o.protected = make(map[uint64][]peer.ID)
	o.dialing = make(map[peer.ID]bool)
	defer o.dials.Wait()
	for b := range feed.Watch(ctx) {
		o.connect(ctx, b.Round)
	}
}

// dial connects to p in the background, unless a dial to it is running.
func (o *overlay) dial(ctx context.Context, p peer.ID) {
	o.mu.Lock()
	defer o.mu.Unlock()
	if o.dialing[p] {
		return
	}
	o.dialing[p] = true
	o.dials.Go(func() {
		dctx, cancel := context.WithTimeout(ctx, overlayDialTimeout)
		defer cancel()
		if err := o.host.Connect(dctx, peer.AddrInfo{ID: p}); err != nil {
			o.log.Debug("overlay: dial failed", "peer", p, "err", err)
		}
		o.mu.Lock()
		delete(o.dialing, p)
		o.mu.Unlock()
	})
}

// connect dials the peers this node's gossip must reach in round's epoch
// that it is not connected to.
func (o *overlay) connect(ctx context.Context, round uint64) {
	epoch := o.params.EpochOf(round)
	var peers []peer.ID
	var err error
	if o.keeper {
		peers, err = o.engine.KeepersOf(ctx, epoch)
	} else {
		peers, err = o.engine.CommitteeOf(ctx, epoch, o.self)
	}
	if err != nil {
		o.log.Debug("overlay: no peers for the epoch", "epoch", epoch, "err", err)
		return
	}
	cm := o.host.ConnManager()
	for _, p := range peers {
		if p == o.self {
			continue
		}
		cm.Protect(p, overlayTag)
		if o.host.Network().Connectedness(p) == network.Connected {
			continue
		}
		o.dial(ctx, p)
	}
	if o.keeper {
		// The edges it challenges dial it; trimming them would cut its
		// challenges in the middle.
		edges, err := o.engine.EdgesOf(ctx, epoch, o.self)
		if err != nil {
			o.log.Debug("overlay: no edges for the epoch", "epoch", epoch, "err", err)
		}
		for _, p := range edges {
			cm.Protect(p, overlayTag)
		}
		peers = append(slices.Clip(peers), edges...)
	}
	o.protected[epoch] = peers
	for old, ps := range o.protected {
		if o.expired(old, round) {
			for _, p := range ps {
				if !o.stillProtected(p, old) {
					cm.Unprotect(p, overlayTag)
				}
			}
			delete(o.protected, old)
		}
	}
	if !o.keeper {
		o.leaveOthers(ctx, epoch, peers)
	}
}

// expired tells whether the peers of epoch old are no longer needed in
// round. A keeper keeps them for the epoch after: it still hears the
// reports of old from the edges it challenged in it. An edge keeps its
// committee of old only until the challenges of old's last round have
// run out their window of retries; its reports of old go out by gossip,
// and a delivery still running keeps its keeper until it ends (idle).
func (o *overlay) expired(old, round uint64) bool {
	if o.keeper {
		return old+2 <= o.params.EpochOf(round)
	}
	return round >= o.params.FirstRound(old+1)+o.params.Window
}

// stillProtected tells whether an epoch after old still needs p.
func (o *overlay) stillProtected(p peer.ID, old uint64) bool {
	for e, ps := range o.protected {
		if e > old && slices.Contains(ps, p) {
			return true
		}
	}
	return false
}

// leaveOthers closes an edge's connections to the keepers of epoch
// outside committee that the overlay does not protect, once they are
// idle. Gossipsub protects its mesh peers too, but the mesh an edge needs
// is the one its committee and the bootstrap peers give it.
func (o *overlay) leaveOthers(ctx context.Context, epoch uint64, committee []peer.ID) {
	keepers, err := o.engine.KeepersOf(ctx, epoch)
	if err != nil {
		return
	}
	cm := o.host.ConnManager()
	for _, k := range keepers {
		if k == o.self || slices.Contains(committee, k) || cm.IsProtected(k, overlayTag) || !o.idle(k) {
			continue
		}
		if err := o.host.Network().ClosePeer(k); err != nil {
			o.log.Debug("overlay: leave a keeper", "peer", k, "err", err)
		}
	}
}

// idle tells whether every stream to p is gossip or the DHT's, which
// kad-dht keeps open for its next request: no challenge or delivery runs
// on it, nor a stream still choosing its protocol. A DHT request cut
// short fails for this peer only, and an edge's are rare: it stores its
// manifest record once an hour, or when it changes. It is false for a
// peer not connected.
func (o *overlay) idle(p peer.ID) bool {
	conns := o.host.Network().ConnsToPeer(p)
	for _, c := range conns {
		for _, s := range c.GetStreams() {
			if id := s.Protocol(); id != dhtProtocol && id != pubsub.FloodSubID && !slices.Contains(pubsub.GossipSubDefaultProtocols, id) {
				return false
			}
		}
	}
	return len(conns) > 0
}
