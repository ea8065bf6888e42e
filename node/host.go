package node

import (
	"fmt"
	"net"
	"time"

	"github.com/libp2p/go-libp2p"
	"github.com/libp2p/go-libp2p/core/crypto"
	"github.com/libp2p/go-libp2p/core/host"
	"github.com/libp2p/go-libp2p/core/network"
	"github.com/libp2p/go-libp2p/core/peer"
	"github.com/libp2p/go-libp2p/p2p/host/autorelay"
	rcmgr "github.com/libp2p/go-libp2p/p2p/host/resource-manager"
	"github.com/libp2p/go-libp2p/p2p/net/conngater"
	"github.com/libp2p/go-libp2p/p2p/net/connmgr"
	noise "github.com/libp2p/go-libp2p/p2p/security/noise"
	libp2ptls "github.com/libp2p/go-libp2p/p2p/security/tls"
	quic "github.com/libp2p/go-libp2p/p2p/transport/quic"
	"github.com/libp2p/go-libp2p/p2p/transport/tcp"
	ma "github.com/multiformats/go-multiaddr"
	"github.com/prometheus/client_golang/prometheus"
)

// hostParams is what the libp2p host is built from, taken out of the
// config so that the host code does not depend on its layout.
type hostParams struct {
	key       crypto.PrivKey
	listen    []ma.Multiaddr
	announce  []ma.Multiaddr
	public    bool // keeper or bootstrap: serves AutoNAT and relay
	bootstrap []peer.AddrInfo
	limits    limits
	connLow   int
	connHigh  int
	grace     time.Duration
	denyPeers []peer.ID
	denyNets  []*net.IPNet
	userAgent string
	registry  prometheus.Registerer // nil disables libp2p's metrics
	extra     []libp2p.Option       // simulated transports and the like
}

// limits are the resource manager's explicit limits.
type limits struct {
	memory          int64
	systemConns     int
	systemStreams   int
	peerConns       int
	peerStreams     int
	protocolStreams int
}

func newHost(p hostParams) (host.Host, error) {
	rm, err := newResourceManager(p.limits)
	if err != nil {
		return nil, err
	}
	cm, err := connmgr.NewConnManager(p.connLow, p.connHigh, connmgr.WithGracePeriod(p.grace))
	if err != nil {
		return nil, fmt.Errorf("node: connection manager: %w", err)
	}
	gater, err := newGater(p.denyPeers, p.denyNets)
	if err != nil {
		return nil, err
	}
	opts := []libp2p.Option{
		libp2p.Identity(p.key),
		libp2p.ListenAddrs(p.listen...),
		libp2p.Transport(tcp.NewTCPTransport),
		libp2p.Transport(quic.NewTransport),
		libp2p.Security(noise.ID, noise.New),
		libp2p.Security(libp2ptls.ID, libp2ptls.New),
		libp2p.DefaultMuxers,
		libp2p.ResourceManager(rm),
		libp2p.ConnectionManager(cm),
		libp2p.ConnectionGater(gater),
		libp2p.Ping(true),
		libp2p.UserAgent(p.userAgent),
	}
	if len(p.announce) > 0 {
		announce := p.announce
		opts = append(opts, libp2p.AddrsFactory(func(addrs []ma.Multiaddr) []ma.Multiaddr {
			return append(addrs, announce...)
		}))
	}
	if p.registry != nil {
		opts = append(opts, libp2p.PrometheusRegisterer(p.registry))
	} else {
		opts = append(opts, libp2p.DisableMetrics())
	}
	if p.public {
		// Public roles help NATed edges: they tell them how they are seen
		// (AutoNAT) and relay for them until hole punching succeeds.
		opts = append(opts, libp2p.EnableNATService(), libp2p.EnableRelayService())
	} else {
		opts = append(opts, libp2p.EnableRelay(), libp2p.EnableHolePunching())
		if len(p.bootstrap) > 0 {
			opts = append(opts, libp2p.EnableAutoRelayWithStaticRelays(p.bootstrap, autorelay.WithNumRelays(1)))
		}
	}
	opts = append(opts, p.extra...)
	h, err := libp2p.New(opts...)
	if err != nil {
		return nil, fmt.Errorf("node: start libp2p host: %w", err)
	}
	return h, nil
}

func newResourceManager(l limits) (network.ResourceManager, error) {
	defaults := rcmgr.DefaultLimits
	libp2p.SetDefaultServiceLimits(&defaults)
	scaled := defaults.Scale(l.memory, l.systemConns*2)
	explicit := rcmgr.PartialLimitConfig{
		System: rcmgr.ResourceLimits{
			Conns:   rcmgr.LimitVal(l.systemConns),
			Streams: rcmgr.LimitVal(l.systemStreams),
			Memory:  rcmgr.LimitVal64(l.memory),
		},
		PeerDefault: rcmgr.ResourceLimits{
			Conns:   rcmgr.LimitVal(l.peerConns),
			Streams: rcmgr.LimitVal(l.peerStreams),
		},
		ProtocolDefault: rcmgr.ResourceLimits{
			Streams: rcmgr.LimitVal(l.protocolStreams),
		},
	}
	rm, err := rcmgr.NewResourceManager(rcmgr.NewFixedLimiter(explicit.Build(scaled)))
	if err != nil {
		return nil, fmt.Errorf("node: resource manager: %w", err)
	}
	return rm, nil
}

func newGater(peers []peer.ID, nets []*net.IPNet) (*conngater.BasicConnectionGater, error) {
	g, err := conngater.NewBasicConnectionGater(nil)
	if err != nil {
		return nil, fmt.Errorf("node: connection gater: %w", err)
	}
	for _, p := range peers {
		if err := g.BlockPeer(p); err != nil {
			return nil, fmt.Errorf("node: deny peer %s: %w", p, err)
		}
	}
	for _, n := range nets {
		if err := g.BlockSubnet(n); err != nil {
			return nil, fmt.Errorf("node: deny %s: %w", n, err)
		}
	}
	return g, nil
}
