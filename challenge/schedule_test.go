package challenge

import (
	"bytes"
	"cmp"
	"crypto/sha256"
	"encoding/binary"
	"fmt"
	"math"
	"slices"
	"testing"

	"github.com/ipfs/go-cid"
	"github.com/libp2p/go-libp2p/core/peer"
	"github.com/multiformats/go-multihash"

	"github.com/aropeer/aropeer/beacon"
	"github.com/aropeer/aropeer/proofs"
)

// manifestOf is edge's manifest offering kinds on network.
func manifestOf(network string, edge peer.ID, kinds ...proofs.Kind) proofs.Manifest {
	m := proofs.Manifest{Network: network, Edge: edge, Seq: 1}
	for _, k := range kinds {
		o := proofs.Offer{Kind: k}
		if k == proofs.KindStorage {
			o.Pieces = []proofs.Piece{{CID: syntheticPiece(string(edge)), Size: 1 << 20}}
		}
		m.Offers = append(m.Offers, o)
	}
	m.Normalize()
	return m
}

// syntheticPiece is a well-formed Filecoin piece CID named by label.
func syntheticPiece(label string) cid.Cid {
	d := sha256.Sum256([]byte(label))
	d[31] &= 0x3f
	mh, err := multihash.Encode(d[:], multihash.SHA2_256_TRUNC254_PADDED)
	if err != nil {
		panic(err)
	}
	return cid.NewCidV1(cid.FilCommitmentUnsealed, mh)
}

// names maps synthetic IDs back to their labels, for readable tables.
type names map[peer.ID]string

func (n names) id(label string) peer.ID {
	id := syntheticID(label)
	n[id] = label
	return id
}

func (n names) due(d Due) string {
	return fmt.Sprintf("%s %s %s", n[d.Keeper], n[d.Edge], d.Kind)
}

// TestScheduleTable pins one small round: four keepers with committees
// of two, an edge offering liveness, storage and compute, one offering
// liveness and bandwidth, one without a manifest and one whose manifest
// is of another network. Bandwidth is due always, compute never.
func TestScheduleTable(t *testing.T) {
	n := names{}
	p := validParams()
	p.EpochRounds = 5
	p.CommitteeSize = 2
	p.Probability = map[proofs.Kind]float64{
		proofs.KindLiveness: 0.5, proofs.KindStorage: 0.5, proofs.KindBandwidth: 1, proofs.KindCompute: 0,
	}
	p.Keepers = nil
	for i := range 4 {
		p.Keepers = append(p.Keepers, Keeper{ID: n.id(fmt.Sprint("k", i)), Stake: uint64(i + 1)})
	}
	e0, e1, e2, e3 := n.id("e0"), n.id("e1"), n.id("e2"), n.id("e3")
	manifests := map[peer.ID]proofs.Manifest{
		e0: manifestOf(p.Network, e0, proofs.KindLiveness, proofs.KindStorage, proofs.KindCompute),
		e1: manifestOf(p.Network, e1, proofs.KindLiveness, proofs.KindBandwidth),
		e3: manifestOf("othernet", e3, proofs.KindLiveness, proofs.KindBandwidth),
	}
	cs := NewCommittees(syntheticBeacon(p.FirstRound(1)), 1, []peer.ID{e0, e1, e2, e3}, p)
	committees := map[string][]string{}
	for _, e := range []peer.ID{e0, e1, e2, e3} {
		for _, k := range cs.Of(e) {
			committees[n[e]] = append(committees[n[e]], n[k])
		}
	}
	wantCommittees := map[string][]string{
		"e0": {"k3", "k2"}, "e1": {"k3", "k2"}, "e2": {"k2", "k3"}, "e3": {"k3", "k1"},
	}
	if fmt.Sprint(committees) != fmt.Sprint(wantCommittees) {
		t.Fatalf("committees %v, want %v", committees, wantCommittees)
	}

	b := syntheticBeacon(8)
	var got []string
	for _, d := range Schedule(b, cs, manifests, p) {
		got = append(got, n.due(d))
	}
	// Keepers and edges sort by peer ID bytes (here also by label); e2
	// has no manifest and e3's is of another network, so neither is
	// challenged; compute is never due, bandwidth always.
	want := []string{
		"k2 e0 liveness",
		"k2 e0 storage",
		"k2 e1 bandwidth",
		"k2 e1 liveness",
		"k3 e0 liveness",
		"k3 e0 storage",
		"k3 e1 bandwidth",
	}
	if !slices.Equal(got, want) {
		t.Errorf("Schedule of round 8:\n got %q\nwant %q", got, want)
	}
}

