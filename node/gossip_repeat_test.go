package node_test

import (
	"context"
	"testing"
	"time"

	"github.com/libp2p/go-libp2p/core/peer"

	"github.com/aropeer/aropeer/node"
	"github.com/aropeer/aropeer/wire"
)

// TestRepeatedMessages: on a topic that repeats its messages (manifests,
// work reports), publishing the same envelope again reaches a subscriber
// that missed the first: an edge whose first announcements went out
// before it had a keeper to hear them is still heard later.
func TestRepeatedMessages(t *testing.T) {
	ctx, cancel := context.WithTimeout(context.Background(), 30*time.Second)
	defer cancel()
	tn := startNetwork(t, ctx, 0, 2)
	a, b := tn.edges[0], tn.edges[1]
	if err := a.Host().Connect(ctx, peer.AddrInfo{ID: b.Host().ID(), Addrs: b.Host().Addrs()}); err != nil {
		t.Fatal(err)
	}
	domain := wire.Domain{Name: "aro-test", PayloadType: "/aro/test"}
	spec := node.TopicSpec{Name: "/aro/test/repeats", Domain: domain, Repeats: true}
	ta, err := a.Gossip().Join(spec)
	if err != nil {
		t.Fatal(err)
	}
	tb, err := b.Gossip().Join(spec)
	if err != nil {
		t.Fatal(err)
	}
	env, err := wire.Seal(a.Host().Peerstore().PrivKey(a.Host().ID()), domain, []byte("the same announcement"))
	if err != nil {
		t.Fatal(err)
	}
	// Nobody listens yet: the first publication reaches no one.
	if err := ta.Publish(ctx, env); err != nil {
		t.Fatal(err)
	}
	sub, err := tb.Subscribe()
	if err != nil {
		t.Fatal(err)
	}
	defer sub.Cancel()
	got := make(chan node.Message, 1)
	go func() {
		if m, err := sub.Next(ctx); err == nil {
			got <- m
		}
	}()
	// Publish the same bytes again until the subscriber has them.
	for {
		if err := ta.Publish(ctx, env); err != nil {
			t.Fatal(err)
		}
		select {
		case m := <-got:
			if string(m.Payload) != "the same announcement" || m.Signer != a.Host().ID() {
				t.Fatalf("got %q from %s", m.Payload, m.Signer)
			}
			return
		case <-time.After(200 * time.Millisecond):
		case <-ctx.Done():
			t.Fatal("the repeated message never reached the subscriber")
		}
	}
}
