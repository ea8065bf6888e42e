package challenge

import (
	"crypto/sha256"
	"encoding/binary"
	"encoding/hex"
	"encoding/json"
	"fmt"
	"math"
	"os"
	"path/filepath"
	"slices"
	"testing"

	"github.com/libp2p/go-libp2p/core/peer"

	"github.com/aropeer/aropeer/beacon"
)

// syntheticID returns a well-formed Ed25519-style peer ID (identity
// multihash of a protobuf public key) whose key bytes are SHA-256(label).
// Peer ID parsing checks the multihash, not the key, so it serves as any
// peer's ID without the cost of key generation.
func syntheticID(label string) peer.ID {
	key := sha256.Sum256([]byte(label))
	return peer.ID(append([]byte{0x00, 0x24, 0x08, 0x01, 0x12, 0x20}, key[:]...))
}

// syntheticBeacon is a distinct beacon for round r: the signature is
// SHA-256 of the round, the randomness derived from it as drand does.
func syntheticBeacon(r uint64) beacon.Beacon {
	var n [8]byte
	binary.BigEndian.PutUint64(n[:], r)
	sig := sha256.Sum256(n[:])
	return beacon.Complete(beacon.Beacon{Round: r, Signature: sig[:]})
}

type committeeVectors struct {
	Cases []struct {
		Name       string `json:"name"`
		Beacon     string `json:"beacon"`
		Round      uint64 `json:"round"`
		Randomness string `json:"randomness"`
		K          int    `json:"k"`
		Keepers    []struct {
			ID    string `json:"id"`
			Stake uint64 `json:"stake"`
		} `json:"keepers"`
		Committees []struct {
			Edge    string   `json:"edge"`
			Keepers []string `json:"keepers"`
		} `json:"committees"`
	} `json:"cases"`
}

// TestCommitteeVectors recomputes testdata/committee_vectors.json, whose
// committees committee_vectors.py computed from real drand beacons with
// the score -stake/ln(u) in 80-digit arithmetic, independently of the
// fixed-point logarithm here.
func TestCommitteeVectors(t *testing.T) {
	data, err := os.ReadFile(filepath.Join("testdata", "committee_vectors.json"))
	if err != nil {
		t.Fatal(err)
	}
	var vec committeeVectors
	if err := json.Unmarshal(data, &vec); err != nil {
		t.Fatal(err)
	}
	if len(vec.Cases) < 6 {
		t.Fatalf("only %d cases", len(vec.Cases))
	}
	for _, c := range vec.Cases {
		t.Run(c.Name, func(t *testing.T) {
			b := goldenBeacon(t, c.Beacon)
			if b.Round != c.Round || hex.EncodeToString(b.Randomness) != c.Randomness {
				t.Fatalf("vector beacon (round %d, randomness %s) is not %s's", c.Round, c.Randomness, c.Beacon)
			}
			keepers := make([]Keeper, len(c.Keepers))
			for i, k := range c.Keepers {
				keepers[i] = Keeper{ID: decodeID(t, k.ID), Stake: k.Stake}
			}
			p := Params{EpochRounds: b.Round, CommitteeSize: c.K, Keepers: keepers} // b is epoch 0's... first round only when EpochRounds divides; see below
			var edges []peer.ID
			for _, want := range c.Committees {
				edge := decodeID(t, want.Edge)
				edges = append(edges, edge)
				got := Committee(b, edge, keepers, c.K)
				if !slices.Equal(got, decodeIDs(t, want.Keepers)) {
					t.Errorf("edge %s: Committee = %v, want %v", edge, got, want.Keepers)
				}
			}
			// NewCommittees draws the same, whatever the epoch number.
			p.EpochRounds = 1
			cs := NewCommittees(b, b.Round-1, edges, p)
			for i, want := range c.Committees {
				if got := cs.Of(edges[i]); !slices.Equal(got, decodeIDs(t, want.Keepers)) {
					t.Errorf("edge %s: Committees.Of = %v, want %v", edges[i], got, want.Keepers)
				}
			}
		})
	}
}

