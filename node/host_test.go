package node_test

import (
	"context"
	"log/slog"
	"sync"
	"testing"
	"time"

	"github.com/libp2p/go-libp2p/core/crypto"
	"github.com/libp2p/go-libp2p/core/network"
	"github.com/libp2p/go-libp2p/core/peer"
	"github.com/libp2p/go-libp2p/p2p/protocol/ping"

	"github.com/aropeer/aropeer/node"
	"github.com/aropeer/aropeer/node/config"
)

// startLoopbackNode runs a keeper with a real libp2p host on 127.0.0.1,
// its config changed by adjust.
func startLoopbackNode(t *testing.T, ctx context.Context, wg *sync.WaitGroup, key crypto.PrivKey, adjust ...func(*config.Config)) *node.Node {
	t.Helper()
	cfg := config.Default(config.RoleKeeper)
	cfg.Listen = []string{"/ip4/127.0.0.1/tcp/0", "/ip4/127.0.0.1/udp/0/quic-v1"}
	for _, f := range adjust {
		f(&cfg)
	}
	n, err := node.New(cfg, key, node.WithDataDir(t.TempDir()), node.WithoutAPI(), node.WithLogger(slog.New(slog.DiscardHandler)))
	if err != nil {
		t.Fatal(err)
	}
	wg.Add(1)
	go func() {
		defer wg.Done()
		if err := n.Run(ctx); err != nil {
			t.Errorf("node: %v", err)
		}
	}()
	select {
	case <-n.Ready():
	case <-ctx.Done():
		t.Fatal("node did not start")
	}
	return n
}

func newKey(t *testing.T) (crypto.PrivKey, peer.ID) {
	t.Helper()
	key, _, err := crypto.GenerateEd25519Key(nil)
	if err != nil {
		t.Fatal(err)
	}
	id, err := peer.IDFromPrivateKey(key)
	if err != nil {
		t.Fatal(err)
	}
	return key, id
}

func TestDenyListRefusesPeer(t *testing.T) {
	ctx, cancel := context.WithTimeout(context.Background(), 30*time.Second)
	var wg sync.WaitGroup
	defer wg.Wait()
	defer cancel()

	deniedKey, deniedID := newKey(t)
	welcomeKey, _ := newKey(t)
	guardKey, _ := newKey(t)
	guard := startLoopbackNode(t, ctx, &wg, guardKey, func(c *config.Config) { c.Deny = []string{deniedID.String()} })
	denied := startLoopbackNode(t, ctx, &wg, deniedKey)
	welcome := startLoopbackNode(t, ctx, &wg, welcomeKey)

	target := peer.AddrInfo{ID: guard.Host().ID(), Addrs: guard.Host().Addrs()}
	if err := welcome.Host().Connect(ctx, target); err != nil {
		t.Fatalf("a peer not on the deny list cannot connect: %v", err)
	}
	if _, err := welcome.Host().NewStream(ctx, guard.Host().ID(), ping.ID); err != nil {
		t.Fatalf("a peer not on the deny list cannot open a stream: %v", err)
	}

	// The guard refuses the denied peer after the security handshake, so
	// the dialer may see its connection briefly; it never gets a stream.
	_ = denied.Host().Connect(ctx, target)
	sctx, scancel := context.WithTimeout(ctx, 5*time.Second)
	defer scancel()
	if s, err := denied.Host().NewStream(sctx, guard.Host().ID(), ping.ID); err == nil {
		s.Reset()
		t.Fatal("a peer on the deny list opened a stream")
	}
	if got := guard.Host().Network().Connectedness(deniedID); got == network.Connected {
		t.Fatal("the guard holds a connection to the denied peer")
	}
}

// TestSequencerConnectionProtected: a node that settles through a
// sequencer keeps its connection to it from the connection manager's
// trims; it asks it for the keeper registry every epoch, and so does
// every other node.
func TestSequencerConnectionProtected(t *testing.T) {
	ctx, cancel := context.WithTimeout(context.Background(), 30*time.Second)
	var wg sync.WaitGroup
	defer wg.Wait()
	defer cancel()
	key, _ := newKey(t)
	_, sequencer := newKey(t)
	n := startLoopbackNode(t, ctx, &wg, key, func(c *config.Config) { c.Ledger.Sequencer = sequencer.String() })
	if !n.Host().ConnManager().IsProtected(sequencer, "") {
		t.Error("the connection to the sequencer is not protected from trimming")
	}
}
