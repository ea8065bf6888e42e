package node_test

import (
	"bytes"
	"context"
	"fmt"
	"net"
	"slices"
	"testing"
	"time"

	"github.com/ipfs/go-cid"
	"github.com/libp2p/go-libp2p/core/network"
	"github.com/libp2p/go-libp2p/core/peer"
	"github.com/libp2p/go-libp2p/core/protocol"
	ma "github.com/multiformats/go-multiaddr"

	"github.com/aropeer/aropeer/bandwidth"
	"github.com/aropeer/aropeer/challenge"
	"github.com/aropeer/aropeer/liveness"
	"github.com/aropeer/aropeer/node"
	"github.com/aropeer/aropeer/node/config"
	"github.com/aropeer/aropeer/proofs"
	"github.com/aropeer/aropeer/wire"
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
	nw.Window = 10 // each of 4 attempts may take a 2-second deadline
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

	// The bootstrap node runs the beacon, so it holds every round.
	src := tn.bootstrap.Beacon()
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

	// The overlay keeps the connections challenges and gossip travel on
	// from trimming: a keeper's to the other keepers and to the edges it
	// challenges, for two epochs, so the one before the last is checked;
	// an edge's to its committee of now.
	committees := func(epoch uint64) *challenge.Committees {
		first, err := src.Get(ctx, params.FirstRound(epoch))
		if err != nil {
			t.Fatal(err)
		}
		return challenge.NewCommittees(first, epoch, edgeIDs, params)
	}
	cs := committees(params.EpochOf(end) - 1)
	protects := func(n *node.Node, p peer.ID) bool { return n.Host().ConnManager().IsProtected(p, "aro-overlay") }
	for i, k := range tn.keepers {
		for _, o := range tn.keepers {
			if o != k && !protects(k, o.Host().ID()) {
				t.Errorf("keeper %d does not protect its connection to keeper %s", i, o.Host().ID())
			}
		}
		for _, e := range cs.EdgesOf(k.Host().ID()) {
			if !protects(k, e) {
				t.Errorf("keeper %d does not protect its connection to edge %s, which it challenges", i, e)
			}
		}
	}
	for i, e := range tn.edges {
		eventually(t, time.Minute, fmt.Sprintf("edge %d protects its committee", i), func() bool {
			epoch := params.EpochOf(info.RoundAt(time.Now()))
			for _, k := range committees(epoch).Of(e.Host().ID()) {
				if !protects(e, k) {
					return false
				}
			}
			return params.EpochOf(info.RoundAt(time.Now())) == epoch
		})
	}
}