func goldenBeacon(t *testing.T, name string) beacon.Beacon {
	t.Helper()
	data, err := os.ReadFile(filepath.Join("..", "beacon", "testdata", name))
	if err != nil {
		t.Fatal(err)
	}
	var j struct {
		Round      uint64 `json:"round"`
		Randomness string `json:"randomness"`
		Signature  string `json:"signature"`
	}
	if err := json.Unmarshal(data, &j); err != nil {
		t.Fatal(err)
	}
	sig, err := hex.DecodeString(j.Signature)
	if err != nil {
		t.Fatal(err)
	}
	b := beacon.Complete(beacon.Beacon{Round: j.Round, Signature: sig})
	if hex.EncodeToString(b.Randomness) != j.Randomness {
		t.Fatalf("%s: randomness is not SHA-256 of the signature", name)
	}
	return b
}

func decodeID(t *testing.T, s string) peer.ID {
	t.Helper()
	id, err := peer.Decode(s)
	if err != nil {
		t.Fatal(err)
	}
	return id
}

func decodeIDs(t *testing.T, ss []string) []peer.ID {
	t.Helper()
	out := make([]peer.ID, len(ss))
	for i, s := range ss {
		out[i] = decodeID(t, s)
	}
	return out
}

// TestCommitteeShortcut checks the committee draw, which skips the
// logarithm's last bits for keepers it can prove lose, against scoring
// every keeper in full and sorting, on stakes spread wide, equal, and
// with a whale.
func TestCommitteeShortcut(t *testing.T) {
	stakes := map[string]func(i int) uint64{
		"1..50":    func(i int) uint64 { return uint64(i + 1) },
		"equal":    func(int) uint64 { return 7 },
		"whale":    func(i int) uint64 { return map[bool]uint64{true: 1 << 62, false: 1}[i == 3] },
		"powers":   func(i int) uint64 { return 1 << (i % 60) },
		"withzero": func(i int) uint64 { return uint64(i % 3) },
	}
	for name, stake := range stakes {
		var keepers []Keeper
		for i := range 50 {
			keepers = append(keepers, Keeper{ID: syntheticID(fmt.Sprint(name, i)), Stake: stake(i)})
		}
		for r := uint64(1); r <= 20; r++ {
			b := syntheticBeacon(r)
			for e := range 50 {
				edge := syntheticID(fmt.Sprint("edge ", e))
				for _, k := range []int{1, 3, 7} {
					got := Committee(b, edge, keepers, k)
					if want := fullCommittee(b, edge, keepers, k); !slices.Equal(got, want) {
						t.Fatalf("%s, round %d, edge %d, k=%d: %v, want %v", name, r, e, k, got, want)
					}
				}
			}
		}
	}
}

// fullCommittee scores every staked keeper with all of negLog2's bits and
// sorts by draw.better.
func fullCommittee(b beacon.Beacon, edge peer.ID, keepers []Keeper, k int) []peer.ID {
	d := &draw{keepers: keepers}
	var cs []candidate
	for i, kp := range keepers {
		if kp.Stake == 0 {
			continue
		}
		s := beacon.Seed(b, "aro/committee", []byte(edge), []byte(kp.ID))
		cs = append(cs, candidate{i: i, stake: kp.Stake, l: negLog2(binary.BigEndian.Uint64(s[:8]))})
	}
	slices.SortFunc(cs, func(a, b candidate) int {
		switch {
		case d.better(a, b):
			return -1
		case d.better(b, a):
			return 1
		}
		return 0
	})
	var out []peer.ID
	for _, c := range cs[:min(k, len(cs))] {
		out = append(out, keepers[c.i].ID)
	}
	return out
}

