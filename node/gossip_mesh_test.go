package node_test

import (
	"context"
	"fmt"
	"testing"
	"time"

	"github.com/libp2p/go-libp2p/core/peer"

	"github.com/aropeer/aropeer/node"
	"github.com/aropeer/aropeer/wire"
)

// TestKeeperMeshIsSmall: keepers, each connected to every other, keep a
// mesh of 1 to 4 of them on their topics, not gossipsub's 5 to 12. Every
// keeper has each message from its publisher's flood; each mesh peer
// sends it again, so the mesh's width is what a keeper pays in copies.
// The flood still reaches every keeper.
func TestKeeperMeshIsSmall(t *testing.T) {
	ctx, cancel := context.WithTimeout(context.Background(), 60*time.Second)
	defer cancel()
	const keepers = 8
	tn := startNetwork(t, ctx, keepers, 0)
	connectAll(t, ctx, tn.keepers)
	spec := node.TopicSpec{Name: "/aro/test/keepers", Domain: testDomain}
	topics := make([]*node.Topic, keepers)
	subs := make([]*node.Subscription, keepers)
	for i, k := range tn.keepers {
		var err error
		if topics[i], err = k.Gossip().Join(spec); err != nil {
			t.Fatal(err)
		}
		if subs[i], err = topics[i].Subscribe(); err != nil {
			t.Fatal(err)
		}
		defer subs[i].Cancel()
	}

	// Meshes form, and are pruned to size, at gossipsub's heartbeats.
	var sizes []int
	for {
		sizes = sizes[:0]
		settled := true
		for _, k := range tn.keepers {
			n := k.Gossip().MeshSizes()[spec.Name]
			sizes = append(sizes, n)
			settled = settled && n >= 1 && n <= 4
		}
		if settled {
			break
		}
		select {
		case <-ctx.Done():
			t.Fatalf("keepers' mesh sizes stayed at %v, want 1 to 4 each", sizes)
		case <-time.After(200 * time.Millisecond):
		}
	}

	key := tn.keepers[0].Host().Peerstore().PrivKey(tn.keepers[0].Host().ID())
	for i := 1; i < keepers; i++ {
		// Each keeper has the publisher's messages, probes sent until it
		// had one, and then the message.
		awaitHearing(t, ctx, subs[i], func(n int) []byte {
			env, err := wire.Seal(key, testDomain, fmt.Appendf(nil, "probe %d for %d", n, i))
			if err != nil {
				t.Fatal(err)
			}
			return env
		}, topics[0])
	}
	env, err := wire.Seal(key, testDomain, []byte("to every keeper"))
	if err != nil {
		t.Fatal(err)
	}
	if err := topics[0].Publish(ctx, env); err != nil {
		t.Fatal(err)
	}
	for i := 1; i < keepers; i++ {
		for {
			m, err := subs[i].Next(ctx)
			if err != nil {
				t.Fatalf("keeper %d never had the message (mesh sizes %v): %v", i, sizes, err)
			}
			if string(m.Payload) == "to every keeper" {
				break
			}
		}
	}
	t.Logf("mesh sizes %v", sizes)
}

// connectAll connects each of nodes to every other.
func connectAll(t *testing.T, ctx context.Context, nodes []*node.Node) {
	t.Helper()
	for i, a := range nodes {
		for _, b := range nodes[i+1:] {
			if err := a.Host().Connect(ctx, peer.AddrInfo{ID: b.Host().ID(), Addrs: b.Host().Addrs()}); err != nil {
				t.Fatal(err)
			}
		}
	}
}
