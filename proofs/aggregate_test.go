package proofs

import (
	"bytes"
	"math/rand/v2"
	"testing"

	"github.com/libp2p/go-libp2p/core/peer"

	"github.com/aropeer/aropeer/wire"
)

// aggID is the peer ID of the test key of seed.
func aggID(t testing.TB, seed byte) peer.ID {
	t.Helper()
	return testID(t, testKey(t, seed))
}

// rc is a receipt in short: keeper seed, kind, round, attempt, result and
// an optional mbit_s measurement (negative for none).
type rc struct {
	keeper  byte
	kind    Kind
	round   uint64
	attempt uint32
	result  Result
	mbit    int64
}

// mkReceipts builds the receipts of edge in epoch; attempts of one (keeper,
// kind, round) share a challenge CID.
func mkReceipts(t testing.TB, epoch uint64, edge byte, rcs ...rc) []Receipt {
	t.Helper()
	out := make([]Receipt, 0, len(rcs))
	for _, x := range rcs {
		c := Challenge{
			Network: "devnet", Epoch: epoch, Round: x.round,
			Keeper: aggID(t, x.keeper), Edge: aggID(t, edge), Kind: x.kind,
			Seed: bytes.Repeat([]byte{byte(x.round)}, SeedSize),
		}
		id, err := c.ID()
		if err != nil {
			t.Fatal(err)
		}
		r := Receipt{
			Network: c.Network, Epoch: epoch, Round: x.round, Keeper: c.Keeper, Edge: c.Edge,
			Kind: x.kind, Challenge: id, Attempt: x.attempt, Result: x.result,
		}
		if x.result != Pass {
			r.Reason = "wrong answer"
		}
		if x.mbit >= 0 {
			r.Measurements = map[string]int64{"mbit_s": x.mbit}
		}
		if err := r.Validate(); err != nil {
			t.Fatal(err)
		}
		out = append(out, r)
	}
	return out
}

// aggReport is a report of edge for epoch claiming 1 GiB in two pieces
// (and one faulty), 100/1000 Mbit/s and 660 TOPS.
func aggReport(t testing.TB, epoch uint64, edge byte) Report {
	t.Helper()
	return Report{Network: "devnet", Epoch: epoch, Edge: aggID(t, edge), Claims: []Claim{
		{Offer: Offer{Kind: KindBandwidth, UpMbit: 100, DownMbit: 1000}},
		{Offer: Offer{Kind: KindCompute, Device: "nvidia-rtx-4090", MilliTOPS: 660_000}},
		{Offer: Offer{Kind: KindLiveness}},
		{Offer: Offer{Kind: KindStorage, Pieces: []Piece{
			{CID: pieceCID(t, 1), Size: 512 << 20},
			{CID: pieceCID(t, 2), Size: 512 << 20},
			{CID: pieceCID(t, 3), Size: 1 << 30, Faulty: true},
		}}},
	}}
}

func testRates() Rates {
	return Rates{
		RewardPerPass:  map[Kind]uint64{KindLiveness: 1, KindStorage: 5, KindBandwidth: 3, KindCompute: 7},
		PenaltyPerFail: map[Kind]uint64{KindLiveness: 20, KindStorage: 100, KindBandwidth: 60, KindCompute: 140},
		MinShare:       500_000,
	}
}

func kindResult(t testing.TB, r EdgeResult, k Kind) KindResult {
	t.Helper()
	for _, kr := range r.Kinds {
		if kr.Kind == k {
			return kr
		}
	}
	t.Fatalf("no %s result in %+v", k, r)
	return KindResult{}
}

func resultOf(t testing.TB, rs []EdgeResult, edge peer.ID) EdgeResult {
	t.Helper()
	for _, r := range rs {
		if r.Edge == edge {
			return r
		}
	}
	t.Fatalf("no result for %s", edge)
	return EdgeResult{}
}

