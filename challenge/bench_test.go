package challenge

import (
	"fmt"
	"testing"
	"time"

	"github.com/libp2p/go-libp2p/core/peer"

	"github.com/aropeer/aropeer/beacon"
	"github.com/aropeer/aropeer/proofs"
)

// The goal: one round's schedule for 10,000 edges and 50 keepers in under
// 50 ms on one core, with committees drawn once per epoch. Run with
//
//	go test ./challenge/ -run '^$' -bench . -cpu 1
//
// BenchmarkSchedule reports ms/round and, against a baseline measured in
// the same run (beacon.Seed and IsDue for every keeper, edge and kind
// the schedule considers), how many times faster it is.
// BenchmarkCommittees reports the ms an epoch's committees take, and how
// many times faster that is than scoring every keeper with beacon.Seed
// and the full logarithm.

const (
	benchEdges   = 10_000
	benchKeepers = 50
)

// benchNetwork is 10,000 edges offering all four kinds to 50 keepers of
// stakes 1 to 50, committees of 3.
func benchNetwork() (Params, []peer.ID, map[peer.ID]proofs.Manifest) {
	p := Params{
		Network:       "bench",
		EpochRounds:   100,
		CommitteeSize: 3,
		Probability: map[proofs.Kind]float64{
			proofs.KindLiveness: 0.2, proofs.KindStorage: 0.05,
			proofs.KindBandwidth: 0.01, proofs.KindCompute: 0.01,
		},
		Deadline: map[proofs.Kind]time.Duration{
			proofs.KindLiveness: time.Second, proofs.KindStorage: 2 * time.Second,
			proofs.KindBandwidth: 10 * time.Second, proofs.KindCompute: 10 * time.Second,
		},
		Retries: 3,
		Window:  4,
	}
	for i := range benchKeepers {
		p.Keepers = append(p.Keepers, Keeper{ID: syntheticID(fmt.Sprint("bench keeper ", i)), Stake: uint64(i + 1)})
	}
	edges := make([]peer.ID, benchEdges)
	manifests := make(map[peer.ID]proofs.Manifest, benchEdges)
	for i := range edges {
		edges[i] = syntheticID(fmt.Sprint("bench edge ", i))
		m := proofs.Manifest{Network: p.Network, Edge: edges[i]}
		for _, k := range proofs.Kinds() {
			m.Offers = append(m.Offers, proofs.Offer{Kind: k})
		}
		manifests[edges[i]] = m
	}
	return p, edges, manifests
}

func BenchmarkSchedule(b *testing.B) {
	p, edges, manifests := benchNetwork()
	epoch := uint64(7)
	cs := NewCommittees(syntheticBeacon(p.FirstRound(epoch)), epoch, edges, p)
	rounds := make([]beacon.Beacon, 64)
	for i := range rounds {
		rounds[i] = syntheticBeacon(p.FirstRound(epoch) + uint64(i))
	}
	base := scheduleBaseline(cs, manifests, p, rounds[0])

	dues := 0
	i := 0
	for b.Loop() {
		dues += len(Schedule(rounds[i%len(rounds)], cs, manifests, p))
		i++
	}
	per := b.Elapsed() / time.Duration(i)
	b.ReportMetric(float64(per)/float64(time.Millisecond), "ms/round")
	b.ReportMetric(float64(dues)/float64(i), "dues/round")
	b.ReportMetric(float64(base)/float64(per), "x_baseline")
	b.ReportMetric(0, "ns/op")
}

// scheduleBaseline times IsDue, which hashes every seed with beacon.Seed,
// over everything Schedule considers in one round.
func scheduleBaseline(cs *Committees, manifests map[peer.ID]proofs.Manifest, p Params, bc beacon.Beacon) time.Duration {
	const n = 3
	start := time.Now()
	for range n {
		for _, k := range cs.keepers {
			for _, e := range cs.EdgesOf(k) {
				for _, o := range manifests[e].Offers {
					IsDue(bc, k, e, o.Kind, p)
				}
			}
		}
	}
	return time.Since(start) / n
}

func BenchmarkCommittees(b *testing.B) {
	p, edges, _ := benchNetwork()
	// Baseline: beacon.Seed and the full logarithm for every keeper of
	// every edge, then a sort (fullCommittee), on a tenth of the edges.
	start := time.Now()
	bc := syntheticBeacon(1)
	for _, e := range edges[:len(edges)/10] {
		fullCommittee(bc, e, p.Keepers, p.CommitteeSize)
	}
	base := time.Since(start) * 10

	i := uint64(0)
	for b.Loop() {
		NewCommittees(syntheticBeacon(p.FirstRound(i)), i, edges, p)
		i++
	}
	per := b.Elapsed() / time.Duration(i)
	b.ReportMetric(float64(per)/float64(time.Millisecond), "ms/epoch")
	b.ReportMetric(float64(base)/float64(per), "x_baseline")
	b.ReportMetric(0, "ns/op")
}

// BenchmarkCommitteeScore is one keeper's score for one edge: the
// committees' unit of work.
func BenchmarkCommitteeScore(b *testing.B) {
	p, edges, _ := benchNetwork()
	d := newDraw(syntheticBeacon(1), p.Keepers)
	i := 0
	for b.Loop() {
		d.committee([]byte(edges[i%len(edges)]), 3, nil)
		i++
	}
	b.ReportMetric(float64(b.Elapsed())/float64(i*benchKeepers), "ns/score")
}

func BenchmarkNegLog2(b *testing.B) {
	x := uint64(0x9e3779b97f4a7c15)
	var sink uint64
	for b.Loop() {
		sink += negLog2(x)
		x = x*6364136223846793005 + 1442695040888963407
	}
	_ = sink
}
