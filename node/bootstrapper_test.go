package node

import (
	"context"
	"log/slog"
	"net"
	"testing"
	"time"

	dht "github.com/libp2p/go-libp2p-kad-dht"
	"github.com/libp2p/go-libp2p/core/host"
	"github.com/libp2p/go-libp2p/core/network"
	"github.com/libp2p/go-libp2p/core/peer"
	mocknet "github.com/libp2p/go-libp2p/p2p/net/mock"

	"github.com/aropeer/aropeer/beacon"
)

// TestBootstrapperLetsGo: a node dials its bootstrap peer to join; once
// it is connected to another peer of its routing table it does not dial
// the bootstrap peer again when that one drops it, as one over its
// connection manager's high watermark does; and it dials it again once
// it has lost every peer of its routing table.
func TestBootstrapperLetsGo(t *testing.T) {
	ctx, cancel := context.WithTimeout(context.Background(), time.Minute)
	defer cancel()
	mn := mocknet.New()
	defer mn.Close()
	var hosts []host.Host
	for range 3 {
		h, err := mn.GenPeer()
		if err != nil {
			t.Fatal(err)
		}
		hosts = append(hosts, h)
	}
	if err := mn.LinkAll(); err != nil {
		t.Fatal(err)
	}
	boot, keeper, edge := hosts[0], hosts[1], hosts[2]
	all := []*net.IPNet{{IP: net.IPv4zero, Mask: net.CIDRMask(0, 32)}}
	var edgeDHT *dht.IpfsDHT
	for _, h := range hosts {
		mode := dht.ModeServer
		if h == edge {
			mode = dht.ModeClient
		}
		d, err := newDHT(h, mode, all, "devnet")
		if err != nil {
			t.Fatal(err)
		}
		defer d.Close()
		if h == edge {
			edgeDHT = d
		}
	}
	b := &bootstrapper{
		h: edge, d: edgeDHT, peers: []peer.AddrInfo{{ID: boot.ID(), Addrs: boot.Addrs()}},
		log: slog.New(slog.DiscardHandler), clock: beacon.SystemClock(),
		minBackoff: 10 * time.Millisecond, maxBackoff: 50 * time.Millisecond, checkEvery: 10 * time.Millisecond,
	}
	done := make(chan struct{})
	go func() { defer close(done); b.run(ctx) }()
	defer func() { cancel(); <-done }()

	connected := func(p peer.ID) bool { return edge.Network().Connectedness(p) == network.Connected }
	waitFor := func(what string, cond func() bool) {
		t.Helper()
		for !cond() {
			select {
			case <-ctx.Done():
				t.Fatalf("%s: not within the test's minute", what)
			case <-time.After(10 * time.Millisecond):
			}
		}
	}
	inTable := func(p peer.ID) func() bool {
		return func() bool { return edgeDHT.RoutingTable().Find(p) != "" }
	}
	waitFor("the edge joins through the bootstrap peer", func() bool { return connected(boot.ID()) && inTable(boot.ID())() })
	if err := edge.Connect(ctx, peer.AddrInfo{ID: keeper.ID(), Addrs: keeper.Addrs()}); err != nil {
		t.Fatal(err)
	}
	waitFor("the keeper enters the edge's routing table", inTable(keeper.ID()))

	if err := boot.Network().ClosePeer(edge.ID()); err != nil {
		t.Fatal(err)
	}
	waitFor("the bootstrap peer's connection closes", func() bool { return !connected(boot.ID()) })
	time.Sleep(30 * b.checkEvery)
	if connected(boot.ID()) {
		t.Fatal("the edge dialled the bootstrap peer again while connected to the keeper of its routing table")
	}

	if err := edge.Network().ClosePeer(keeper.ID()); err != nil {
		t.Fatal(err)
	}
	waitFor("the edge, alone, dials the bootstrap peer again", func() bool { return connected(boot.ID()) })
}