// TestScheduleIsIsDue checks Schedule, which reuses hash states, against
// IsDue, which hashes every seed with beacon.Seed, over many rounds: the
// same challenges, the same seeds, in (keeper, edge, kind) order.
func TestScheduleIsIsDue(t *testing.T) {
	p, edges, manifests := rateNetwork()
	for r := uint64(1); r <= 200; r++ {
		epoch := p.EpochOf(r)
		cs := NewCommittees(syntheticBeacon(p.FirstRound(epoch)), epoch, edges, p)
		b := syntheticBeacon(r)
		got := Schedule(b, cs, manifests, p)
		var want []Due
		for _, edge := range edges {
			m, ok := manifests[edge]
			if !ok || m.Network != p.Network {
				continue
			}
			for _, k := range cs.Of(edge) {
				for _, o := range m.Offers {
					if d, due := IsDue(b, k, edge, o.Kind, p); due {
						want = append(want, d)
					}
				}
			}
		}
		slices.SortFunc(want, func(a, b Due) int {
			return cmp.Or(cmp.Compare(a.Keeper, b.Keeper), cmp.Compare(a.Edge, b.Edge), cmp.Compare(a.Kind, b.Kind))
		})
		if !slices.Equal(got, want) {
			t.Fatalf("round %d: Schedule gives %d challenges, IsDue %d, or they differ", r, len(got), len(want))
		}
		for _, d := range got {
			if d.Epoch != epoch || d.Round != r {
				t.Fatalf("round %d: due %+v has the wrong round or epoch", r, d)
			}
		}
	}
}

// rateNetwork is 24 edges and 8 keepers with committees of 3. Every edge
// offers liveness and compute; edges 0-5 offer no storage, 6-11 no
// bandwidth; edge 12 has no manifest and edge 13 one of another network.
// Liveness is due always, storage with 0.3, bandwidth 0.05 (in one
// round of 5), compute never.
func rateNetwork() (Params, []peer.ID, map[peer.ID]proofs.Manifest) {
	p := validParams()
	p.EpochRounds = 50
	p.ProbeRounds = 5
	p.Probability = map[proofs.Kind]float64{
		proofs.KindLiveness: 1, proofs.KindStorage: 0.3, proofs.KindBandwidth: 0.05, proofs.KindCompute: 0,
	}
	p.Keepers = nil
	for i := range 8 {
		p.Keepers = append(p.Keepers, Keeper{ID: syntheticID(fmt.Sprint("rate keeper ", i)), Stake: uint64(i%3 + 1)})
	}
	var edges []peer.ID
	manifests := map[peer.ID]proofs.Manifest{}
	for i := range 24 {
		e := syntheticID(fmt.Sprint("rate edge ", i))
		edges = append(edges, e)
		kinds := []proofs.Kind{proofs.KindLiveness, proofs.KindCompute}
		if i >= 6 {
			kinds = append(kinds, proofs.KindStorage)
		}
		if i < 6 || i >= 12 {
			kinds = append(kinds, proofs.KindBandwidth)
		}
		switch i {
		case 12:
		case 13:
			manifests[e] = manifestOf("othernet", e, kinds...)
		default:
			manifests[e] = manifestOf(p.Network, e, kinds...)
		}
	}
	return p, edges, manifests
}