func TestAggregateDeterministic(t *testing.T) {
	const epoch = 4
	var receipts []Receipt
	receipts = append(receipts, mkReceipts(t, epoch, 20,
		rc{10, KindLiveness, 401, 0, Pass, -1},
		rc{11, KindLiveness, 401, 0, Timeout, -1},
		rc{11, KindLiveness, 401, 1, Fail, -1},
		rc{10, KindStorage, 402, 0, Pass, -1},
		rc{12, KindStorage, 403, 0, Fail, -1},
		rc{10, KindBandwidth, 404, 0, Pass, 800},
		rc{11, KindBandwidth, 406, 0, Pass, 1200},
		rc{12, KindBandwidth, 407, 0, Pass, 300},
		rc{12, KindCompute, 405, 0, Timeout, -1},
	)...)
	receipts = append(receipts, mkReceipts(t, epoch, 21,
		rc{10, KindLiveness, 401, 0, Pass, -1},
		rc{10, KindLiveness, 402, 0, Pass, -1},
		rc{11, KindLiveness, 403, 0, Fail, -1},
	)...)
	receipts = append(receipts, mkReceipts(t, epoch+1, 20, rc{10, KindLiveness, 501, 0, Fail, -1})...)
	reports := []Report{aggReport(t, epoch, 20), aggReport(t, epoch, 22), aggReport(t, epoch+1, 21)}
	prev := map[peer.ID]Reputation{aggID(t, 21): {Alpha: 15 * PPM, Beta: 2 * PPM}}

	want, err := wire.Marshal(Aggregate(epoch, receipts, reports, prev, testRates()))
	if err != nil {
		t.Fatal(err)
	}
	rng := rand.New(rand.NewPCG(1, 2))
	for i := range 50 {
		rs := append([]Receipt(nil), receipts...)
		// Duplicates of some receipts count once.
		rs = append(rs, receipts[:i%len(receipts)]...)
		rng.Shuffle(len(rs), func(a, b int) { rs[a], rs[b] = rs[b], rs[a] })
		ps := append([]Report(nil), reports...)
		ps = append(ps, reports[:i%len(reports)]...)
		rng.Shuffle(len(ps), func(a, b int) { ps[a], ps[b] = ps[b], ps[a] })
		got, err := wire.Marshal(Aggregate(epoch, rs, ps, prev, testRates()))
		if err != nil {
			t.Fatal(err)
		}
		if !bytes.Equal(got, want) {
			t.Fatalf("shuffle %d: results differ:\n%x\n%x", i, got, want)
		}
	}

	// And the results are the right ones.
	rs := Aggregate(epoch, receipts, reports, prev, testRates())
	if len(rs) != 3 {
		t.Fatalf("%d results, want 3 (edges 20, 21 and 22)", len(rs))
	}
	for i := 1; i < len(rs); i++ {
		if rs[i-1].Edge >= rs[i].Edge {
			t.Fatalf("results not sorted by edge: %s then %s", rs[i-1].Edge, rs[i].Edge)
		}
	}
	e20 := resultOf(t, rs, aggID(t, 20))
	tests := []struct {
		kind Kind
		want KindResult
	}{
		{KindLiveness, KindResult{Kind: KindLiveness, Challenges: 2, Passes: 1, Fails: 1, Verified: 500_000}},
		{KindStorage, KindResult{Kind: KindStorage, Challenges: 2, Passes: 1, Fails: 1, Verified: 512 << 20, Faults: 1}},
		// One probe a round: 300 is under half of the 1000 claimed, a
		// fail. The median of the three rounds is 800.
		{KindBandwidth, KindResult{Kind: KindBandwidth, Challenges: 3, Passes: 2, Fails: 1, Verified: 800}},
		{KindCompute, KindResult{Kind: KindCompute, Challenges: 1, Timeouts: 1}},
	}
	for _, tt := range tests {
		if got := kindResult(t, e20, tt.kind); got != tt.want {
			t.Errorf("edge 20 %s: %+v, want %+v", tt.kind, got, tt.want)
		}
	}
	if e20.UptimePPM != 500_000 || e20.Reward != 1+5+3+3 || e20.Penalty != 20+100+60 {
		t.Errorf("edge 20: uptime %d reward %d penalty %d", e20.UptimePPM, e20.Reward, e20.Penalty)
	}
	if e21 := resultOf(t, rs, aggID(t, 21)); e21.Reward != 2 || e21.Penalty != 20 || len(e21.Kinds) != 1 {
		t.Errorf("edge 21 without a report: %+v", e21)
	}
	if e22 := resultOf(t, rs, aggID(t, 22)); e22.Reward != 0 || e22.Penalty != 0 || len(e22.Kinds) != 4 || e22.Reputation != NewReputation() {
		t.Errorf("edge 22 with a report only: %+v", e22)
	}
}

