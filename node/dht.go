package node

import (
	"context"
	"fmt"
	"log/slog"
	"net"
	"time"

	"github.com/ipfs/go-cid"
	dht "github.com/libp2p/go-libp2p-kad-dht"
	"github.com/libp2p/go-libp2p-kbucket/peerdiversity"
	"github.com/libp2p/go-libp2p/core/host"
	"github.com/libp2p/go-libp2p/core/network"
	"github.com/libp2p/go-libp2p/core/peer"
	manet "github.com/multiformats/go-multiaddr/net"
	"github.com/multiformats/go-multihash"
)

// ProtocolPrefix keeps aropeer's DHT apart from the public IPFS DHT.
const ProtocolPrefix = "/aro"

// dhtProtocol is the protocol of the DHT's streams, kad-dht's under
// ProtocolPrefix.
const dhtProtocol = ProtocolPrefix + "/kad/1.0.0"

// Diversity limits of the routing table, as the IPFS DHT sets them: at most
// two peers of one IP group per bucket and three in the whole table, so no
// single network can fill our table.
const (
	diversityPerCpl   = 2
	diversityPerTable = 3
)

func newDHT(h host.Host, mode dht.ModeOpt, trusted []*net.IPNet, network string) (*dht.IpfsDHT, error) {
	filter := &trustedDiversityFilter{
		PeerIPGroupFilter: dht.NewRTPeerDiversityFilter(h, diversityPerCpl, diversityPerTable),
		h:                 h,
		trusted:           trusted,
	}
	opts := []dht.Option{
		dht.ProtocolPrefix(ProtocolPrefix),
		dht.Mode(mode),
		dht.RoutingTablePeerDiversityFilter(filter),
		dht.NamespacedValidator(manifestNamespace, manifestValidator{network: network}),
	}
	if mode == dht.ModeClient {
		// A client's routing table is the servers it is connected to, its
		// committee and bootstrap peers, enough to start a lookup from.
		// kad-dht refreshes a table of ten peers or fewer, as in any
		// network of few keepers, every two minutes: each edge would dial
		// every keeper near a random key and the overlay leave them again.
		opts = append(opts, dht.DisableAutoRefresh())
	}
	d, err := dht.New(h, opts...)
	if err != nil {
		return nil, fmt.Errorf("node: start DHT: %w", err)
	}
	return d, nil
}

// trustedDiversityFilter lets peers whose every connection comes from a
// trusted network into the routing table regardless of IP group: on a
// devnet every peer is on loopback, and diversity means nothing there.
type trustedDiversityFilter struct {
	peerdiversity.PeerIPGroupFilter
	h       host.Host
	trusted []*net.IPNet
}

func (f *trustedDiversityFilter) Allow(g peerdiversity.PeerGroupInfo) bool {
	if f.allTrusted(g.Id) {
		return true
	}
	return f.PeerIPGroupFilter.Allow(g)
}

func (f *trustedDiversityFilter) allTrusted(p peer.ID) bool {
	conns := f.h.Network().ConnsToPeer(p)
	if len(conns) == 0 || len(f.trusted) == 0 {
		return false
	}
	for _, c := range conns {
		ip, err := manet.ToIP(c.RemoteMultiaddr())
		if err != nil || !inNets(ip, f.trusted) {
			return false
		}
	}
	return true
}

func inNets(ip net.IP, nets []*net.IPNet) bool {
	for _, n := range nets {
		if n.Contains(ip) {
			return true
		}
	}
	return false
}

// ResourceKey is the DHT key under which edges offering a resource kind on
// a network advertise themselves: the CID of "aro/<network>/<kind>".
func ResourceKey(network, kind string) cid.Cid {
	mh, err := multihash.Sum([]byte("aro/"+network+"/"+kind), multihash.SHA2_256, -1)
	if err != nil {
		// SHA2-256 is always registered; failure here is a broken build.
		panic(fmt.Sprintf("node: multihash: %v", err))
	}
	return cid.NewCidV1(cid.Raw, mh)
}