// TestScheduleRates runs 4,000 rounds (80 epochs) of rateNetwork and
// counts challenges per kind against the chances to challenge (committee
// seats of edges offering the kind, per round; for bandwidth, challenged
// by the whole committee together, edges offering it per round): liveness on every one,
// compute on none, storage and bandwidth within 4 binomial standard
// deviations of their probabilities. No challenge is of a kind its edge
// does not offer, or of an edge without a manifest of this network; no
// two bandwidth probes of an edge come closer than ProbeRounds rounds.
func TestScheduleRates(t *testing.T) {
	p, edges, manifests := rateNetwork()
	const rounds = 4000
	chances := map[proofs.Kind]int{}
	got := map[proofs.Kind]int{}
	lastProbe := map[peer.ID]uint64{}
	var cs *Committees
	for r := uint64(1); r <= rounds; r++ {
		if epoch := p.EpochOf(r); cs == nil || cs.Epoch() != epoch {
			cs = NewCommittees(syntheticBeacon(p.FirstRound(epoch)), epoch, edges, p)
		}
		// A kind challenged Together is one chance per edge and round,
		// taken by the whole committee or by none of it.
		together := map[peer.ID]map[proofs.Kind]int{}
		for _, d := range Schedule(syntheticBeacon(r), cs, manifests, p) {
			m, ok := manifests[d.Edge]
			if !ok || m.Network != p.Network {
				t.Fatalf("round %d: %s challenged without a manifest of %s", r, d.Edge, p.Network)
			}
			if _, ok := m.Offer(d.Kind); !ok {
				t.Fatalf("round %d: %s challenged on %s, which it does not offer", r, d.Edge, d.Kind)
			}
			if !cs.Has(d.Edge, d.Keeper) {
				t.Fatalf("round %d: %s challenged by %s, not on its committee", r, d.Edge, d.Keeper)
			}
			if Together(d.Kind) {
				if together[d.Edge] == nil {
					together[d.Edge] = map[proofs.Kind]int{}
				}
				if together[d.Edge][d.Kind]++; together[d.Edge][d.Kind] == 1 {
					got[d.Kind]++
					if last, ok := lastProbe[d.Edge]; ok && r-last < p.ProbeRounds {
						t.Fatalf("round %d: %s probed again %d rounds after the last probe, want at least %d", r, d.Edge, r-last, p.ProbeRounds)
					}
					lastProbe[d.Edge] = r
				}
				continue
			}
			got[d.Kind]++
		}
		for e, kinds := range together {
			for k, n := range kinds {
				if n != len(cs.Of(e)) {
					t.Fatalf("round %d: %d of edge %s's %d committee keepers due on %s, want all or none", r, n, e, len(cs.Of(e)), k)
				}
			}
		}
		for _, e := range edges {
			if m, ok := manifests[e]; ok && m.Network == p.Network {
				for _, o := range m.Offers {
					if Together(o.Kind) {
						chances[o.Kind]++
					} else {
						chances[o.Kind] += len(cs.Of(e))
					}
				}
			}
		}
	}
	for _, k := range proofs.Kinds() {
		prob, n := p.Probability[k], float64(chances[k])
		mean, sigma := n*prob, math.Sqrt(n*prob*(1-prob))
		if math.Abs(float64(got[k])-mean) > 4*sigma || (sigma == 0 && float64(got[k]) != mean) {
			t.Errorf("%s: %d challenges of %d chances, want %.0f ± %.1f (p = %v)", k, got[k], chances[k], mean, 4*sigma, prob)
		} else {
			t.Logf("%s: %d challenges of %d chances, expected %.0f ± %.1f (4 sigma)", k, got[k], chances[k], mean, 4*sigma)
		}
	}
}

func TestScheduleWrongCommittees(t *testing.T) {
	p, edges, manifests := rateNetwork()
	cs := NewCommittees(syntheticBeacon(p.FirstRound(2)), 2, edges, p)
	if Schedule(syntheticBeacon(p.FirstRound(2)), cs, manifests, p) == nil {
		t.Fatal("no challenges in the epoch's own first round: the test proves nothing")
	}
	if got := Schedule(syntheticBeacon(p.FirstRound(3)), cs, manifests, p); got != nil {
		t.Errorf("epoch 2's committees scheduled %d challenges in epoch 3", len(got))
	}
	// Committees drawn from a beacon other than the first round's.
	wrong := NewCommittees(syntheticBeacon(p.FirstRound(2)+1), 2, edges, p)
	if got := Schedule(syntheticBeacon(p.FirstRound(2)+3), wrong, manifests, p); got != nil {
		t.Errorf("committees drawn from round %d scheduled %d challenges", wrong.Round(), len(got))
	}
	if got := Schedule(syntheticBeacon(1), nil, manifests, p); got != nil {
		t.Errorf("nil committees scheduled %d challenges", len(got))
	}
}