// epochReceipts gives edge n challenges in epoch, alternating liveness and
// storage, failing every failEvery-th of each kind (never if 0).
func epochReceipts(t testing.TB, epoch uint64, edge byte, n, failEvery int) []Receipt {
	t.Helper()
	rcs := make([]rc, n)
	for i := range rcs {
		k := KindLiveness
		if i%2 == 1 {
			k = KindStorage
		}
		res := Pass
		if failEvery > 0 && (i/2)%failEvery == failEvery-1 {
			res = Fail
		}
		rcs[i] = rc{byte(10 + i%3), k, epoch*1000 + uint64(i) + 1, 0, res, -1}
	}
	return mkReceipts(t, epoch, edge, rcs...)
}

func TestAggregateCheaterLoses(t *testing.T) {
	rates := Rates{
		RewardPerPass:  map[Kind]uint64{KindLiveness: 10, KindStorage: 10},
		PenaltyPerFail: map[Kind]uint64{KindLiveness: 200, KindStorage: 200},
	}
	const honest, cheater = 30, 31
	var (
		balance = map[byte]int64{}
		last    = map[byte]int64{}
		prev    = map[peer.ID]Reputation{}
	)
	for epoch := uint64(1); epoch <= 8; epoch++ {
		var receipts []Receipt
		receipts = append(receipts, epochReceipts(t, epoch, honest, 100, 0)...)
		receipts = append(receipts, epochReceipts(t, epoch, cheater, 100, 10)...)
		reports := []Report{aggReport(t, epoch, honest), aggReport(t, epoch, cheater)}
		rs := Aggregate(epoch, receipts, reports, prev, rates)
		for _, edge := range []byte{honest, cheater} {
			r := resultOf(t, rs, aggID(t, edge))
			prev[r.Edge] = r.Reputation
			balance[edge] += int64(r.Reward) - int64(r.Penalty)
		}
		if balance[honest] <= last[honest] {
			t.Fatalf("epoch %d: honest balance %d, was %d: want it to rise", epoch, balance[honest], last[honest])
		}
		if balance[cheater] >= last[cheater] {
			t.Fatalf("epoch %d: cheater balance %d, was %d: want it to fall", epoch, balance[cheater], last[cheater])
		}
		c := resultOf(t, rs, aggID(t, cheater))
		if c.UptimePPM != 900_000 || c.Penalty != 10*200 || c.Reward != 90*10 {
			t.Fatalf("epoch %d: cheater uptime %d reward %d penalty %d", epoch, c.UptimePPM, c.Reward, c.Penalty)
		}
		if h := resultOf(t, rs, aggID(t, honest)); h.Score != PPM || c.Score >= h.Score {
			t.Fatalf("epoch %d: scores honest %d, cheater %d", epoch, h.Score, c.Score)
		}
		last[honest], last[cheater] = balance[honest], balance[cheater]
	}
}

func TestAggregateBeaconOutage(t *testing.T) {
	const epoch = 9
	rates := Rates{
		RewardPerPass:  map[Kind]uint64{KindLiveness: 10, KindStorage: 10},
		PenaltyPerFail: map[Kind]uint64{KindLiveness: 200, KindStorage: 200},
	}
	rep := Reputation{Alpha: 18 * PPM, Beta: 1 * PPM}
	tests := []struct {
		name     string
		receipts []Receipt // the rounds that happened
		passes   uint64
	}{
		{"whole epoch", epochReceipts(t, epoch, 40, 100, 0), 100},
		{"outage for the second half", epochReceipts(t, epoch, 40, 50, 0), 50},
		{"outage all epoch", nil, 0},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			rs := Aggregate(epoch, tt.receipts, []Report{aggReport(t, epoch, 40)}, map[peer.ID]Reputation{aggID(t, 40): rep}, rates)
			if len(rs) != 1 {
				t.Fatalf("%d results, want 1", len(rs))
			}
			r := rs[0]
			if r.Penalty != 0 || r.Reward != 10*tt.passes {
				t.Fatalf("reward %d penalty %d, want %d and 0", r.Reward, r.Penalty, 10*tt.passes)
			}
			for _, kr := range r.Kinds {
				if kr.Fails != 0 {
					t.Fatalf("%s: %d fails", kr.Kind, kr.Fails)
				}
			}
			if r.Score < rep.Score() {
				t.Fatalf("score fell from %d to %d", rep.Score(), r.Score)
			}
			if tt.passes == 0 && r.Reputation != rep {
				t.Fatalf("reputation %+v, want %+v unchanged", r.Reputation, rep)
			}
		})
	}
}

