package node_test

import (
	"bytes"
	"context"
	"fmt"
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
	spec := node.TopicSpec{Name: "/aro/test/repeats", Domain: testDomain, Repeats: true}
	a, ta, tb := gossipPair(t, ctx, spec)
	env, err := wire.Seal(a.Host().Peerstore().PrivKey(a.Host().ID()), testDomain, []byte("the same announcement"))
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

// TestBurstOfMessages: a burst of messages, such as a keeper's receipts
// of a round, all reach a subscriber that reads none of them until the
// burst is over; gossipsub's queues of 32 dropped the rest for good.
func TestBurstOfMessages(t *testing.T) {
	ctx, cancel := context.WithTimeout(context.Background(), 30*time.Second)
	defer cancel()
	a, ta, tb := gossipPair(t, ctx, node.TopicSpec{Name: "/aro/test/burst", Domain: testDomain})
	sub, err := tb.Subscribe()
	if err != nil {
		t.Fatal(err)
	}
	defer sub.Cancel()
	key := a.Host().Peerstore().PrivKey(a.Host().ID())
	seal := func(format string, i int) []byte {
		env, err := wire.Seal(key, testDomain, fmt.Appendf(nil, format, i))
		if err != nil {
			t.Fatal(err)
		}
		return env
	}
	// Probe until b hears a, or the burst goes to nobody.
	awaitHearing(t, ctx, sub, func(i int) []byte { return seal("probe %d", i) }, ta)
	const burst = 300
	for i := range burst {
		if err := ta.Publish(ctx, seal("message %d", i)); err != nil {
			t.Fatal(err)
		}
	}
	seen := make(map[string]bool)
	for len(seen) < burst {
		m, err := sub.Next(ctx)
		if err != nil {
			t.Fatalf("the subscriber got %d of %d messages: %v", len(seen), burst, err)
		}
		if bytes.HasPrefix(m.Payload, []byte("message ")) {
			seen[string(m.Payload)] = true
		}
	}
}

// awaitHearing publishes probe(0), probe(1)... on topic until sub has
// one: a subscriber hears a publisher once their meshes have formed.
func awaitHearing(t *testing.T, ctx context.Context, sub *node.Subscription, probe func(int) []byte, topic *node.Topic) {
	t.Helper()
	for i := 0; ; i++ {
		if err := topic.Publish(ctx, probe(i)); err != nil {
			t.Fatal(err)
		}
		pctx, cancel := context.WithTimeout(ctx, 300*time.Millisecond)
		_, err := sub.Next(pctx)
		cancel()
		if err == nil {
			return
		}
		if ctx.Err() != nil {
			t.Fatal("the subscriber never heard the publisher")
		}
	}
}

var testDomain = wire.Domain{Name: "aro-test", PayloadType: "/aro/test"}

// gossipPair starts two connected edges, a and b, joins both to spec's
// topic, and returns a with its handle and b's.
func gossipPair(t *testing.T, ctx context.Context, spec node.TopicSpec) (a *node.Node, ta, tb *node.Topic) {
	t.Helper()
	tn := startNetwork(t, ctx, 0, 2)
	a, b := tn.edges[0], tn.edges[1]
	if err := a.Host().Connect(ctx, peer.AddrInfo{ID: b.Host().ID(), Addrs: b.Host().Addrs()}); err != nil {
		t.Fatal(err)
	}
	ta, err := a.Gossip().Join(spec)
	if err != nil {
		t.Fatal(err)
	}
	tb, err = b.Gossip().Join(spec)
	if err != nil {
		t.Fatal(err)
	}
	return a, ta, tb
}
