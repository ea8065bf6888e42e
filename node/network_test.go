package node_test

import (
	"bytes"
	"context"
	"crypto/rand"
	"fmt"
	"log/slog"
	"net"
	"os"
	"slices"
	"sync"
	"testing"
	"time"

	pubsub "github.com/libp2p/go-libp2p-pubsub"
	"github.com/libp2p/go-libp2p/core/crypto"
	"github.com/libp2p/go-libp2p/core/host"
	"github.com/libp2p/go-libp2p/core/peer"
	mocknet "github.com/libp2p/go-libp2p/p2p/net/mock"
	ma "github.com/multiformats/go-multiaddr"

	"github.com/aropeer/aropeer/internal/mockhost"
	"github.com/aropeer/aropeer/node"
	"github.com/aropeer/aropeer/node/config"
	"github.com/aropeer/aropeer/store"
	"github.com/aropeer/aropeer/wire"
)

// genPeer adds a host with an Ed25519 key, as real nodes have, to mn:
// mocknet's own GenPeer makes ECDSA keys, whose signatures take about
// twice as long to verify and would slow every gossip hop.
func genPeer(t testing.TB, mn mocknet.Mocknet) host.Host {
	t.Helper()
	key, _, err := crypto.GenerateEd25519Key(rand.Reader)
	if err != nil {
		t.Fatal(err)
	}
	id, err := peer.IDFromPrivateKey(key)
	if err != nil {
		t.Fatal(err)
	}
	ip := slices.Clone(mocknetNet.IP)
	copy(ip[net.IPv6len-8:], id[len(id)-8:])
	h, err := mn.AddPeer(key, ma.StringCast(fmt.Sprintf("/ip6/%s/tcp/4242", ip)))
	if err != nil {
		t.Fatal(err)
	}
	managed, err := node.Managed(h, config.Default(config.RoleEdge).ConnMgr)
	if err != nil {
		t.Fatal(err)
	}
	// A node closes its host; this closes those no node ran on.
	t.Cleanup(func() { managed.Close() })
	return managed
}

// mocknetNet holds the addresses mocknet gives its hosts; a simulation
// trusts them as a devnet trusts loopback.
var mocknetNet = &net.IPNet{IP: net.ParseIP("100::"), Mask: net.CIDRMask(64, 128)}

var newsDomain = wire.Domain{Name: "aro-test-news", PayloadType: "/aro/test/news"}

// testNet is a network of real nodes over in-memory links.
type testNet struct {
	mn        mocknet.Mocknet
	nodes     []*node.Node
	stops     []func() // stop node i and wait for it
	bootstrap *node.Node
	keepers   []*node.Node
	edges     []*node.Node
}

// netOption adjusts one node of a test network before it starts: its
// config, knowing every node's peer ID, and its options.
type netOption func(i int, ids []peer.ID, cfg *config.Config, opts *[]node.Option)

func startNetwork(t *testing.T, ctx context.Context, keepers, edges int, adjust ...netOption) *testNet {
	t.Helper()
	return startLinkedNetwork(t, ctx, keepers, edges, mocknet.LinkOptions{}, adjust...)
}

// startLinkedNetwork is startNetwork over links with link's latency and
// rate.
func startLinkedNetwork(t testing.TB, ctx context.Context, keepers, edges int, link mocknet.LinkOptions, adjust ...netOption) *testNet {
	t.Helper()
	tn := &testNet{mn: mocknet.New()}
	t.Cleanup(func() { tn.mn.Close() })
	tn.mn.SetLinkDefaults(link)

	roles := []config.Role{config.RoleBootstrap}
	for range keepers {
		roles = append(roles, config.RoleKeeper)
	}
	for range edges {
		roles = append(roles, config.RoleEdge)
	}
	hosts := make([]host.Host, len(roles))
	for i := range roles {
		hosts[i] = genPeer(t, tn.mn)
	}
	if err := tn.mn.LinkAll(); err != nil {
		t.Fatal(err)
	}
	boot := fmt.Sprintf("%s/p2p/%s", hosts[0].Addrs()[0], hosts[0].ID())
	ids := make([]peer.ID, len(hosts))
	for i, h := range hosts {
		ids[i] = h.ID()
	}

	var wg sync.WaitGroup
	runCtx, cancel := context.WithCancel(ctx)
	t.Cleanup(func() { cancel(); wg.Wait() })
	for i, role := range roles {
		cfg := config.Default(role)
		if i > 0 {
			cfg.Bootstrap = []string{boot}
		}
		db, err := store.Open(t.TempDir())
		if err != nil {
			t.Fatal(err)
		}
		t.Cleanup(func() { db.Close() })
		h := hosts[i]
		opts := []node.Option{
			// Its streams pipelined, as a real connection's are.
			node.WithHost(mockhost.Wrap(h)),
			node.WithStore(db),
			node.WithoutAPI(),
			node.WithTrustedNets(mocknetNet),
			node.WithScoreInspectInterval(100 * time.Millisecond),
			node.WithLogger(testLogger(i)),
		}
		for _, f := range adjust {
			f(i, ids, &cfg, &opts)
		}
		n, err := node.New(cfg, h.Peerstore().PrivKey(h.ID()), opts...)
		if err != nil {
			t.Fatal(err)
		}
		nodeCtx, stop := context.WithCancel(runCtx)
		done := make(chan struct{})
		wg.Add(1)
		go func() {
			defer wg.Done()
			defer close(done)
			if err := n.Run(nodeCtx); err != nil {
				t.Errorf("node %d: %v", i, err)
			}
		}()
		tn.stops = append(tn.stops, func() { stop(); <-done })
		select {
		case <-n.Ready():
		case <-done:
			t.Fatalf("node %d stopped during start-up", i)
		}
		tn.nodes = append(tn.nodes, n)
		switch role {
		case config.RoleBootstrap:
			tn.bootstrap = n
		case config.RoleKeeper:
			tn.keepers = append(tn.keepers, n)
		default:
			tn.edges = append(tn.edges, n)
		}
	}
	return tn
}

