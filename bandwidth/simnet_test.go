package bandwidth

import (
	"context"
	"fmt"
	"math"
	"slices"
	"sync"
	"testing"
	"testing/synctest"
	"time"

	"github.com/libp2p/go-libp2p/core/host"
	"github.com/libp2p/go-libp2p/core/network"
	"github.com/libp2p/go-libp2p/core/peer"
	"github.com/libp2p/go-libp2p/core/protocol"
	"github.com/libp2p/go-libp2p/x/simlibp2p"
	"github.com/marcopolo/simnet"
	"github.com/quic-go/quic-go"

	"github.com/aropeer/aropeer/proofs"
)

// The tests in this file run probes over simnet: QUIC over simulated
// links with a rate and a queue (FQ-CoDel) per node and direction, shared
// by all of a node's connections, as a home uplink is. They run in a
// synctest bubble, so time is virtual: generating and checking keystream
// costs no simulated time, and the figures measure the links alone.

// link is a node's access link in Mbit/s each way (0: 10 Gbit/s).
type link struct{ up, down int }

func (l link) settings() simnet.NodeBiDiLinkSettings {
	rate := func(mbit int) simnet.LinkSettings {
		if mbit == 0 {
			mbit = 10_000
		}
		return simnet.LinkSettings{BitsPerSecond: mbit * simlibp2p.OneMbps}
	}
	return simnet.NodeBiDiLinkSettings{Uplink: rate(l.up), Downlink: rate(l.down)}
}

// simNet builds an edge and keepers on simnet with 10 ms of latency each
// way, the edge answering probes with an honest Responder, every keeper
// connected to it. It must be called inside a synctest bubble; the
// returned stop closes everything.
func simNet(t *testing.T, edge link, keepers ...link) (edgeHost host.Host, keeperHosts []host.Host, stop func()) {
	t.Helper()
	groups := []simlibp2p.NodeLinkSettingsAndCount{{LinkSettings: edge.settings(), Count: 1}}
	for _, k := range keepers {
		groups = append(groups, simlibp2p.NodeLinkSettingsAndCount{LinkSettings: k.settings(), Count: 1})
	}
	router, meta, err := simlibp2p.SimpleLibp2pNetwork(groups, simnet.StaticLatency(10*time.Millisecond), simlibp2p.NetworkSettings{})
	if err != nil {
		t.Fatal(err)
	}
	router.Start()
	edgeHost, keeperHosts = meta.Nodes[0], meta.Nodes[1:]
	var handlers sync.WaitGroup
	stop = func() {
		handlers.Wait()
		for _, h := range meta.Nodes {
			_ = h.Close()
		}
		router.Close()
	}
	key := edgeHost.Peerstore().PrivKey(edgeHost.ID())
	r := NewResponder(key, WithMaxConcurrent(len(keepers)))
	edgeHost.SetStreamHandler(Protocol, func(s network.Stream) {
		handlers.Add(1)
		defer handlers.Done()
		ctx, cancel := context.WithTimeout(context.Background(), time.Minute)
		defer cancel()
		// As in protocol_test.go, the opener plays the engine: the
		// keeper's ID is the challenge's, the seed its peer's bytes.
		r.Serve(ctx, simChallenge(s.Conn().RemotePeer(), edgeHost.ID()), s)
	})
	for _, k := range keeperHosts {
		if err := k.Connect(context.Background(), peer.AddrInfo{ID: edgeHost.ID(), Addrs: edgeHost.Addrs()}); err != nil {
			stop()
			t.Fatal(err)
		}
	}
	return edgeHost, keeperHosts, stop
}

func simChallenge(keeper, edge peer.ID) proofs.Challenge {
	seed := []byte(keeper)
	for len(seed) < 32 {
		seed = append(seed, 0x5a)
	}
	return proofs.Challenge{
		Network: "devnet", Epoch: 1, Round: 40, Keeper: keeper, Edge: edge,
		Kind: proofs.KindBandwidth, Seed: seed[len(seed)-32:],
	}
}

