package node

import (
	"context"
	"log/slog"
	"slices"
	"time"

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
// network. So each epoch a keeper connects to every keeper of the epoch,
// and an edge to its committee, the keepers its gossip must reach; the
// connections are kept from the connection manager's trimming for two
// epochs.
type overlay struct {
	host   *routedhost.RoutedHost
	engine *challenge.Engine
	params challenge.Params
	keeper bool
	self   peer.ID
	log    *slog.Logger

	protected map[uint64][]peer.ID
}

func (o *overlay) run(ctx context.Context, feed *beaconFeed) {
	o.protected = make(map[uint64][]peer.ID)
	last := ^uint64(0)
	for b := range feed.Watch(ctx) {
		epoch := o.params.EpochOf(b.Round)
		if epoch == last {
			continue
		}
		last = epoch
		o.connect(ctx, epoch)
	}
}

// connect dials the peers this node's gossip must reach in epoch.
func (o *overlay) connect(ctx context.Context, epoch uint64) {
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
		dctx, cancel := context.WithTimeout(ctx, overlayDialTimeout)
		if err := o.host.Connect(dctx, peer.AddrInfo{ID: p}); err != nil {
			o.log.Debug("overlay: dial failed", "peer", p, "err", err)
		}
		cancel()
	}
	o.protected[epoch] = peers
	for old, ps := range o.protected {
		if old+2 <= epoch {
			for _, p := range ps {
				if !o.stillProtected(p, old) {
					cm.Unprotect(p, overlayTag)
				}
			}
			delete(o.protected, old)
		}
	}
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