// seatCounts draws committees of k for edges edges in each of epochs
// epochs, each from its own beacon, and counts per keeper the committees
// it sits on and the committees it heads (first seat, which is its
// committee of size 1: the best of k is the best of all).
func seatCounts(keepers []Keeper, k, epochs, edges int) (seats, heads map[peer.ID]int) {
	seats, heads = map[peer.ID]int{}, map[peer.ID]int{}
	ids := make([]peer.ID, edges)
	for i := range ids {
		ids[i] = syntheticID(fmt.Sprint("share edge ", i))
	}
	var out []peer.ID
	for e := range epochs {
		d := newDraw(syntheticBeacon(uint64(e)+1), keepers)
		for _, edge := range ids {
			out = d.committee([]byte(edge), k, out[:0])
			heads[out[0]]++
			for _, id := range out {
				seats[id]++
			}
		}
	}
	return seats, heads
}

// shareKeepers have stakes 1:2:3:4:10, in large units so that the
// 128-bit comparison is exercised: shares 5%, 10%, 15%, 20% and 50%.
func shareKeepers() []Keeper {
	var ks []Keeper
	for i, s := range []uint64{1, 2, 3, 4, 10} {
		ks = append(ks, Keeper{ID: syntheticID(fmt.Sprint("share keeper ", i)), Stake: s * 1e17})
	}
	return ks
}

// TestCommitteeShares draws 10,000 epochs (10,000 distinct beacons) of
// committees of k=3 for 100 edges: 1,000,000 committees.
//
// k=1 (the first seat): each keeper's share of seats must be its share of
// stake within 2% relative error, |seats/N - stake/total| <= 0.02 ·
// stake/total. Rendezvous with -stake/ln(u) makes the first seat exactly
// stake-proportional; for the smallest keeper (5%) one binomial standard
// deviation over N = 10^6 is 0.44% relative, so 2% is 4.6 sigma.
//
// k=3: the three seats are drawn one by one without replacement, each
// with probability proportional to stake among the keepers not yet
// drawn. That is not proportional: a keeper cannot hold two seats of one
// committee: with stakes 1:2:3:4:10, the keeper with half the stake sits on
// 94% of committees (31% of seats, not 50%) and the one with 5% on 25%
// (8.2% of seats). The test checks each keeper's frequency of inclusion against the
// exact probability of that sampling (computed by enumerating draw
// orders), within 4 binomial standard deviations, and logs how far from
// stake-proportional it is.
func TestCommitteeShares(t *testing.T) {
	if testing.Short() {
		t.Skip("draws a million committees (about a second); not in -short")
	}
	const epochs, edges, k = 10_000, 100, 3
	keepers := shareKeepers()
	seats, heads := seatCounts(keepers, k, epochs, edges)
	var total uint64
	for _, kp := range keepers {
		total += kp.Stake
	}
	n := float64(epochs * edges)
	incl := inclusion(keepers, k)
	for i, kp := range keepers {
		share := float64(kp.Stake) / float64(total)
		got := float64(heads[kp.ID]) / n
		if rel := math.Abs(got-share) / share; rel > 0.02 {
			t.Errorf("k=1: keeper %d (stake share %.3f) heads %.4f of committees: relative error %.4f > 2%%", i, share, got, rel)
		} else {
			t.Logf("k=1: keeper %d stake share %.4f, seat share %.4f, relative error %.4f", i, share, got, rel)
		}

		p := incl[i]
		f := float64(seats[kp.ID]) / n
		sigma := math.Sqrt(p * (1 - p) / n)
		if math.Abs(f-p) > 4*sigma {
			t.Errorf("k=3: keeper %d on %.5f of committees, successive sampling gives %.5f (4 sigma = %.5f)", i, f, p, 4*sigma)
		}
		t.Logf("k=3: keeper %d stake share %.4f, seat share %.4f (exact %.4f), relative to stake %+.3f", i, share, f/k, p/k, (f/k-share)/share)
	}
}

