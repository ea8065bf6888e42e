package node_test

import (
	"bytes"
	"context"
	"encoding/binary"
	"runtime"
	"runtime/debug"
	"runtime/metrics"
	"slices"
	"testing"
	"time"

	"github.com/libp2p/go-libp2p/core/crypto"
	"github.com/libp2p/go-libp2p/core/network"
	"github.com/libp2p/go-libp2p/core/peer"
	"github.com/libp2p/go-libp2p/core/protocol"
	mocknet "github.com/libp2p/go-libp2p/p2p/net/mock"

	"github.com/aropeer/aropeer/liveness"
	"github.com/aropeer/aropeer/node"
	"github.com/aropeer/aropeer/node/config"
	"github.com/aropeer/aropeer/proofs"
	"github.com/aropeer/aropeer/store"
	"github.com/aropeer/aropeer/wire"
)

// BenchmarkLivenessPipeline measures the keeper's challenge-to-receipt
// pipeline over in-memory links: seal the challenge, open a stream and
// send it, the edge opens and answers with a signed heartbeat, the keeper
// checks it, seals the receipt and stores it synced. The baseline, in the
// same run, is one bare envelope seal plus open of the same receipt, with
// the same (mocknet's ECDSA) keys: the pipeline seals and opens three
// envelopes (challenge, heartbeat, receipt), so 1/3 is the ratio of a
// pipeline that costs nothing beyond its signatures.
func BenchmarkLivenessPipeline(b *testing.B) {
	ctx := context.Background()
	mn := mocknet.New()
	defer mn.Close()
	keeperHost, err := mn.GenPeer()
	if err != nil {
		b.Fatal(err)
	}
	edgeHost, err := mn.GenPeer()
	if err != nil {
		b.Fatal(err)
	}
	if err := mn.LinkAll(); err != nil {
		b.Fatal(err)
	}
	if err := mn.ConnectAllButSelf(); err != nil {
		b.Fatal(err)
	}
	keeperKey := keeperHost.Peerstore().PrivKey(keeperHost.ID())
	responder := liveness.NewResponder(edgeHost.Peerstore().PrivKey(edgeHost.ID()))
	edgeHost.SetStreamHandler(liveness.Protocol, func(s network.Stream) {
		env, err := wire.ReadFrame(s, proofs.MaxChallengeSize, time.Now().Add(5*time.Second))
		if err != nil {
			s.Reset()
			return
		}
		c, _, err := proofs.OpenChallenge(env)
		if err != nil {
			s.Reset()
			return
		}
		responder.Serve(ctx, c, s)
	})
	db, err := store.Open(b.TempDir())
	if err != nil {
		b.Fatal(err)
	}
	defer db.Close()
	receipts := proofs.NewReceiptStore(db)
	verifier := liveness.NewVerifier()

	challengeOf := func(i int) proofs.Challenge {
		return proofs.Challenge{
			Network: "devnet", Epoch: 1, Round: uint64(i + 1),
			Keeper: keeperHost.ID(), Edge: edgeHost.ID(), Kind: proofs.KindLiveness,
			Seed: bytes.Repeat([]byte{byte(i)}, 32),
		}
	}
	pipeline := func(i int) proofs.Receipt {
		c := challengeOf(i)
		env, id, err := proofs.SealChallenge(keeperKey, c)
		if err != nil {
			b.Fatal(err)
		}
		open := func(ctx context.Context, p protocol.ID) (network.Stream, error) {
			s, err := keeperHost.NewStream(ctx, edgeHost.ID(), p)
			if err != nil {
				return nil, err
			}
			return s, wire.WriteFrame(s, env, time.Now().Add(5*time.Second))
		}
		vctx, cancel := context.WithTimeout(ctx, 5*time.Second)
		out, err := verifier.Verify(vctx, c, open)
		cancel()
		if err != nil || out.Result != proofs.Pass {
			b.Fatalf("attempt %d: %v %+v", i, err, out)
		}
		r := proofs.Receipt{
			Network: c.Network, Epoch: c.Epoch, Round: c.Round, Keeper: c.Keeper, Edge: c.Edge,
			Kind: c.Kind, Challenge: id, Result: out.Result, Measurements: out.Measurements, Evidence: out.Evidence,
		}
		renv, _, err := proofs.SealReceipt(keeperKey, r)
		if err != nil {
			b.Fatal(err)
		}
		if _, _, _, err := receipts.Put(renv); err != nil {
			b.Fatal(err)
		}
		return r
	}

	sample := pipeline(0)
	var piped, bare time.Duration
	n := 0
	for b.Loop() {
		n++
		start := time.Now()
		pipeline(n)
		piped += time.Since(start)

		start = time.Now()
		env, _, err := proofs.SealReceipt(keeperKey, sample)
		if err != nil {
			b.Fatal(err)
		}
		if _, _, err := proofs.OpenReceipt(env); err != nil {
			b.Fatal(err)
		}
		bare += time.Since(start)
	}
	perPipe := piped.Seconds() / float64(n)
	perBare := bare.Seconds() / float64(n)
	b.ReportMetric(1/perPipe, "receipts/s")
	b.ReportMetric(1/perBare, "seal+open/s")
	b.ReportMetric(perBare/perPipe, "pipeline/seal+open")
}