// eventually polls cond until it holds or the deadline passes.
func eventually(t *testing.T, timeout time.Duration, what string, cond func() bool) {
	t.Helper()
	deadline := time.Now().Add(timeout)
	for !cond() {
		if time.Now().After(deadline) {
			t.Fatalf("%s: not within %s", what, timeout)
		}
		time.Sleep(50 * time.Millisecond)
	}
}

func TestNetworkOf50(t *testing.T) {
	if testing.Short() {
		t.Skip("starts 50 nodes; skipped in -short mode")
	}
	ctx, cancel := context.WithTimeout(context.Background(), 3*time.Minute)
	defer cancel()
	tn := startNetwork(t, ctx, 4, 45)

	t.Run("keeper finds every edge through the DHT", func(t *testing.T) {
		want := make([]peer.ID, 0, len(tn.edges))
		for _, e := range tn.edges {
			want = append(want, e.Host().ID())
		}
		slices.Sort(want)
		keeper := tn.keepers[0]
		var got []peer.ID
		eventually(t, time.Minute, "keeper finds all 45 edges", func() bool {
			fctx, fcancel := context.WithTimeout(ctx, 10*time.Second)
			defer fcancel()
			got = got[:0]
			for _, p := range node.FindProviders(fctx, keeper.DHT(), "devnet", "liveness") {
				got = append(got, p.ID)
			}
			slices.Sort(got)
			got = slices.Compact(got)
			return slices.Equal(got, want)
		})
		if others := node.FindProviders(ctx, keeper.DHT(), "devnet", "storage"); len(others) != 0 {
			t.Errorf("found %d providers of storage, which no edge offers", len(others))
		}
	})

	// Every node joins a topic whose validator rejects the payload "bad".
	const topicName = "/aro/devnet/test-news"
	spec := node.TopicSpec{
		Name:   topicName,
		Domain: newsDomain,
		Validate: func(_ context.Context, m node.Message) pubsub.ValidationResult {
			if bytes.Equal(m.Payload, []byte("bad")) {
				return pubsub.ValidationReject
			}
			return pubsub.ValidationAccept
		},
	}
	subs := make([]*node.Subscription, len(tn.nodes))
	topics := make([]*node.Topic, len(tn.nodes))
	for i, n := range tn.nodes {
		topic, err := n.Gossip().Join(spec)
		if err != nil {
			t.Fatal(err)
		}
		sub, err := topic.Subscribe()
		if err != nil {
			t.Fatal(err)
		}
		topics[i], subs[i] = topic, sub
	}
	eventually(t, 30*time.Second, "every node has a mesh on the topic", func() bool {
		for _, n := range tn.nodes {
			if n.Gossip().MeshSizes()[topicName] == 0 {
				return false
			}
		}
		return true
	})

	// received collects, per node, the payloads it was delivered.
	var mu sync.Mutex
	received := make([][]string, len(tn.nodes))
	var readers sync.WaitGroup
	readCtx, stopReading := context.WithCancel(ctx)
	defer func() { stopReading(); readers.Wait() }()
	for i, sub := range subs {
		readers.Add(1)
		go func() {
			defer readers.Done()
			for {
				m, err := sub.Next(readCtx)
				if err != nil {
					return
				}
				mu.Lock()
				received[i] = append(received[i], string(m.Payload))
				mu.Unlock()
			}
		}()
	}
	everyoneHas := func(payload string) func() bool {
		return func() bool {
			mu.Lock()
			defer mu.Unlock()
			for _, r := range received {
				if !slices.Contains(r, payload) {
					return false
				}
			}
			return true
		}
	}

	t.Run("a message reaches every subscriber", func(t *testing.T) {
		edge := tn.edges[7]
		env, err := wire.Seal(edge.Host().Peerstore().PrivKey(edge.Host().ID()), newsDomain, []byte("hello"))
		if err != nil {
			t.Fatal(err)
		}
		if err := topics[slices.Index(tn.nodes, edge)].Publish(ctx, env); err != nil {
			t.Fatal(err)
		}
		eventually(t, 30*time.Second, "all 50 nodes receive the message", everyoneHas("hello"))
	})

	t.Run("an invalid message reaches no one and lowers its sender's score", func(t *testing.T) {
		// The attacker runs plain gossipsub without our validators.
		attacker, err := tn.mn.GenPeer()
		if err != nil {
			t.Fatal(err)
		}
		victims := tn.edges[:3]
		at := tn.attack(t, ctx, attacker, victims, topicName)
		if _, err := at.Subscribe(); err != nil {
			t.Fatal(err)
		}
		eventually(t, 30*time.Second, "the victims see the attacker on the topic", func() bool {
			return len(at.ListPeers()) == len(victims)
		})
		key := attacker.Peerstore().PrivKey(attacker.ID())
		bad, err := wire.Seal(key, newsDomain, []byte("bad"))
		if err != nil {
			t.Fatal(err)
		}
		forged, err := wire.Seal(key, wire.Domain{Name: "aro-other", PayloadType: "/aro/other"}, []byte("forged"))
		if err != nil {
			t.Fatal(err)
		}
		// A persistent attacker: it keeps publishing until its victims
		// have scored it down, since its first messages may leave before
		// its router has streams to them.
		eventually(t, 30*time.Second, "every victim scores the attacker below zero", func() bool {
			for _, msg := range [][]byte{bad, forged} {
				if err := at.Publish(ctx, msg); err != nil {
					t.Fatal(err)
				}
			}
			for _, v := range victims {
				if s, ok := v.Gossip().Score(attacker.ID()); !ok || s >= 0 {
					return false
				}
			}
			return true
		})
		// A marker published after the attack reaches everyone; by then the
		// attacker's messages would have too, had any been forwarded.
		env, err := wire.Seal(tn.keepers[0].Host().Peerstore().PrivKey(tn.keepers[0].Host().ID()), newsDomain, []byte("marker"))
		if err != nil {
			t.Fatal(err)
		}
		if err := topics[1].Publish(ctx, env); err != nil {
			t.Fatal(err)
		}
		eventually(t, 30*time.Second, "all nodes receive the marker", everyoneHas("marker"))
		mu.Lock()
		defer mu.Unlock()
		for i, r := range received {
			if slices.Contains(r, "bad") || slices.Contains(r, "forged") {
				t.Errorf("node %d was delivered an invalid message: %q", i, r)
			}
		}
	})
}