// inclusion returns, for each keeper, the probability that it is among
// the first k drawn one by one without replacement with probability
// proportional to stake, by enumerating every sequence of draws.
func inclusion(keepers []Keeper, k int) []float64 {
	out := make([]float64, len(keepers))
	used := make([]bool, len(keepers))
	var walk func(depth int, prob float64)
	walk = func(depth int, prob float64) {
		if depth == k {
			return
		}
		var rest float64
		for i, kp := range keepers {
			if !used[i] {
				rest += float64(kp.Stake)
			}
		}
		for i, kp := range keepers {
			if used[i] {
				continue
			}
			q := prob * float64(kp.Stake) / rest
			out[i] += q
			used[i] = true
			walk(depth+1, q)
			used[i] = false
		}
	}
	walk(0, 1)
	return out
}

func TestCommitteeEdgeCases(t *testing.T) {
	b := syntheticBeacon(1)
	edge := syntheticID("edge")
	a, bk, c := syntheticID("a"), syntheticID("b"), syntheticID("c")
	keepers := []Keeper{{a, 5}, {bk, 0}, {c, 1}}

	got := Committee(b, edge, keepers, 3)
	if len(got) != 2 || !slices.Contains(got, a) || !slices.Contains(got, c) {
		t.Errorf("k=3 of two staked keepers: %v, want both a and c, never b (stake 0)", got)
	}
	if got := Committee(b, edge, keepers, 0); len(got) != 0 {
		t.Errorf("k=0: %v, want none", got)
	}
	if got := Committee(b, edge, nil, 3); len(got) != 0 {
		t.Errorf("no keepers: %v, want none", got)
	}
	if again := Committee(b, edge, keepers, 3); !slices.Equal(again, got) {
		t.Errorf("Committee is not deterministic: %v then %v", got, again)
	}
	// Keeper order in the list does not matter.
	if rev := Committee(b, edge, []Keeper{keepers[2], keepers[1], keepers[0]}, 3); !slices.Equal(rev, got) {
		t.Errorf("reversed keeper list gives %v, want %v", rev, got)
	}
	// Equal scores (2/10 = 1/5) go to the lower ID, whichever comes first.
	lo, hi := min(a, c), max(a, c)
	d := &draw{keepers: []Keeper{{hi, 2}, {lo, 1}}}
	x, y := candidate{i: 0, stake: 2, l: 10}, candidate{i: 1, stake: 1, l: 5}
	if d.better(x, y) || !d.better(y, x) {
		t.Error("a tie does not go to the lower peer ID")
	}
	// Stakes of 1.5·2^63 and 2^63 at the same L: the products overflow
	// 64 bits, and the 128-bit comparison still ranks them.
	big := uint64(1) << 63
	if !d.better(candidate{i: 0, stake: big + big/2, l: 10}, candidate{i: 1, stake: big, l: 10}) {
		t.Error("a higher stake at the same L does not win")
	}
}

// TestCommitteeRendezvous checks the property rendezvous hashing is for:
// removing a keeper changes only the committees it sat on.
func TestCommitteeRendezvous(t *testing.T) {
	var keepers []Keeper
	for i := range 20 {
		keepers = append(keepers, Keeper{ID: syntheticID(fmt.Sprint("k", i)), Stake: uint64(i%5 + 1)})
	}
	gone := keepers[7].ID
	fewer := slices.Delete(slices.Clone(keepers), 7, 8)
	b := syntheticBeacon(42)
	moved := 0
	for i := range 500 {
		edge := syntheticID(fmt.Sprint("e", i))
		before := Committee(b, edge, keepers, 3)
		after := Committee(b, edge, fewer, 3)
		if !slices.Contains(before, gone) {
			if !slices.Equal(before, after) {
				t.Fatalf("edge %d: committee %v became %v without keeper 7 on it", i, before, after)
			}
			continue
		}
		moved++
		// The others keep their seats, in their order; one newcomer fills
		// the last.
		rest := slices.DeleteFunc(slices.Clone(before), func(id peer.ID) bool { return id == gone })
		if !slices.Equal(after[:2], rest) {
			t.Fatalf("edge %d: %v became %v", i, before, after)
		}
	}
	if moved == 0 {
		t.Fatal("keeper 7 sat on no committee: the test proves nothing")
	}
}