// simProbe runs one probe of edge from keeper.
func simProbe(t *testing.T, v *Verifier, keeper host.Host, edge peer.ID) proofs.Outcome {
	ctx, cancel := context.WithTimeout(context.Background(), 30*time.Second)
	defer cancel()
	open := func(ctx context.Context, p protocol.ID) (network.Stream, error) {
		return keeper.NewStream(ctx, edge, p)
	}
	out, err := v.Verify(ctx, simChallenge(keeper.ID(), edge), open)
	if err != nil {
		t.Error(err)
	}
	return out
}

func kbit(out proofs.Outcome, key string) float64 { return float64(out.Measurements[key]) / 1000 }

func within(got, want, share float64) bool { return math.Abs(got-want) <= share*want }

// direction names a probe of one direction: "up" (edge to keeper) or
// "down" (keeper to edge).
type direction string

// claimOf claims the edge's link rate in d only.
func (l link) claimOf(d direction) proofs.Claims {
	if d == "up" {
		return claims(uint64(l.up), 0)
	}
	return claims(0, uint64(l.down))
}

func (l link) rate(d direction) float64 {
	if d == "up" {
		return float64(l.up)
	}
	return float64(l.down)
}

// sentBytes counts the QUIC packet bytes h has sent to p: what simnet's
// links carry and limit. Against it, the stream bytes a probe moved give
// the share of a link's rate left to data once QUIC has framed,
// encrypted and retransmitted it (about 97%), the most any measure over
// the link can show.
func sentBytes(t *testing.T, h host.Host, p peer.ID) uint64 {
	t.Helper()
	var sum uint64
	for _, c := range h.Network().ConnsToPeer(p) {
		var qc *quic.Conn
		if !c.As(&qc) {
			t.Fatalf("connection %s is not QUIC", c)
		}
		sum += qc.ConnectionStats().BytesSent
	}
	return sum
}

// sender is the host sending in direction d.
func sender(d direction, edge, keeper host.Host) (from host.Host, to peer.ID) {
	if d == "up" {
		return edge, keeper.ID()
	}
	return keeper, edge.ID()
}

// Each simulated probe measures one direction on a fresh connection.
// quic-go carries state from one direction of a connection to the other:
// after a transfer that fills the pipe one way, a transfer the other way
// on the same connection keeps about 200 KB in flight (80 Mbit/s at a
// 20 ms RTT on a 200 Mbit/s link), with plain stream copies as with
// probes. The probe's figures must be judged on the links alone.

// TestAccuracySimnet: one keeper on a fast link measures an edge's
// uplink (up) and downlink (down) each within 3% of its rate, on
// symmetric and asymmetric links of 10, 50 and 200 Mbit/s: the other
// direction, which carries the transport's acknowledgements, may be
// much slower.
func TestAccuracySimnet(t *testing.T) {
	for _, edge := range []link{{10, 10}, {50, 50}, {200, 200}, {10, 50}, {50, 10}, {200, 20}, {20, 200}} {
		for _, d := range []direction{"up", "down"} {
			t.Run(fmt.Sprintf("%s-up%d-down%d", d, edge.up, edge.down), func(t *testing.T) {
				synctest.Test(t, func(t *testing.T) {
					edgeHost, keepers, stop := simNet(t, edge, link{})
					defer stop()
					from, to := sender(d, edgeHost, keepers[0])
					before := sentBytes(t, from, to)
					out := simProbe(t, NewVerifier(edge.claimOf(d)), keepers[0], edgeHost.ID())
					if out.Result != proofs.Pass {
						t.Fatalf("%+v", out)
					}
					framing := float64(out.Measurements["bytes"]) / float64(sentBytes(t, from, to)-before)
					got, want := kbit(out, string(d)+"_kbit"), edge.rate(d)*framing
					if !within(got, want, 0.03) {
						t.Errorf("measured %s %.2f Mbit/s on a link of up %d down %d carrying %.2f of data: more than 3%% off", d, got, edge.up, edge.down, want)
					}
					t.Logf("link up %d down %d: measured %s %.2f Mbit/s of the %.2f the link carries as data (%.1f%% of its rate; %d intervals)", edge.up, edge.down, d, got, want, 100*framing, out.Measurements["intervals"])
				})
			})
		}
	}
}