// BenchmarkGossipPropagation times gossip over links of 20 ms from
// publish to the last subscriber, for messages, each an envelope of a
// receipt's size that every hop opens and verifies, bundled, as on the
// challenge and receipt topics. It reports the 99th percentile and the
// median of those times (goal: p99 under 100 ms), and the link latency in
// the same units, the floor of one hop. It does so in two networks:
//
//   - topic=keepers: the challenges and receipts of 100 edges and 10
//     keepers. Only keepers take in those topics, over the overlay that
//     keeps each connected to every other (see overlay), so a message
//     goes from a keeper to the 9 others. The network runs its own
//     challenges all the while, at the devnet's rates.
//   - topic=all: a topic every one of 100 nodes (a bootstrap node and 99
//     edges) takes in, as the beacon's, so a message crosses the mesh in
//     several hops.
//
// Their streams are pipelined (mockhost), as a real connection's are: a
// mock stream waits out the link's latency for every write or two, and
// the bursts of gossip that start each round queued behind each other,
// which put the keepers' p99 at 170 to 240 ms, all of it in the queues.
//
// The nodes share one process, and so one heap (about 100 MB for 100
// nodes): its collector runs every few seconds, with 60 to 130 ms of
// marking that slows every node at once, and the few messages published
// then make the tail. A node of its own has a heap a hundredth the size,
// and nodes' collectors do not run together. So every other message is
// timed with the collector held off (debug.SetGCPercent(-1), which first
// waits for a running cycle to end) and a collection that fell due
// meanwhile is run before the next message; those messages give the
// "no-gc" figures, the others the figures of the shared heap as it runs.
func BenchmarkGossipPropagation(b *testing.B) {
	const latency = 20 * time.Millisecond
	link := mocknet.LinkOptions{Latency: latency}
	// Score snapshots at the daemon's interval, not the tests' 100 ms:
	// 100 nodes refreshing theirs ten times a second cost more CPU than
	// the gossip itself.
	daemonInspect := func(_ int, _ []peer.ID, _ *config.Config, opts *[]node.Option) {
		*opts = append(*opts, node.WithScoreInspectInterval(5*time.Second))
	}
	b.Run("topic=keepers", func(b *testing.B) {
		ctx, cancel := context.WithCancel(context.Background())
		defer cancel()
		nw, err := config.LookupNetwork("devnet")
		if err != nil {
			b.Fatal(err)
		}
		const keepers = 10
		tn := startLinkedNetwork(b, ctx, keepers, 100, link, append(challengeNet(nw, keepersOf(keepers)), daemonInspect)...)
		timePropagation(b, ctx, tn.keepers, latency)
	})
	b.Run("topic=all", func(b *testing.B) {
		ctx, cancel := context.WithCancel(context.Background())
		defer cancel()
		tn := startLinkedNetwork(b, ctx, 0, 99, link, daemonInspect)
		timePropagation(b, ctx, tn.nodes, latency)
	})
}