func TestCommittees(t *testing.T) {
	var keepers []Keeper
	for i := range 10 {
		keepers = append(keepers, Keeper{ID: syntheticID(fmt.Sprint("k", i)), Stake: uint64(10 + i)})
	}
	var edges []peer.ID
	for i := range 200 {
		edges = append(edges, syntheticID(fmt.Sprint("e", i)))
	}
	p := Params{EpochRounds: 10, CommitteeSize: 3, Keepers: keepers}
	b := syntheticBeacon(p.FirstRound(4))
	cs := NewCommittees(b, 4, append(slices.Clone(edges), edges[:10]...), p)
	if cs.Epoch() != 4 || cs.Round() != 41 {
		t.Errorf("Epoch, Round = %d, %d; want 4, 41", cs.Epoch(), cs.Round())
	}
	seats := 0
	for _, e := range edges {
		of := cs.Of(e)
		if want := Committee(b, e, keepers, 3); !slices.Equal(of, want) {
			t.Fatalf("Of(%s) = %v, Committee gives %v", e, of, want)
		}
		for _, k := range keepers {
			if cs.Has(e, k.ID) != slices.Contains(of, k.ID) {
				t.Fatalf("Has(%s, %s) disagrees with Of", e, k.ID)
			}
			if slices.Contains(cs.EdgesOf(k.ID), e) != slices.Contains(of, k.ID) {
				t.Fatalf("EdgesOf(%s) disagrees with Of(%s)", k.ID, e)
			}
		}
		seats += len(of)
	}
	total := 0
	for _, k := range cs.Keepers() {
		es := cs.EdgesOf(k)
		if !slices.IsSorted(es) {
			t.Errorf("EdgesOf(%s) not sorted", k)
		}
		total += len(es)
	}
	if seats != 600 || total != 600 {
		t.Errorf("%d seats by Of and %d by EdgesOf for 200 edges listed with 10 twice; want 600", seats, total)
	}
	if !slices.IsSorted(cs.Keepers()) {
		t.Error("Keepers not sorted")
	}
	if cs.Of(syntheticID("stranger")) != nil || cs.Has(syntheticID("stranger"), keepers[0].ID) {
		t.Error("an edge not drawn for has a committee")
	}
	// What Of returns is the caller's to change.
	of := cs.Of(edges[0])
	of[0] = "x"
	if cs.Of(edges[0])[0] == "x" {
		t.Error("Of returns the committees' own slice")
	}
}

// TestForEdgeKeepsEachEdgesCommittee: the committee an engine draws for
// one edge, asked for again or after the memo is full, is the one the
// whole epoch's draw gives it.
func TestForEdgeKeepsEachEdgesCommittee(t *testing.T) {
	p := Params{Network: "devnet", EpochRounds: 4, CommitteeSize: 3}
	for i := range 7 {
		p.Keepers = append(p.Keepers, Keeper{ID: syntheticID(fmt.Sprintf("keeper %d", i)), Stake: uint64(100 + i)})
	}
	var edges []peer.ID
	for i := range 50 {
		edges = append(edges, syntheticID(fmt.Sprintf("edge %d", i)))
	}
	slices.Sort(edges)
	const epoch = 5
	b := syntheticBeacon(p.FirstRound(epoch))
	all := NewCommittees(b, epoch, edges, p)
	ec := &epochCommittees{b: b, epoch: epoch, p: p}
	for pass := range 2 {
		for i, e := range edges {
			if pass == 1 && i == len(edges)/2 {
				// A full memo still answers, by drawing again.
				for j := len(ec.byEdge); j < maxCommitteesByEdge; j++ {
					ec.byEdge[syntheticID(fmt.Sprintf("filler %d", j))] = all
				}
			}
			if got, want := ec.forEdge(e).Of(e), all.Of(e); !slices.Equal(got, want) {
				t.Fatalf("pass %d: edge %d's committee is %v, the epoch's draw gives %v", pass, i, got, want)
			}
		}
	}
}