// testLogger discards logs, unless AROPEER_TEST_LOG names a level: then
// it writes each node's logs to stderr, tagged with the node's index.
func testLogger(i int) *slog.Logger {
	level := os.Getenv("AROPEER_TEST_LOG")
	if level == "" {
		return slog.New(slog.DiscardHandler)
	}
	var lv slog.Level
	_ = lv.UnmarshalText([]byte(level))
	return slog.New(slog.NewTextHandler(os.Stderr, &slog.HandlerOptions{Level: lv})).With("node", i)
}

// attack joins an outside host h to the network with plain gossipsub and
// no validators, connected to victims, and returns its handle on topic.
func (tn *testNet) attack(t *testing.T, ctx context.Context, h host.Host, victims []*node.Node, topic string) *pubsub.Topic {
	t.Helper()
	if err := tn.mn.LinkAll(); err != nil {
		t.Fatal(err)
	}
	for _, v := range victims {
		if err := h.Connect(ctx, peer.AddrInfo{ID: v.Host().ID(), Addrs: v.Host().Addrs()}); err != nil {
			t.Fatal(err)
		}
	}
	ps, err := pubsub.NewGossipSub(ctx, h)
	if err != nil {
		t.Fatal(err)
	}
	tp, err := ps.Join(topic)
	if err != nil {
		t.Fatal(err)
	}
	return tp
}