// bootstrapper brings the node into the network through its bootstrap
// peers: while it is connected to no peer of its routing table, it dials
// each bootstrap peer with exponential backoff until one answers. Once in,
// it does not hold on to them: a bootstrap node of a network larger than
// its connection manager's high watermark trims most of the nodes that
// joined through it, and each dialling it again at once would only have
// it trim again, a thousand connections at a time. An unreachable
// bootstrap peer is never fatal.
type bootstrapper struct {
	h     host.Host
	d     *dht.IpfsDHT
	peers []peer.AddrInfo
	log   *slog.Logger
	clock Clock

	minBackoff, maxBackoff time.Duration
	checkEvery             time.Duration
}

func (b *bootstrapper) run(ctx context.Context) {
	if len(b.peers) == 0 {
		return
	}
	backoff := make(map[peer.ID]time.Duration, len(b.peers))
	next := make(map[peer.ID]time.Time, len(b.peers))
	refreshed := false
	for {
		now := b.clock.Now()
		connected := 0
		for _, p := range b.peers {
			if p.ID == b.h.ID() {
				continue
			}
			if b.h.Network().Connectedness(p.ID) == network.Connected {
				connected++
				backoff[p.ID] = 0
				continue
			}
			if now.Before(next[p.ID]) || b.joined() {
				continue
			}
			dctx, cancel := context.WithTimeout(ctx, 10*time.Second)
			err := b.h.Connect(dctx, p)
			cancel()
			if ctx.Err() != nil {
				return
			}
			if err == nil {
				b.log.Info("connected to bootstrap peer", "peer", p.ID)
				connected++
				backoff[p.ID] = 0
				refreshed = false
				continue
			}
			d := backoff[p.ID]*2 + b.minBackoff
			if d > b.maxBackoff {
				d = b.maxBackoff
			}
			backoff[p.ID] = d
			next[p.ID] = now.Add(d)
			b.log.Warn("bootstrap peer unreachable; will retry", "peer", p.ID, "addrs", p.Addrs, "retry_in", d.Round(time.Second), "err", err)
		}
		if connected > 0 && !refreshed {
			// Fill the routing table through the peers we reached.
			b.d.RefreshRoutingTable()
			refreshed = true
		}
		select {
		case <-ctx.Done():
			return
		case <-b.clock.After(b.checkEvery):
		}
	}
}

// joined tells whether the node is connected to a peer of its routing
// table, through which it reaches the rest of the network.
func (b *bootstrapper) joined() bool {
	for _, p := range b.d.RoutingTable().ListPeers() {
		if b.h.Network().Connectedness(p) == network.Connected {
			return true
		}
	}
	return false
}

// advertiser keeps provider records for the resource kinds an edge offers.
// Records expire, and the first attempt fails while the routing table is
// empty, so it provides again on a fixed schedule, sooner after a failure.
type advertiser struct {
	d     *dht.IpfsDHT
	keys  map[string]cid.Cid // kind → key
	log   *slog.Logger
	clock Clock
	every time.Duration
	retry time.Duration
}

func (a *advertiser) run(ctx context.Context) {
	if len(a.keys) == 0 {
		return
	}
	for {
		wait := a.every
		for kind, key := range a.keys {
			if a.d.RoutingTable().Size() == 0 {
				wait = a.retry
				break
			}
			pctx, cancel := context.WithTimeout(ctx, time.Minute)
			err := a.d.Provide(pctx, key, true)
			cancel()
			if ctx.Err() != nil {
				return
			}
			if err != nil {
				a.log.Warn("advertising resource failed; will retry", "kind", kind, "err", err)
				wait = a.retry
				continue
			}
			a.log.Debug("advertised resource", "kind", kind, "key", key)
		}
		select {
		case <-ctx.Done():
			return
		case <-a.clock.After(wait):
		}
	}
}

// FindProviders returns the edges that advertise kind on the network,
// until the lookup completes or ctx ends.
func FindProviders(ctx context.Context, d *dht.IpfsDHT, network, kind string) []peer.AddrInfo {
	var out []peer.AddrInfo
	for p := range d.FindProvidersAsync(ctx, ResourceKey(network, kind), 0) {
		out = append(out, p)
	}
	return out
}