func TestAggregateVerified(t *testing.T) {
	const epoch = 3
	// bw is one probe a round, by another keeper each.
	bw := func(mbits ...int64) []rc {
		var rcs []rc
		for i, m := range mbits {
			res := Pass
			if m < 0 {
				res, m = Fail, -1
			}
			rcs = append(rcs, rc{byte(10 + i), KindBandwidth, 301 + uint64(i), 0, res, m})
		}
		return rcs
	}
	// committee is three keepers probing together in each round: one
	// triple of measurements per round.
	committee := func(rounds ...[3]int64) []rc {
		var rcs []rc
		for i, ms := range rounds {
			for k, m := range ms {
				rcs = append(rcs, rc{byte(10 + k), KindBandwidth, 301 + uint64(i), 0, Pass, m})
			}
		}
		return rcs
	}
	tests := []struct {
		name     string
		rcs      []rc
		report   bool
		minShare uint64
		kind     Kind
		want     KindResult
	}{
		{"median of three", bw(700, 900, 800), true, 0, KindBandwidth,
			KindResult{Kind: KindBandwidth, Challenges: 3, Passes: 3, Verified: 800}},
		{"lower median of four", bw(700, 900, 800, 600), true, 0, KindBandwidth,
			KindResult{Kind: KindBandwidth, Challenges: 4, Passes: 4, Verified: 700}},
		{"capped at the claim", bw(1500, 2000, 900), true, 0, KindBandwidth,
			KindResult{Kind: KindBandwidth, Challenges: 3, Passes: 3, Verified: 1000}},
		{"fails not measured", bw(-1, 900, -1, 950, -1), true, 0, KindBandwidth,
			KindResult{Kind: KindBandwidth, Challenges: 5, Passes: 2, Fails: 3, Verified: 900}},
		{"under the min share fails", bw(100, 990, 400, 600), true, 500_000, KindBandwidth,
			KindResult{Kind: KindBandwidth, Challenges: 4, Passes: 2, Fails: 2, Verified: 400}},
		{"a committee's measurements of a round add up", committee([3]int64{250, 300, 280}, [3]int64{200, 210, 230}, [3]int64{300, 320, 310}), true, 500_000, KindBandwidth,
			KindResult{Kind: KindBandwidth, Challenges: 9, Passes: 9, Verified: 830}},
		{"a round whose sum is under the min share fails whole", committee([3]int64{100, 120, 90}, [3]int64{300, 320, 310}), true, 500_000, KindBandwidth,
			KindResult{Kind: KindBandwidth, Challenges: 6, Passes: 3, Fails: 3, Verified: 310}},
		{"a keeper's measured fail is judged by its round's sum", []rc{
			{10, KindBandwidth, 301, 0, Pass, 300}, {11, KindBandwidth, 301, 0, Pass, 350}, {12, KindBandwidth, 301, 0, Fail, 150},
			{10, KindBandwidth, 302, 0, Pass, 100}, {11, KindBandwidth, 302, 0, Pass, 120}, {12, KindBandwidth, 302, 0, Fail, 50},
		}, true, 500_000, KindBandwidth,
			KindResult{Kind: KindBandwidth, Challenges: 6, Passes: 3, Fails: 3, Verified: 270}},
		{"no report, no claim", bw(700, 900, 800), false, 500_000, KindBandwidth,
			KindResult{Kind: KindBandwidth, Challenges: 3, Passes: 3}},
		{"storage all passed", []rc{{10, KindStorage, 301, 0, Pass, -1}, {11, KindStorage, 302, 0, Pass, -1}}, true, 0, KindStorage,
			KindResult{Kind: KindStorage, Challenges: 2, Passes: 2, Verified: 1 << 30, Faults: 1}},
		{"storage a quarter failed", []rc{{10, KindStorage, 301, 0, Pass, -1}, {11, KindStorage, 302, 0, Pass, -1},
			{12, KindStorage, 303, 0, Pass, -1}, {10, KindStorage, 304, 0, Fail, -1}}, true, 0, KindStorage,
			KindResult{Kind: KindStorage, Challenges: 4, Passes: 3, Fails: 1, Verified: 3 << 28, Faults: 1}},
		{"compute all passed", []rc{{10, KindCompute, 301, 0, Pass, -1}}, true, 0, KindCompute,
			KindResult{Kind: KindCompute, Challenges: 1, Passes: 1, Verified: 660_000}},
		{"compute one failed", []rc{{10, KindCompute, 301, 0, Pass, -1}, {11, KindCompute, 302, 0, Fail, -1}}, true, 0, KindCompute,
			KindResult{Kind: KindCompute, Challenges: 2, Passes: 1, Fails: 1}},
		{"compute not yet decided", []rc{{10, KindCompute, 301, 0, Timeout, -1}}, true, 0, KindCompute,
			KindResult{Kind: KindCompute, Challenges: 1, Timeouts: 1}},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			var reports []Report
			if tt.report {
				reports = []Report{aggReport(t, epoch, 50)}
			}
			rates := testRates()
			rates.MinShare = tt.minShare
			rs := Aggregate(epoch, mkReceipts(t, epoch, 50, tt.rcs...), reports, nil, rates)
			if len(rs) != 1 {
				t.Fatalf("%d results, want 1", len(rs))
			}
			if got := kindResult(t, rs[0], tt.kind); got != tt.want {
				t.Fatalf("got %+v, want %+v", got, tt.want)
			}
		})
	}
}

