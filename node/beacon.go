package node

import (
	"context"
	"fmt"
	"sync"

	"github.com/aropeer/aropeer/beacon"
)

// startBeacon builds the node's beacon sources from its config and
// starts them: gossip on drand's topic and the node's peers always,
// drand's HTTP relays when any are configured, and the network's local
// beacon on the one node that runs it. Their rounds meet in a mux that
// verifies and orders them.
func (n *Node) startBeacon(ctx context.Context, wg *sync.WaitGroup) error {
	info := n.network.Beacon
	gossip, err := beacon.NewGossipSource(info, beacon.WithGossipClock(n.clock), beacon.WithGossipLogger(n.baseLog))
	if err != nil {
		return err
	}
	topic, err := n.gossip.JoinRaw(RawTopicSpec{
		Name:     beacon.TopicName(info),
		MaxSize:  beacon.MaxGossipSize,
		Validate: gossip.Validate,
	})
	if err != nil {
		return err
	}
	sub, err := topic.Subscribe()
	if err != nil {
		return err
	}
	// Peers fill the rounds gossip did not bring.
	sources := []beacon.Source{gossip, &peerBeacons{info: info, host: n.host, clock: n.clock}}

	relays := n.cfg.Beacon.Relays
	if len(relays) == 0 {
		relays = n.network.BeaconRelays
	}
	if len(relays) > 0 {
		h, err := beacon.NewHTTPSource(info, relays, beacon.WithHTTPClock(n.clock), beacon.WithHTTPLogger(n.baseLog))
		if err != nil {
			return err
		}
		sources = append(sources, h)
	}

	var local *beacon.Local
	if n.cfg.Beacon.Local {
		if n.network.LocalBeacon == nil {
			return fmt.Errorf("node: network %s has no local beacon", n.network.Name)
		}
		local = beacon.NewLocal(n.network.LocalBeacon(), beacon.WithLocalClock(n.clock), beacon.WithLocalLogger(n.baseLog))
		sources = append(sources, local)
	}

	mux, err := beacon.NewMux(info, sources, beacon.WithMuxClock(n.clock), beacon.WithMuxLogger(n.baseLog))
	if err != nil {
		return err
	}
	for _, c := range mux.Collectors() {
		if err := n.registry.Register(c); err != nil {
			return fmt.Errorf("node: register beacon metrics: %w", err)
		}
	}
	n.beacon = mux
	serveBeacons(n.host, mux)

	run := []func(context.Context){
		func(ctx context.Context) {
			defer sub.Cancel()
			if err := gossip.Run(ctx, rawSubscription{sub}); err != nil && ctx.Err() == nil {
				n.log.Error("beacon gossip stopped", "err", err)
			}
		},
	}
	if local != nil {
		run = append(run, func(ctx context.Context) {
			publish := func(ctx context.Context, b beacon.Beacon) error {
				return gossip.Publish(ctx, topic, b)
			}
			if err := local.Run(ctx, publish); err != nil && ctx.Err() == nil {
				n.log.Error("local beacon stopped", "err", err)
			}
		})
	}
	for _, f := range run {
		wg.Add(1)
		go func() { defer wg.Done(); f(ctx) }()
	}
	n.log.Info("beacon started", "chain", info.HashString(), "sources", len(sources), "local", local != nil)
	return nil
}

// rawSubscription gives the beacon package the raw bytes of each valid
// message, without it knowing the node.
type rawSubscription struct{ sub *Subscription }

func (r rawSubscription) Next(ctx context.Context) ([]byte, error) {
	m, err := r.sub.Next(ctx)
	if err != nil {
		return nil, err
	}
	return m.Payload, nil
}
