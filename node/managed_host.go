package node

import (
	"fmt"
	"sync"

	coreconnmgr "github.com/libp2p/go-libp2p/core/connmgr"
	"github.com/libp2p/go-libp2p/core/host"
	"github.com/libp2p/go-libp2p/p2p/net/connmgr"

	"github.com/aropeer/aropeer/node/config"
)

// Managed gives h, a host built without a connection manager (mocknet
// gives its hosts none), the one a daemon's host has: it trims the
// node's connections from c's high watermark down to its low one,
// sparing those the node protects. Simulations and tests run their nodes
// on it, or every keeper of a large network would keep a connection to
// every edge that ever reached it, as no real keeper does. Closing the
// host closes the manager.
func Managed(h host.Host, c config.ConnMgr) (host.Host, error) {
	cm, err := connmgr.NewConnManager(c.Low, c.High, connmgr.WithGracePeriod(c.Grace.Duration))
	if err != nil {
		return nil, fmt.Errorf("node: connection manager: %w", err)
	}
	h.Network().Notify(cm.Notifee())
	return &managedHost{Host: h, cm: cm}, nil
}

type managedHost struct {
	host.Host
	cm    *connmgr.BasicConnMgr
	close sync.Once
}

func (h *managedHost) ConnManager() coreconnmgr.ConnManager { return h.cm }

func (h *managedHost) Close() error {
	h.close.Do(func() { _ = h.cm.Close() })
	return h.Host.Close()
}
