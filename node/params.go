package node

import (
	"net"

	"github.com/aropeer/aropeer/node/config"
)

// hostParams maps the validated config onto what the host is built from.
func (n *Node) hostParams() (hostParams, error) {
	c := n.cfg
	p := hostParams{
		key:       n.key,
		public:    c.HasRole(config.RoleKeeper) || c.HasRole(config.RoleBootstrap),
		connLow:   c.ConnMgr.Low,
		connHigh:  c.ConnMgr.High,
		grace:     c.ConnMgr.Grace.Duration,
		userAgent: "aropeer/" + Version,
		registry:  n.registry,
		extra:     n.hostOptions,
		limits: limits{
			memory:          int64(c.Limits.MemoryMiB) << 20,
			systemConns:     c.Limits.SystemConns,
			systemStreams:   c.Limits.SystemStreams,
			peerConns:       c.Limits.PeerConns,
			peerStreams:     c.Limits.PeerStreams,
			protocolStreams: c.Limits.ProtocolStreams,
		},
	}
	var err error
	if p.listen, err = c.ListenAddrs(); err != nil {
		return p, err
	}
	if p.announce, err = c.AnnounceAddrs(); err != nil {
		return p, err
	}
	if p.bootstrap, err = c.BootstrapPeers(); err != nil {
		return p, err
	}
	deny, err := c.DenyList()
	if err != nil {
		return p, err
	}
	p.denyPeers = deny.Peers
	for _, prefix := range deny.Prefixes {
		p.denyNets = append(p.denyNets, &net.IPNet{
			IP:   prefix.Addr().AsSlice(),
			Mask: net.CIDRMask(prefix.Bits(), prefix.Addr().BitLen()),
		})
	}
	return p, nil
}