func TestAggregateAttempts(t *testing.T) {
	const epoch = 5
	tests := []struct {
		name           string
		rcs            []rc
		want           KindResult
		reward, penalt uint64
	}{
		{"timeouts then a pass", []rc{{10, KindStorage, 501, 0, Timeout, -1}, {10, KindStorage, 501, 1, Timeout, -1}, {10, KindStorage, 501, 2, Pass, -1}},
			KindResult{Kind: KindStorage, Challenges: 1, Passes: 1}, 5, 0},
		{"timeouts then a fail", []rc{{10, KindStorage, 501, 0, Timeout, -1}, {10, KindStorage, 501, 1, Timeout, -1}, {10, KindStorage, 501, 2, Fail, -1}},
			KindResult{Kind: KindStorage, Challenges: 1, Fails: 1}, 0, 100},
		{"timeouts only: in containment", []rc{{10, KindStorage, 501, 0, Timeout, -1}, {10, KindStorage, 501, 1, Timeout, -1}},
			KindResult{Kind: KindStorage, Challenges: 1, Timeouts: 1}, 0, 0},
		{"two keepers, two challenges", []rc{{10, KindStorage, 501, 0, Timeout, -1}, {10, KindStorage, 501, 1, Pass, -1}, {11, KindStorage, 501, 0, Pass, -1}},
			KindResult{Kind: KindStorage, Challenges: 2, Passes: 2}, 10, 0},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			rs := Aggregate(epoch, mkReceipts(t, epoch, 60, tt.rcs...), nil, nil, testRates())
			if len(rs) != 1 {
				t.Fatalf("%d results, want 1", len(rs))
			}
			if got := kindResult(t, rs[0], KindStorage); got != tt.want {
				t.Fatalf("got %+v, want %+v", got, tt.want)
			}
			if rs[0].Reward != tt.reward || rs[0].Penalty != tt.penalt {
				t.Fatalf("reward %d penalty %d, want %d and %d", rs[0].Reward, rs[0].Penalty, tt.reward, tt.penalt)
			}
		})
	}
}

