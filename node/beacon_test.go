package node_test

import (
	"bytes"
	"context"
	"slices"
	"sync"
	"testing"
	"time"

	"github.com/drand/drand/v2/protobuf/drand"
	"github.com/libp2p/go-libp2p/core/peer"
	"google.golang.org/protobuf/proto"

	"github.com/aropeer/aropeer/beacon"
	"github.com/aropeer/aropeer/node"
	"github.com/aropeer/aropeer/node/config"
)

// TestBeaconOverGossip runs the devnet's local beacon on the bootstrap
// node of 12 and checks what every node's beacon delivers.
func TestBeaconOverGossip(t *testing.T) {
	ctx, cancel := context.WithTimeout(context.Background(), 2*time.Minute)
	defer cancel()
	tn := startNetwork(t, ctx, 3, 8, func(i int, _ []peer.ID, cfg *config.Config, _ *[]node.Option) {
		cfg.Beacon.Local = i == 0
	})
	signer := beacon.DevnetSigner()
	verifier, err := beacon.NewVerifier(signer.Info())
	if err != nil {
		t.Fatal(err)
	}

	// Every node watches from now on.
	const rounds = 6
	delivered := make([][]beacon.Beacon, len(tn.nodes))
	var wg sync.WaitGroup
	watchCtx, stopWatching := context.WithCancel(ctx)
	defer stopWatching()
	for i, n := range tn.nodes {
		wg.Add(1)
		go func() {
			defer wg.Done()
			for b := range n.Beacon().Watch(watchCtx) {
				delivered[i] = append(delivered[i], b)
				if len(delivered[i]) == rounds {
					return
				}
			}
		}()
	}

	// Meanwhile an attacker gossips forged rounds, signed by another key.
	attacker, err := tn.mn.GenPeer()
	if err != nil {
		t.Fatal(err)
	}
	victims := tn.edges[:3]
	topic := tn.attack(t, ctx, attacker, victims, beacon.TopicName(signer.Info()))
	forger, err := beacon.NewSigner([]byte("not the devnet beacon key, not at all"), signer.Info().Period, signer.Info().GenesisTime, signer.Info().BeaconID)
	if err != nil {
		t.Fatal(err)
	}
	var forged [][]byte // signatures the network must never deliver
	eventually(t, 30*time.Second, "every victim scores the forger below zero", func() bool {
		round := signer.Info().RoundAt(time.Now())
		b, err := forger.Sign(round)
		if err != nil {
			t.Fatal(err)
		}
		forged = append(forged, b.Signature)
		msg, err := proto.Marshal(&drand.PublicRandResponse{Round: b.Round, Signature: b.Signature, Randomness: b.Randomness})
		if err != nil {
			t.Fatal(err)
		}
		if err := topic.Publish(ctx, msg); err != nil {
			t.Fatal(err)
		}
		for _, v := range victims {
			if s, ok := v.Gossip().Score(attacker.ID()); !ok || s >= 0 {
				return false
			}
		}
		return true
	})

	done := make(chan struct{})
	go func() { wg.Wait(); close(done) }()
	select {
	case <-done:
	case <-ctx.Done():
		t.Fatal("not every node received 6 rounds")
	}
	for i, got := range delivered {
		for j, b := range got {
			if j > 0 && b.Round != got[j-1].Round+1 {
				t.Fatalf("node %d: round %d after %d; want each round once, in order", i, b.Round, got[j-1].Round)
			}
			if err := verifier.Verify(b); err != nil {
				t.Fatalf("node %d delivered round %d that does not verify: %v", i, b.Round, err)
			}
			want, err := signer.Sign(b.Round)
			if err != nil {
				t.Fatal(err)
			}
			if !bytes.Equal(b.Signature, want.Signature) {
				t.Fatalf("node %d delivered round %d with a signature the beacon never made", i, b.Round)
			}
			if slices.ContainsFunc(forged, func(sig []byte) bool { return bytes.Equal(sig, b.Signature) }) {
				t.Fatalf("node %d delivered a forged round %d", i, b.Round)
			}
		}
	}
}
