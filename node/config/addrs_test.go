package config_test

import (
	"net/netip"
	"testing"

	"github.com/libp2p/go-libp2p/core/peer"

	"github.com/aropeer/aropeer/node/config"
)

func TestAddressAccessors(t *testing.T) {
	c := config.Default()
	c.Bootstrap = []string{
		"/ip4/203.0.113.7/tcp/4001/p2p/" + testPeer,
		"/ip4/203.0.113.7/udp/4001/quic-v1/p2p/" + testPeer,
	}
	c.Deny = []string{testPeer, "10.1.2.3/8"}
	if err := c.Validate(); err != nil {
		t.Fatal(err)
	}

	listen, err := c.ListenAddrs()
	if err != nil || len(listen) != 2 || listen[0].String() != "/ip4/0.0.0.0/tcp/4001" {
		t.Errorf("ListenAddrs = %v, %v", listen, err)
	}
	infos, err := c.BootstrapPeers()
	if err != nil || len(infos) != 1 || len(infos[0].Addrs) != 2 || infos[0].ID.String() != testPeer {
		t.Errorf("BootstrapPeers = %v, %v; want one peer with two addresses", infos, err)
	}
	deny, err := c.DenyList()
	want, _ := peer.Decode(testPeer)
	if err != nil || len(deny.Peers) != 1 || deny.Peers[0] != want ||
		len(deny.Prefixes) != 1 || deny.Prefixes[0] != netip.MustParsePrefix("10.0.0.0/8") {
		t.Errorf("DenyList = %+v, %v", deny, err)
	}
}