func TestAggregateReputation(t *testing.T) {
	const edge = 70
	id := aggID(t, edge)
	rep := map[peer.ID]Reputation{}
	run := func(epoch uint64, n, failEvery int) uint64 {
		t.Helper()
		rs := Aggregate(epoch, epochReceipts(t, epoch, edge, n, failEvery), nil, rep, Rates{})
		rep[id] = rs[0].Reputation
		return rs[0].Score
	}
	if s := NewReputation().Score(); s != PPM {
		t.Fatalf("new edge scores %d, want %d", s, PPM)
	}
	// A long honest history: alpha nears 1/(1-lambda) = 20.
	if s := run(1, 200, 0); s != PPM || rep[id].Alpha < 19*PPM || rep[id].Alpha > 20*PPM {
		t.Fatalf("honest: score %d, %+v", s, rep[id])
	}
	// Five straight fails: the score falls with each.
	last := uint64(PPM)
	for epoch := uint64(2); epoch <= 6; epoch++ {
		s := run(epoch, 1, 1)
		if s >= last {
			t.Fatalf("epoch %d: score %d after a fail, was %d", epoch, s, last)
		}
		last = s
	}
	low := last
	if low > 800_000 {
		t.Fatalf("score %d after five fails in a row, want under 0.8", low)
	}
	// Recovery is slow: five passes win back less than five fails lost,
	// and it takes far more to come near the start.
	for epoch := uint64(7); epoch <= 11; epoch++ {
		s := run(epoch, 1, 0)
		if s <= last {
			t.Fatalf("epoch %d: score %d after a pass, was %d", epoch, s, last)
		}
		last = s
	}
	if last-low >= PPM-low || last > 900_000 {
		t.Fatalf("five passes took the score from %d to %d: want a slow recovery", low, last)
	}
	if s := run(12, 100, 0); s < 990_000 {
		t.Fatalf("score %d after 100 more passes, want it recovered", s)
	}
}

func TestAggregateIgnores(t *testing.T) {
	// Other epochs' receipts and reports, and no input at all.
	if rs := Aggregate(2, epochReceipts(t, 1, 80, 10, 2), []Report{aggReport(t, 3, 80)}, nil, testRates()); len(rs) != 0 {
		t.Fatalf("got %+v for other epochs' inputs", rs)
	}
	if rs := Aggregate(2, nil, nil, nil, testRates()); len(rs) != 0 {
		t.Fatalf("got %+v from nothing", rs)
	}
	// Saturating sums.
	rates := Rates{RewardPerPass: map[Kind]uint64{KindLiveness: 1 << 63}}
	rs := Aggregate(1, epochReceipts(t, 1, 80, 3, 0), nil, nil, rates)
	if rs[0].Reward != ^uint64(0) {
		t.Fatalf("reward %d, want saturated", rs[0].Reward)
	}
}

// TestAggregateDeclaredFault: each piece a report declares faulty costs
// PenaltyPerFault once an epoch, less than the failed challenges hiding
// the loss costs.
func TestAggregateDeclaredFault(t *testing.T) {
	rates := testRates()
	rates.PenaltyPerFault = 5
	const declarer, hider = 40, 41
	declared := aggReport(t, 3, declarer) // its third piece is declared faulty
	hidden := aggReport(t, 3, hider)
	for i := range hidden.Claims {
		for j := range hidden.Claims[i].Offer.Pieces {
			hidden.Claims[i].Offer.Pieces[j].Faulty = false
		}
	}
	receipts := append(epochReceipts(t, 3, declarer, 10, 0), epochReceipts(t, 3, hider, 10, 5)...)
	rs := Aggregate(3, receipts, []Report{declared, hidden}, nil, rates)
	d, h := resultOf(t, rs, aggID(t, declarer)), resultOf(t, rs, aggID(t, hider))
	if got := kindResult(t, d, KindStorage).Faults; got != 1 {
		t.Errorf("declarer: %d faults, want 1", got)
	}
	if d.Penalty != 5 {
		t.Errorf("declarer's penalty %d, want one fault's 5", d.Penalty)
	}
	if h.Penalty <= d.Penalty {
		t.Errorf("hiding the loss costs %d, declaring it %d: want hiding to cost more", h.Penalty, d.Penalty)
	}
}