// TestCommitteeAccuracySimnet: three keepers whose own links are slower
// than the edge's probe it together, each judging a third of the claim;
// the sum of their simultaneous measurements is the edge's link rate
// within 5%, which no one of them could measure alone. An epoch's
// figure is the median of its rounds' sums, and so is the test's, over
// three rounds: in about one round in thirty, simnet's FQ-CoDel queue
// gives one flow half the edge's link and the round's sum comes out up
// to 7% high.
func TestCommitteeAccuracySimnet(t *testing.T) {
	for _, c := range []struct {
		edge   link
		keeper link
	}{
		{edge: link{200, 200}, keeper: link{100, 100}},
		{edge: link{150, 60}, keeper: link{40, 100}},
	} {
		for _, d := range []direction{"up", "down"} {
			t.Run(fmt.Sprintf("%s-up%d-down%d", d, c.edge.up, c.edge.down), func(t *testing.T) {
				var sums, wants []float64
				for range 3 {
					synctest.Test(t, func(t *testing.T) {
						sum, want := committeeRound(t, c.edge, c.keeper, d)
						sums, wants = append(sums, sum), append(wants, want)
					})
				}
				sum, want := median(sums), median(wants)
				if !within(sum, want, 0.05) {
					t.Errorf("committee measured %s %.2f Mbit/s (median of %.2f) on a link of up %d down %d carrying %.2f of data: more than 5%% off", d, sum, sums, c.edge.up, c.edge.down, want)
				}
				t.Logf("link up %d down %d, keepers at up %d down %d: the committee measured %s %.2f Mbit/s (median of %.2f) of the %.2f the link carries as data", c.edge.up, c.edge.down, c.keeper.up, c.keeper.down, d, sum, sums, want)
			})
		}
	}
}

// committeeRound has three keepers on keeper links probe an edge on edge
// together in direction d, and returns the sum of their measures and
// the rate the edge's link carries as data.
func committeeRound(t *testing.T, edge, keeper link, d direction) (sum, want float64) {
	edgeHost, keepers, stop := simNet(t, edge, keeper, keeper, keeper)
	defer stop()
	three := func(proofs.Challenge) int { return 3 }
	v := NewVerifier(edge.claimOf(d), WithProbers(three))
	var before uint64
	for _, k := range keepers {
		from, to := sender(d, edgeHost, k)
		before += sentBytes(t, from, to)
	}
	outs := make([]proofs.Outcome, len(keepers))
	var wg sync.WaitGroup
	for i, k := range keepers {
		wg.Go(func() { outs[i] = simProbe(t, v, k, edgeHost.ID()) })
	}
	wg.Wait()
	var data, sent uint64
	for i, out := range outs {
		// A keeper whose flow got less than its share fails with its
		// measure, which aggregation judges by the round's sum (in about
		// one round in two hundred, simnet's queue gives a flow a third of
		// its share); any other outcome is wrong.
		if _, measured := out.Measurements["mbit_s"]; out.Result != proofs.Pass && (out.Result != proofs.Fail || !measured) {
			t.Errorf("keeper %d: %+v", i, out)
		}
		sum += kbit(out, string(d)+"_kbit")
		t.Logf("keeper %d: %v", i, out.Measurements)
		data += uint64(out.Measurements["bytes"])
		from, to := sender(d, edgeHost, keepers[i])
		sent += sentBytes(t, from, to)
	}
	framing := float64(data) / float64(sent-before)
	return sum, edge.rate(d) * framing
}

func median(xs []float64) float64 {
	s := slices.Clone(xs)
	slices.Sort(s)
	return s[len(s)/2]
}
