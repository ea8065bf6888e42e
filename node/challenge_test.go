package node_test

import (
	"context"
	"fmt"
	"slices"
	"testing"
	"time"

	"github.com/ipfs/go-cid"
	"github.com/libp2p/go-libp2p/core/peer"

	"github.com/aropeer/aropeer/challenge"
	"github.com/aropeer/aropeer/node"
	"github.com/aropeer/aropeer/node/config"
	"github.com/aropeer/aropeer/proofs"
)

// shortEpochs is the devnet with 4-round epochs and frequent liveness
// challenges, so that three epochs pass in seconds.
func shortEpochs(t *testing.T) config.Network {
	nw, err := config.LookupNetwork("devnet")
	if err != nil {
		t.Fatal(err)
	}
	nw.EpochRounds = 4
	nw.Probability = map[proofs.Kind]float64{proofs.KindLiveness: 0.3}
	nw.Window = 5
	return nw
}

// challengeNet runs a beacon on the bootstrap node, lists the keepers as
// genesis keepers, and applies nw to every node.
func challengeNet(nw config.Network, extra ...netOption) []netOption {
	return append([]netOption{func(i int, _ []peer.ID, cfg *config.Config, opts *[]node.Option) {
		cfg.Beacon.Local = i == 0
		*opts = append(*opts, node.WithNetwork(nw))
	}}, extra...)
}

// keepersOf lists nodes 1..k as genesis keepers with equal stakes.
func keepersOf(k int) netOption {
	return func(_ int, ids []peer.ID, cfg *config.Config, _ *[]node.Option) {
		cfg.Keepers = nil
		for _, id := range ids[1 : 1+k] {
			cfg.Keepers = append(cfg.Keepers, fmt.Sprintf("%s=100", id))
		}
	}
}

// waitRound blocks until n has seen round r.
func waitRound(t *testing.T, ctx context.Context, n *node.Node, r uint64) {
	t.Helper()
	for b := range n.Beacon().Watch(ctx) {
		if b.Round >= r {
			return
		}
	}
	t.Fatalf("round %d never came", r)
}

// due is one challenge the schedule called for.
type due struct {
	round        uint64
	keeper, edge peer.ID
}

func TestChallengesFollowTheSchedule(t *testing.T) {
	ctx, cancel := context.WithTimeout(context.Background(), 3*time.Minute)
	defer cancel()
	nw := shortEpochs(t)
	tn := startNetwork(t, ctx, 3, 20, challengeNet(nw, keepersOf(3))...)

	src := tn.keepers[0].Beacon()
	info := src.Info()
	p := challenge.Params{Network: nw.Name, EpochRounds: nw.EpochRounds}
	// Start two epochs on, when every keeper has every manifest, and run
	// three whole epochs, then wait out the containment window.
	start := p.FirstRound(p.EpochOf(info.RoundAt(time.Now())) + 2)
	end := p.FirstRound(p.EpochOf(start) + 3) // exclusive
	waitRound(t, ctx, tn.keepers[0], end+nw.Window+1)

	// What the schedule called for, recomputed from the beacon.
	manifests := make(map[peer.ID]proofs.Manifest)
	var edgeIDs []peer.ID
	for _, e := range tn.edges {
		id := e.Host().ID()
		edgeIDs = append(edgeIDs, id)
		manifests[id] = proofs.Manifest{Network: nw.Name, Edge: id, Offers: []proofs.Offer{{Kind: proofs.KindLiveness}}}
	}
	slices.Sort(edgeIDs)
	params, err := challengeParamsOf(nw, tn)
	if err != nil {
		t.Fatal(err)
	}
	want := map[due]bool{}
	for r := start; r < end; r++ {
		epoch := params.EpochOf(r)
		first, err := src.Get(ctx, params.FirstRound(epoch))
		if err != nil {
			t.Fatal(err)
		}
		b, err := src.Get(ctx, r)
		if err != nil {
			t.Fatal(err)
		}
		cs := challenge.NewCommittees(first, epoch, edgeIDs, params)
		for _, d := range challenge.Schedule(b, cs, manifests, params) {
			want[due{d.Round, d.Keeper, d.Edge}] = true
		}
	}
	if len(want) == 0 {
		t.Fatal("the schedule called for no challenge in three epochs; the test proves nothing")
	}

	// Every store holds exactly one receipt per due challenge, a pass,
	// and none for anything else.
	check := func(name string, n *node.Node, onlyEdge peer.ID) {
		got := map[due]int{}
		err := n.Receipts().List(proofs.Filter{}, func(_ cid.Cid, r proofs.Receipt) error {
			if r.Round < start || r.Round >= end {
				return nil
			}
			d := due{r.Round, r.Keeper, r.Edge}
			if !want[d] {
				t.Errorf("%s holds a receipt the schedule did not call for: %+v", name, r)
			}
			if r.Result != proofs.Pass {
				t.Errorf("%s: %s receipt for an online edge: %s", name, r.Result, r.Reason)
			}
			got[d]++
			return nil
		})
		if err != nil {
			t.Fatal(err)
		}
		for d := range want {
			if onlyEdge != "" && d.edge != onlyEdge {
				continue
			}
			if got[d] != 1 {
				t.Errorf("%s holds %d receipts for round %d keeper %s edge %s; want 1", name, got[d], d.round, d.keeper, d.edge)
			}
		}
	}
	for i, k := range tn.keepers {
		check(fmt.Sprintf("keeper %d", i), k, "")
	}
	for i, e := range tn.edges {
		check(fmt.Sprintf("edge %d", i), e, e.Host().ID())
	}
	t.Logf("%d challenges in rounds %d..%d, each with one receipt on 3 keepers and its edge", len(want), start, end-1)
}

// challengeParamsOf is the engine's view of the test network.
func challengeParamsOf(nw config.Network, tn *testNet) (challenge.Params, error) {
	p := challenge.Params{
		Network: nw.Name, EpochRounds: nw.EpochRounds, CommitteeSize: nw.CommitteeSize,
		Probability: nw.Probability, Deadline: nw.Deadline, Retries: nw.Retries, Window: nw.Window,
	}
	for _, k := range tn.keepers {
		p.Keepers = append(p.Keepers, challenge.Keeper{ID: k.Host().ID(), Stake: 100})
	}
	return p, p.Validate()
}