func TestIsDueThreshold(t *testing.T) {
	p := validParams()
	k, e := syntheticID("k"), syntheticID("e")
	dues := 0
	for r := uint64(1); r <= 200; r++ {
		b := syntheticBeacon(r)
		if _, due := IsDue(b, k, e, proofs.KindLiveness, p); !due {
			t.Fatalf("round %d: probability 1 not due", r)
		}
		for _, kind := range []proofs.Kind{proofs.KindCompute, "gpu"} {
			if _, due := IsDue(b, k, e, kind, p); due {
				t.Fatalf("round %d: %s (probability 0 or none) due", r, kind)
			}
		}
		d, due := IsDue(b, k, e, proofs.KindStorage, p)
		// The float64 nearest 0.3, times 2^64, is 5534023222112865280
		// exactly (Python: int(Fraction(0.3) * 2**64)).
		if x := binary.BigEndian.Uint64(d.Seed[:8]); due != (x < 5534023222112865280) {
			t.Fatalf("round %d: x = %d due %v at probability 0.3", r, x, due)
		}
		dues += map[bool]int{true: 1}[due]
		if want := beacon.Seed(b, "aro/challenge", []byte(k), []byte(e), []byte("storage")); d.Seed != want {
			t.Fatalf("round %d: seed %x, want %x", r, d.Seed, want)
		}
	}
	if dues < 40 || dues > 80 {
		t.Errorf("storage due in %d of 200 rounds at probability 0.3", dues)
	}
}

func TestDueChallenge(t *testing.T) {
	p := validParams()
	d, _ := IsDue(syntheticBeacon(25), syntheticID("k"), syntheticID("e"), proofs.KindStorage, p)
	c := must(d.Challenge("testnet", manifestOf("testnet", d.Edge, proofs.KindStorage)))
	if c.Network != "testnet" || c.Epoch != 2 || c.Round != 25 || c.Keeper != d.Keeper || c.Edge != d.Edge ||
		c.Kind != proofs.KindStorage || c.Attempt != 0 || !bytes.Equal(c.Seed, d.Seed[:]) {
		t.Fatalf("Challenge() = %+v from %+v", c, d)
	}
	c.Seed[0] ^= 1
	if d.Seed[0] == c.Seed[0] {
		t.Error("the challenge shares the due's seed array")
	}
}

// TestStagger: a peer's round among every is fixed and in range, and a
// thousand edges spread over the rounds rather than bunch in one, which
// would make the burst staggering is for.
func TestStagger(t *testing.T) {
	const every, edges = 10, 1000
	counts := make([]int, every)
	for i := range edges {
		id := syntheticID(fmt.Sprint("stagger edge ", i))
		s := Stagger(id, every)
		if s >= every {
			t.Fatalf("edge %d: round %d of %d", i, s, every)
		}
		if again := Stagger(id, every); again != s {
			t.Fatalf("edge %d: round %d, then %d", i, s, again)
		}
		counts[s]++
	}
	// 100 a round on average; 60 is four standard deviations below.
	for r, n := range counts {
		if n < 60 || n > 140 {
			t.Errorf("round %d of %d has %d of %d edges: %v", r, every, n, edges, counts)
		}
	}
	for _, every := range []uint64{0, 1} {
		if s := Stagger(syntheticID("any"), every); s != 0 {
			t.Errorf("Stagger(id, %d) = %d, want 0", every, s)
		}
	}
}

// TestAnnounceDue: an edge announces its manifest in each of its first
// rounds, then once every announceEvery rounds, in its own round, so that
// edges do not all announce at once.
func TestAnnounceDue(t *testing.T) {
	var rounds [2][]uint64
	for i, name := range []string{"edge a", "edge c"} {
		e := &Engine{self: syntheticID(name), cfg: Config{Params: Params{EpochRounds: 30}}}
		if !e.announceDue(7) {
			t.Errorf("%s: no announcement before its first three", name)
		}
		e.stats.ManifestsPublished = 3
		for r := uint64(100); r < 100+3*announceEvery; r++ {
			if e.announceDue(r) {
				rounds[i] = append(rounds[i], r)
			}
		}
		if len(rounds[i]) != 3 || rounds[i][1]-rounds[i][0] != announceEvery || rounds[i][2]-rounds[i][1] != announceEvery {
			t.Errorf("%s announces in rounds %v of %d to %d, want one every %d", name, rounds[i], 100, 100+3*announceEvery-1, announceEvery)
		}
	}
	if len(rounds[0]) > 0 && len(rounds[1]) > 0 && rounds[0][0] == rounds[1][0] {
		t.Errorf("two edges with different stagger rounds (%d, %d) announce together in round %d",
			Stagger(syntheticID("edge a"), announceEvery), Stagger(syntheticID("edge c"), announceEvery), rounds[0][0])
	}
}