// TestEdgeLeavesOtherKeepers: an edge connected to every keeper, as a
// DHT put leaves it, closes its connections to the keepers outside its
// committee of the epoch, those of its committee of the epoch before
// among them once that epoch's window of retries has run out, and keeps
// those to its committee.
func TestEdgeLeavesOtherKeepers(t *testing.T) {
	ctx, cancel := context.WithTimeout(context.Background(), 2*time.Minute)
	defer cancel()
	nw := shortEpochs(t)
	nw.CommitteeSize = 2
	nw.Retries, nw.Window = 1, 2 // the window ends inside the next epoch
	tn := startNetwork(t, ctx, 5, 1, challengeNet(nw, keepersOf(5))...)
	edge := tn.edges[0]
	params, err := challengeParamsOf(nw, tn)
	if err != nil {
		t.Fatal(err)
	}
	src := tn.bootstrap.Beacon()
	waitRound(t, ctx, edge, params.FirstRound(params.EpochOf(src.Info().RoundAt(time.Now()))+2)+1)
	for _, k := range tn.keepers {
		if err := edge.Host().Connect(ctx, peer.AddrInfo{ID: k.Host().ID(), Addrs: k.Host().Addrs()}); err != nil {
			t.Fatal(err)
		}
	}
	committee := func(epoch uint64) []peer.ID {
		first, err := src.Get(ctx, params.FirstRound(epoch))
		if err != nil {
			t.Fatal(err)
		}
		return challenge.NewCommittees(first, epoch, []peer.ID{edge.Host().ID()}, params).Of(edge.Host().ID())
	}
	var connected []peer.ID
	eventually(t, time.Minute, "the edge is connected to its committee's keepers only, not to those it had before", func() bool {
		epoch := params.EpochOf(src.Info().RoundAt(time.Now()))
		now, before := committee(epoch), committee(epoch-1)
		if !slices.ContainsFunc(before, func(k peer.ID) bool { return !slices.Contains(now, k) }) {
			return false // nothing to leave in this epoch
		}
		connected = connected[:0]
		for _, k := range tn.keepers {
			id := k.Host().ID()
			in := edge.Host().Network().Connectedness(id) == network.Connected
			if in {
				connected = append(connected, id)
			}
			if in != slices.Contains(now, id) {
				return false
			}
		}
		return params.EpochOf(src.Info().RoundAt(time.Now())) == epoch
	})
	t.Logf("connected to %d of %d keepers", len(connected), len(tn.keepers))
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

// TestOfflineEdge stops an edge: the keepers' challenges to it time out,
// are retried in the next rounds, and fail once containment runs out, and
// its uptime in the epoch falls below that of the edges still up.
func TestOfflineEdge(t *testing.T) {
	ctx, cancel := context.WithTimeout(context.Background(), 3*time.Minute)
	defer cancel()
	nw := shortEpochs(t)
	nw.EpochRounds = 6
	nw.Probability = map[proofs.Kind]float64{proofs.KindLiveness: 1}
	tn := startNetwork(t, ctx, 3, 4, challengeNet(nw, keepersOf(3))...)
	keeper := tn.keepers[0]
	info := keeper.Beacon().Info()

	// Run until the keeper has seen the edge answer: an epoch begun
	// before the beacon started has no committees, so challenges begin
	// with the first whole epoch.
	offline := tn.edges[0]
	offlineID := offline.Host().ID()
	eventually(t, time.Minute, "the keeper holds a pass of the edge", func() bool {
		passed := false
		keeper.Receipts().List(proofs.Filter{Edge: offlineID}, func(_ cid.Cid, r proofs.Receipt) error {
			passed = passed || r.Result == proofs.Pass
			return nil
		})
		return passed
	})
	tn.stops[slices.Index(tn.nodes, offline)]()
	stoppedAt := info.RoundAt(time.Now())
	waitRound(t, ctx, keeper, stoppedAt+nw.Window+3)

	// Challenges of rounds after the stop: every attempt but the last
	// timed out, and the last failed.
	type try struct{ attempts []proofs.Result }
	byChallenge := map[cid.Cid]*try{}
	err := keeper.Receipts().List(proofs.Filter{Edge: offlineID}, func(_ cid.Cid, r proofs.Receipt) error {
		if r.Round <= stoppedAt {
			return nil
		}
		c := byChallenge[r.Challenge]
		if c == nil {
			c = &try{attempts: make([]proofs.Result, nw.Retries+1)}
			byChallenge[r.Challenge] = c
		}
		c.attempts[r.Attempt] = r.Result
		return nil
	})
	if err != nil {
		t.Fatal(err)
	}
	complete := 0
	for id, c := range byChallenge {
		if c.attempts[nw.Retries] == "" {
			continue // still in containment when the test looked
		}
		complete++
		for a, res := range c.attempts {
			want := proofs.Timeout
			if a == int(nw.Retries) {
				want = proofs.Fail
			}
			if res != want {
				t.Errorf("challenge %s attempt %d: %q; want %q", id, a, res, want)
			}
		}
	}
	if complete == 0 {
		t.Fatal("no challenge of the offline edge ran out of retries")
	}

	// Its uptime falls below that of an edge that stayed up.
	epoch := challenge.Params{EpochRounds: nw.EpochRounds}.EpochOf(stoppedAt + 1)
	down, ok, err := keeper.Receipts().Uptime(offlineID, epoch)
	if err != nil || !ok {
		t.Fatalf("uptime of the offline edge: %v %v", ok, err)
	}
	up, ok, err := keeper.Receipts().Uptime(tn.edges[1].Host().ID(), epoch)
	if err != nil || !ok {
		t.Fatalf("uptime of an online edge: %v %v", ok, err)
	}
	if up != 1 || down >= 1 {
		t.Errorf("uptime: online edge %.2f, offline edge %.2f; want 1 and below 1", up, down)
	}
	t.Logf("%d challenges ran out of retries; uptime %.2f offline, %.2f online", complete, down, up)
}

// TestForgedChallenges has a genesis keeper publish challenges the
// schedule did not call for, and send them to edges: every keeper's
// validator rejects them, its gossip score falls, and the edges refuse
// them. The
// edges offer bandwidth too (never scheduled here): a bandwidth challenge
// from a keeper outside the edge's committee gets no byte of keystream.
func TestForgedChallenges(t *testing.T) {
	ctx, cancel := context.WithTimeout(context.Background(), 3*time.Minute)
	defer cancel()
	nw := shortEpochs(t)
	forgerKey, forgerID := newKey(t)
	listForger := func(_ int, _ []peer.ID, cfg *config.Config, _ *[]node.Option) {
		cfg.Keepers = append(cfg.Keepers, fmt.Sprintf("%s=100", forgerID))
		if cfg.HasRole(config.RoleEdge) {
			cfg.Offers = []string{"bandwidth"}
			cfg.Bandwidth.UpMbit, cfg.Bandwidth.DownMbit = 10, 10
		}
	}
	tn := startNetwork(t, ctx, 3, 6, challengeNet(nw, keepersOf(3), listForger)...)
	keeper := tn.keepers[0]
	info := keeper.Beacon().Info()
	params, err := challengeParamsOf(nw, tn)
	if err != nil {
		t.Fatal(err)
	}
	params.Keepers = append(params.Keepers, challenge.Keeper{ID: forgerID, Stake: 100})

	// Wait for a whole epoch, whose committees everyone can compute.
	epoch := params.EpochOf(info.RoundAt(time.Now())) + 1
	waitRound(t, ctx, keeper, params.FirstRound(epoch)+1)
	var edgeIDs []peer.ID
	for _, e := range tn.edges {
		edgeIDs = append(edgeIDs, e.Host().ID())
	}

	// The forger joins the gossip with plain gossipsub and no validators.
	forger, err := tn.mn.AddPeer(forgerKey, mocknetAddr(t))
	if err != nil {
		t.Fatal(err)
	}
	// The keepers take in the challenges topic; edges do not.
	victims := tn.keepers
	topic := tn.attack(t, ctx, forger, victims, nw.Topic(config.TopicChallenges))

	// forge makes a challenge of the current round for edge: with a seed
	// that the beacon did not give (on the committee or not, it is not
	// scheduled), or for an edge whose committee the forger is not on.
	forge := func(edge peer.ID, kinds ...proofs.Kind) []byte {
		kind := proofs.KindLiveness
		if len(kinds) > 0 {
			kind = kinds[0]
		}
		round := info.RoundAt(time.Now())
		c := proofs.Challenge{
			Network: nw.Name, Epoch: params.EpochOf(round), Round: round,
			Keeper: forgerID, Edge: edge, Kind: kind,
			Seed: bytes.Repeat([]byte{7}, 32),
		}
		env, _, err := proofs.SealChallenge(forgerKey, c)
		if err != nil {
			t.Fatal(err)
		}
		return env
	}
	eventually(t, 30*time.Second, "every victim scores the forger below zero", func() bool {
		// Keepers gossip challenges in bundles: the forger's are well
		// formed, and refused for what they hold.
		for _, e := range tn.edges {
			b, err := node.SealBundle(forgerKey, proofs.ChallengeDomain, [][]byte{forge(e.Host().ID())})
			if err != nil {
				t.Fatal(err)
			}
			if err := topic.Publish(ctx, b); err != nil {
				t.Fatal(err)
			}
		}
		for _, v := range victims {
			if s, ok := v.Gossip().Score(forgerID); !ok || s >= 0 {
				return false
			}
		}
		return true
	})

	// Sent straight to the edges, the forged challenges are refused: one
	// to an edge whose committee the forger is on, one to an edge whose
	// committee it is not on.
	// The committees of the epoch the forged challenges are sent in; a
	// later epoch if the forger sits on every edge's committee or none.
	var on, off *node.Node
	for tries := 0; (on == nil || off == nil) && tries < 8; tries++ {
		epoch := params.EpochOf(info.RoundAt(time.Now()))
		if tries > 0 {
			epoch++
			waitRound(t, ctx, keeper, params.FirstRound(epoch))
		}
		first, err := keeper.Beacon().Get(ctx, params.FirstRound(epoch))
		if err != nil {
			t.Fatal(err)
		}
		cs := challenge.NewCommittees(first, epoch, edgeIDs, params)
		on, off = nil, nil
		for _, e := range tn.edges {
			if cs.Has(e.Host().ID(), forgerID) {
				on = e
			} else {
				off = e
			}
		}
	}
	for _, e := range []*node.Node{on, off} {
		if e == nil {
			continue
		}
		for _, k := range []struct {
			kind     proofs.Kind
			protocol protocol.ID
		}{{proofs.KindLiveness, liveness.Protocol}, {proofs.KindBandwidth, bandwidth.Protocol}} {
			refused := e.Engine().Stats().Refused
			s, err := forger.NewStream(ctx, e.Host().ID(), k.protocol)
			if err != nil {
				t.Fatal(err)
			}
			if err := wire.WriteFrame(s, forge(e.Host().ID(), k.kind), time.Now().Add(5*time.Second)); err != nil {
				t.Fatal(err)
			}
			if n, err := s.Read(make([]byte, 1)); n > 0 || err == nil {
				t.Errorf("edge %s answered a forged %s challenge", e.Host().ID(), k.kind)
			}
			s.Reset()
			eventually(t, 10*time.Second, "the edge counts the refusal", func() bool {
				return e.Engine().Stats().Refused > refused
			})
		}
	}
	if on == nil || off == nil {
		t.Logf("the forger is on %v of the committees; one case was not exercised", on != nil)
	}
	// No keeper stored a receipt signed by the forger.
	for i, k := range tn.keepers {
		k.Receipts().List(proofs.Filter{Keeper: forgerID}, func(_ cid.Cid, r proofs.Receipt) error {
			t.Errorf("keeper %d holds a receipt of the forger: %+v", i, r)
			return nil
		})
	}
}

// TestManifestRecordFollowsTheManifest: an edge whose manifest changes
// stores the new one in the DHT on its records' next turn (30 s), not at
// the next republish of an unchanged record an hour on: the keeper reads
// the piece the edge added.
func TestManifestRecordFollowsTheManifest(t *testing.T) {
	ctx, cancel := context.WithTimeout(context.Background(), 2*time.Minute)
	defer cancel()
	offerStorage := func(_ int, _ []peer.ID, cfg *config.Config, opts *[]node.Option) {
		if cfg.HasRole(config.RoleEdge) {
			cfg.Offers = []string{"storage"}
			// Its pieces go in a directory of the test's, not the package's.
			*opts = append(*opts, node.WithDataDir(t.TempDir()))
		}
	}
	tn := startNetwork(t, ctx, 1, 1, challengeNet(shortEpochs(t), keepersOf(1), offerStorage)...)
	keeper, edge := tn.keepers[0], tn.edges[0]
	record := func() (proofs.Manifest, bool) {
		gctx, gcancel := context.WithTimeout(ctx, 5*time.Second)
		defer gcancel()
		env, err := keeper.DHT().GetValue(gctx, node.ManifestKey(edge.Host().ID()))
		if err != nil {
			return proofs.Manifest{}, false
		}
		m, _, err := proofs.OpenManifest(env)
		return m, err == nil
	}
	eventually(t, time.Minute, "the keeper reads the edge's first manifest record", func() bool {
		_, ok := record()
		return ok
	})
	data := bytes.Repeat([]byte("aropeer piece "), 5000)
	p, err := edge.Pieces().Add(ctx, bytes.NewReader(data), int64(len(data)), "test", nil)
	if err != nil {
		t.Fatal(err)
	}
	if err := edge.RefreshManifest(ctx); err != nil {
		t.Fatal(err)
	}
	eventually(t, time.Minute, "the keeper reads the record of the manifest with the piece", func() bool {
		m, ok := record()
		if !ok {
			return false
		}
		for _, o := range m.Offers {
			for _, q := range o.Pieces {
				if q.CID.Equals(p.CID) {
					return true
				}
			}
		}
		return false
	})
}

// mocknetAddr is a fresh address in mocknet's range.
func mocknetAddr(t *testing.T) ma.Multiaddr {
	t.Helper()
	ip := make(net.IP, net.IPv6len)
	copy(ip, mocknetNet.IP)
	ip[15] = byte(time.Now().UnixNano())
	ip[14] = byte(time.Now().UnixNano() >> 8)
	return ma.StringCast(fmt.Sprintf("/ip6/%s/tcp/4242", ip))
}

// TestManifestRecords checks that a keeper finds every edge's manifest in
// the DHT, signed by that edge.
func TestManifestRecords(t *testing.T) {
	ctx, cancel := context.WithTimeout(context.Background(), 2*time.Minute)
	defer cancel()
	tn := startNetwork(t, ctx, 1, 4, challengeNet(shortEpochs(t), keepersOf(1))...)
	keeper := tn.keepers[0]
	for _, e := range tn.edges {
		id := e.Host().ID()
		eventually(t, time.Minute, "the keeper reads the edge's manifest record", func() bool {
			gctx, gcancel := context.WithTimeout(ctx, 5*time.Second)
			defer gcancel()
			env, err := keeper.DHT().GetValue(gctx, node.ManifestKey(id))
			if err != nil {
				return false
			}
			m, _, err := proofs.OpenManifest(env)
			return err == nil && m.Edge == id && keeper.Engine().HasManifest(id)
		})
	}
}