// timePropagation has each of nodes in turn publish on a topic they all
// take in, and times each message until the last of the others has it.
func timePropagation(b *testing.B, ctx context.Context, nodes []*node.Node, latency time.Duration) {
	// receiptSize is about a liveness receipt's envelope.
	const receiptSize = 400
	const name = "/aro/bench/propagation"
	benchDomain := wire.Domain{Name: "aro-bench", PayloadType: "/aro/bench"}
	type arrival struct {
		msg  uint64
		node int
		at   time.Time
	}
	arrivals := make(chan arrival, 1024)
	var topics []*node.Topic
	var keys []crypto.PrivKey
	for i, n := range nodes {
		keys = append(keys, n.Host().Peerstore().PrivKey(n.Host().ID()))
		// Bundled, as challenges and receipts are.
		topic, err := n.Gossip().Join(node.TopicSpec{Name: name, Domain: benchDomain, MaxSize: 2048, Bundle: node.BundleEvery})
		if err != nil {
			b.Fatal(err)
		}
		sub, err := topic.Subscribe()
		if err != nil {
			b.Fatal(err)
		}
		go func() {
			for {
				m, err := sub.Next(ctx)
				if err != nil {
					return
				}
				if len(m.Payload) >= 8 {
					arrivals <- arrival{msg: binary.BigEndian.Uint64(m.Payload[len(m.Payload)-8:]), node: i, at: time.Now()}
				}
			}
		}()
		defer sub.Cancel()
		topics = append(topics, topic)
	}
	// Meshes form over a few heartbeats.
	want := min(4, len(nodes)-1)
	deadline := time.Now().Add(30 * time.Second)
	for _, n := range nodes {
		for n.Gossip().MeshSizes()[name] < want && time.Now().Before(deadline) {
			time.Sleep(100 * time.Millisecond)
		}
	}
	var shared, held []time.Duration
	b.ResetTimer()
	for i := 0; b.Loop(); i++ {
		from := i % len(nodes)
		payload := binary.BigEndian.AppendUint64(make([]byte, receiptSize-8), uint64(i))
		env, err := wire.Seal(keys[from], benchDomain, payload)
		if err != nil {
			b.Fatal(err)
		}
		hold := i%2 == 1
		gcPercent := 0
		if hold {
			gcPercent = debug.SetGCPercent(-1)
		}
		start := time.Now()
		if err := topics[from].Publish(ctx, env); err != nil {
			b.Fatal(err)
		}
		got, last := 0, start
		timeout := time.After(10 * time.Second)
		for got < len(nodes)-1 {
			select {
			case a := <-arrivals:
				if a.msg == uint64(i) && a.node != from {
					got++
					last = a.at
				}
			case <-timeout:
				b.Fatalf("message %d reached %d of %d nodes in 10 s", i, got, len(nodes)-1)
			}
		}
		if !hold {
			shared = append(shared, last.Sub(start))
			continue
		}
		held = append(held, last.Sub(start))
		debug.SetGCPercent(gcPercent)
		if gcDue() {
			runtime.GC() // not on the next message, which times the collector as it runs
		}
	}
	ms := func(d time.Duration) float64 { return float64(d) / float64(time.Millisecond) }
	for _, m := range []struct {
		times  []time.Duration
		suffix string
	}{{shared, ""}, {held, "-no-gc"}} {
		if len(m.times) == 0 {
			continue
		}
		slices.Sort(m.times)
		b.ReportMetric(ms(m.times[len(m.times)*99/100]), "p99"+m.suffix+"-ms")
		b.ReportMetric(ms(m.times[len(m.times)/2]), "median"+m.suffix+"-ms")
	}
	b.ReportMetric(ms(latency), "link-ms")
}

// gcDue reports whether the heap has grown past the collector's goal, as
// it does while the collector is held off.
func gcDue() bool {
	s := []metrics.Sample{{Name: "/gc/heap/goal:bytes"}, {Name: "/memory/classes/heap/objects:bytes"}}
	metrics.Read(s)
	return s[1].Value.Uint64() >= s[0].Value.Uint64()
}
