package node_test

import (
	"bytes"
	"context"
	"encoding/binary"
	"testing"
	"time"

	"github.com/libp2p/go-libp2p/core/peer"

	"github.com/aropeer/aropeer/beacon"
	"github.com/aropeer/aropeer/node"
	"github.com/aropeer/aropeer/node/config"
	"github.com/aropeer/aropeer/wire"
)

// TestBeaconFromPeers: a node serves the rounds it verified on
// /aro/beacon/1.0.0, and an edge cut off from the network for longer
// than gossip keeps its history gets the rounds it missed from its
// peers once it is back.
func TestBeaconFromPeers(t *testing.T) {
	ctx, cancel := context.WithTimeout(context.Background(), 2*time.Minute)
	defer cancel()
	tn := startNetwork(t, ctx, 1, 1, func(i int, _ []peer.ID, cfg *config.Config, _ *[]node.Option) {
		cfg.Beacon.Local = i == 0
	})
	signer := beacon.DevnetSigner()
	info := signer.Info()
	edge := tn.edges[0]
	edgeHost := edge.Host()

	watch := tn.bootstrap.Beacon().Watch(ctx)
	first := <-watch

	// The protocol itself: a past round, a round to come, a bad question.
	asker := genPeer(t, tn.mn)
	if err := tn.mn.LinkAll(); err != nil {
		t.Fatal(err)
	}
	ask := func(question []byte) ([]byte, error) {
		s, err := asker.NewStream(ctx, tn.bootstrap.Host().ID(), node.BeaconProtocol)
		if err != nil {
			t.Fatal(err)
		}
		defer s.Close()
		if err := wire.WriteFrame(s, question, time.Now().Add(5*time.Second)); err != nil {
			t.Fatal(err)
		}
		return wire.ReadFrame(s, beacon.MaxGossipSize, time.Now().Add(5*time.Second))
	}
	if err := asker.Connect(ctx, peer.AddrInfo{ID: tn.bootstrap.Host().ID(), Addrs: tn.bootstrap.Host().Addrs()}); err != nil {
		t.Fatal(err)
	}
	data, err := ask(binary.BigEndian.AppendUint64(nil, first.Round))
	if err != nil {
		t.Fatalf("ask for round %d: %v", first.Round, err)
	}
	got, err := beacon.Decode(data)
	if err != nil {
		t.Fatal(err)
	}
	want, err := signer.Sign(first.Round)
	if err != nil {
		t.Fatal(err)
	}
	if got.Round != first.Round || !bytes.Equal(got.Signature, want.Signature) {
		t.Fatalf("asked for round %d, got round %d with another signature", first.Round, got.Round)
	}
	if data, err := ask(binary.BigEndian.AppendUint64(nil, first.Round+1000)); err != nil || len(data) != 0 {
		t.Errorf("a round to come: %d bytes, %v; want an empty answer", len(data), err)
	}
	if _, err := ask([]byte{1, 2, 3}); err == nil {
		t.Error("a question of 3 bytes was answered; want the stream reset")
	}

	// The edge goes away for longer than gossip's history (5 heartbeats
	// of a second), and comes back.
	cut := func(link bool) {
		for _, n := range tn.nodes {
			if n == edge {
				continue
			}
			if link {
				if _, err := tn.mn.LinkPeers(edgeHost.ID(), n.Host().ID()); err != nil {
					t.Fatal(err)
				}
				continue
			}
			_ = tn.mn.UnlinkPeers(edgeHost.ID(), n.Host().ID())
			_ = tn.mn.DisconnectPeers(edgeHost.ID(), n.Host().ID())
		}
	}
	away := info.RoundAt(time.Now()) + 1
	cut(false)
	for b := range watch {
		if b.Round >= away+8 {
			break
		}
	}
	cut(true)
	if err := edgeHost.Connect(ctx, peer.AddrInfo{ID: tn.bootstrap.Host().ID(), Addrs: tn.bootstrap.Host().Addrs()}); err != nil {
		t.Fatal(err)
	}
	gctx, gcancel := context.WithTimeout(ctx, 10*time.Second)
	defer gcancel()
	missed, err := edge.Beacon().Get(gctx, away+1)
	if err != nil {
		t.Fatalf("the edge could not get round %d, which it missed: %v", away+1, err)
	}
	want, err = signer.Sign(away + 1)
	if err != nil {
		t.Fatal(err)
	}
	if !bytes.Equal(missed.Signature, want.Signature) {
		t.Fatalf("round %d: not the beacon's signature", away+1)
	}
}
