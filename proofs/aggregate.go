package proofs

import (
	"bytes"
	"cmp"
	"math"
	"math/bits"
	"slices"

	"github.com/libp2p/go-libp2p/core/peer"

	"github.com/aropeer/aropeer/wire"
)

// PPM is one in parts per million: shares and scores are integers of this
// scale, so every keeper computes byte-identical results.
const PPM = 1_000_000

// The beta reputation's constants, as Storj's audit reputation sets them:
// forgetting factor 0.95, weight 1 per verdict, and a new edge starting at
// alpha 1, beta 0 (a score of 1). Alpha and beta are held in ppm.
const (
	ReputationLambda    = 950_000 // 0.95
	ReputationWeight    = PPM     // 1
	ReputationInitAlpha = PPM     // 1
	ReputationInitBeta  = 0
)

// MeasurementKeys names, per measured kind, the receipt measurement that
// Aggregate takes as the verified amount: bandwidth throughput in Mbit/s.
func MeasurementKeys() map[Kind]string { return map[Kind]string{KindBandwidth: "mbit_s"} }

// Rates price verdicts for Aggregate.
type Rates struct {
	// RewardPerPass is the reward, in reward units, of each passed
	// challenge of a kind.
	RewardPerPass map[Kind]uint64
	// PenaltyPerFail is the cost of each failed challenge of a kind, so
	// that a steady cheater loses rather than settles at a tolerable score.
	PenaltyPerFail map[Kind]uint64
	// MinShare, in ppm, makes a passed challenge of a measured kind a fail
	// when its measurement is below this share of the edge's claim.
	MinShare uint64
	// PenaltyPerFault is the cost, per epoch, of each piece the edge's
	// report declares faulty: less than a failed challenge, so that an
	// edge that owns up to a loss loses less than one that hides it.
	PenaltyPerFault uint64
}

// Reputation is an edge's beta reputation (Storj's audit reputation): per
// final verdict, alpha = lambda*alpha + w*pass and beta = lambda*beta +
// w*fail; the score is alpha/(alpha+beta). Both are in ppm and carried
// from epoch to epoch.
type Reputation struct {
	Alpha uint64 `cbor:"alpha"`
	Beta  uint64 `cbor:"beta"`
}

// NewReputation is the reputation of an edge never judged.
func NewReputation() Reputation {
	return Reputation{Alpha: ReputationInitAlpha, Beta: ReputationInitBeta}
}

// Score is alpha/(alpha+beta) in ppm, or 0 if both are 0.
func (r Reputation) Score() uint64 {
	sum, carry := bits.Add64(r.Alpha, r.Beta, 0)
	if carry != 0 {
		// Scale both down; only their ratio matters.
		return Reputation{r.Alpha >> 1, r.Beta >> 1}.Score()
	}
	if sum == 0 {
		return 0
	}
	return mulDiv(r.Alpha, PPM, sum)
}

// update applies one final verdict. Rounding is down, the same everywhere.
func (r Reputation) update(pass bool) Reputation {
	r.Alpha = mulDiv(r.Alpha, ReputationLambda, PPM)
	r.Beta = mulDiv(r.Beta, ReputationLambda, PPM)
	if pass {
		r.Alpha = satAdd(r.Alpha, ReputationWeight)
	} else {
		r.Beta = satAdd(r.Beta, ReputationWeight)
	}
	return r
}

// KindResult is what the receipts of one kind confirm of an edge in an
// epoch. Challenges = Passes + Fails + Timeouts.
type KindResult struct {
	Kind Kind `cbor:"kind"`
	// Challenges counts distinct challenges (by Challenge CID), each once
	// however many attempts it took.
	Challenges uint64 `cbor:"challenges"`
	// Passes and Fails count challenges by final verdict: a pass on any
	// attempt is a pass; otherwise a fail receipt is a fail. A pass of a
	// measured kind below Rates.MinShare of the claim counts as a fail.
	Passes uint64 `cbor:"passes"`
	Fails  uint64 `cbor:"fails"`
	// Timeouts counts challenges with only timeout receipts: still in
	// containment, undecided, so they neither earn nor cost.
	Timeouts uint64 `cbor:"timeouts"`
	// Verified is the amount the receipts confirm, in the kind's unit:
	//   - liveness: the uptime in ppm (as EdgeResult.UptimePPM);
	//   - storage: the claim's non-faulty pieces' total padded size in
	//     bytes if every decided challenge passed, otherwise that total
	//     times passes/(passes+fails) (receipts do not name the piece, so
	//     the share of failed challenges stands for the share of failed
	//     pieces);
	//   - bandwidth (and any kind in MeasurementKeys): the committee
	//     probes an edge together, so the measurements of the pass
	//     receipts of one round are summed; Verified is the lower median
	//     of the rounds' sums, capped at the claim (the larger of up and
	//     down), and a pass whose round's sum is below Rates.MinShare of
	//     the claim counts as a fail;
	//   - compute: the claimed MilliTOPS if every decided challenge
	//     passed, otherwise 0.
	// It is 0 without a claim in the edge's report or without a decided
	// challenge: nothing is confirmed then.
	Verified uint64 `cbor:"verified"`
	// Faults counts the pieces the edge's report declares faulty: each
	// costs Rates.PenaltyPerFault, less than failing its challenges.
	Faults uint64 `cbor:"faults,omitempty"`
}

// EdgeResult is an edge's verified workload in an epoch.
type EdgeResult struct {
	Edge  peer.ID      `cbor:"edge"`
	Epoch uint64       `cbor:"epoch"`
	Kinds []KindResult `cbor:"kinds"` // sorted by kind
	// UptimePPM is passed liveness challenges over decided liveness
	// challenges, in ppm; 0 when none was decided.
	UptimePPM uint64 `cbor:"uptime"`
	// Reputation is the edge's reputation after the epoch's verdicts, in
	// the order of their rounds (ties by challenge CID bytes), to be
	// passed back as prev next epoch; Score is its score in ppm.
	Reputation Reputation `cbor:"rep"`
	Score      uint64     `cbor:"score"`
	// Reward sums RewardPerPass over passes, Penalty PenaltyPerFail over
	// fails, saturating rather than overflowing. Missing rounds (a beacon
	// outage) hold no challenges, so they cost nothing.
	Reward  uint64 `cbor:"reward"`
	Penalty uint64 `cbor:"penalty"`
}

// verdict is a challenge's standing from its receipts.
type verdict struct {
	kind   Kind
	round  uint64
	id     []byte   // challenge CID bytes
	final  *Receipt // the deciding receipt: lowest-attempt pass, else lowest-attempt fail
	passed bool     // final verdict after MinShare
}

// Aggregate computes, per edge, what the receipts of epoch confirm of the
// reports, with rewards, penalties and reputations. It is a pure function
// of its inputs as sets: any order of receipts and reports, and any
// duplicates, give byte-identical results, so keepers can co-sign them.
//
// Receipts and reports of other epochs are ignored; the caller gives
// receipts and reports already opened (signatures and fields checked) and
// of its network. If an edge signed several reports for the epoch, the one
// with the lowest canonical encoding counts. An edge missing from prev
// starts at NewReputation. The results are sorted by edge and cover every
// edge with a receipt or a report in the epoch.
func Aggregate(epoch uint64, receipts []Receipt, reports []Report, prev map[peer.ID]Reputation, rates Rates) []EdgeResult {
	type edgeState struct {
		report    *Report
		reportEnc []byte
		// challenges by Challenge CID (its string form of bytes).
		challenges map[string]*verdict
	}
	edges := make(map[peer.ID]*edgeState)
	state := func(id peer.ID) *edgeState {
		s := edges[id]
		if s == nil {
			s = &edgeState{challenges: make(map[string]*verdict)}
			edges[id] = s
		}
		return s
	}

	for i := range reports {
		r := &reports[i]
		if r.Epoch != epoch {
			continue
		}
		enc, err := wire.Marshal(*r)
		if err != nil {
			continue
		}
		s := state(r.Edge)
		if s.report == nil || bytes.Compare(enc, s.reportEnc) < 0 {
			s.report, s.reportEnc = r, enc
		}
	}

	for i := range receipts {
		r := &receipts[i]
		if r.Epoch != epoch || !knownKind(r.Kind) {
			continue
		}
		key := string(r.Challenge.Bytes())
		s := state(r.Edge)
		v := s.challenges[key]
		if v == nil {
			v = &verdict{kind: r.Kind, round: r.Round, id: r.Challenge.Bytes()}
			s.challenges[key] = v
		}
		// Attempts of one challenge agree on these; should they not, the
		// least wins, whatever the order.
		v.round, v.kind = min(v.round, r.Round), min(v.kind, r.Kind)
		if better(r, v.final) {
			v.final = r
		}
	}

	ids := make([]peer.ID, 0, len(edges))
	for id := range edges {
		ids = append(ids, id)
	}
	slices.Sort(ids)

	keys := MeasurementKeys()
	out := make([]EdgeResult, 0, len(ids))
	for _, id := range ids {
		s := edges[id]
		vs := make([]*verdict, 0, len(s.challenges))
		for _, v := range s.challenges {
			vs = append(vs, v)
		}
		slices.SortFunc(vs, func(a, b *verdict) int {
			return cmp.Or(cmp.Compare(a.round, b.round), bytes.Compare(a.id, b.id))
		})

		res := EdgeResult{Edge: id, Epoch: epoch}
		byKind := make(map[Kind]*KindResult)
		kind := func(k Kind) *KindResult {
			kr := byKind[k]
			if kr == nil {
				kr = &KindResult{Kind: k}
				byKind[k] = kr
			}
			return kr
		}
		var claims map[Kind]Offer
		if s.report != nil {
			claims = make(map[Kind]Offer, len(s.report.Claims))
			for _, c := range s.report.Claims {
				claims[c.Offer.Kind] = c.Offer
				kr := kind(c.Offer.Kind)
				for _, p := range c.Offer.Pieces {
					if p.Faulty {
						kr.Faults++
						res.Penalty = satAdd(res.Penalty, rates.PenaltyPerFault)
					}
				}
			}
		}

		rep, ok := prev[id]
		if !ok {
			rep = NewReputation()
		}
		// A measured kind is probed by the committee together: the
		// measurements of one round add up to the edge's capacity, and
		// the round's sum is what the claim is judged against. A keeper's
		// fail that carries its measurement (its own share fell short) is
		// judged by the sum too: a flow that got less than its share of
		// the edge's link says nothing of the link.
		sums := make(map[Kind]map[uint64]uint64)
		for _, v := range vs {
			key, ok := keys[v.kind]
			if !ok || !summed(v.final, key) {
				continue
			}
			if sums[v.kind] == nil {
				sums[v.kind] = make(map[uint64]uint64)
			}
			sums[v.kind][v.round] = satAdd(sums[v.kind][v.round], measurement(v.final, key))
		}
		for _, v := range vs {
			kr := kind(v.kind)
			kr.Challenges++
			switch {
			case v.final == nil:
				kr.Timeouts++
				continue
			case v.final.Result == Pass:
				v.passed = true
			}
			if o, ok := claims[v.kind]; ok && summed(v.final, keys[v.kind]) {
				v.passed = !belowShare(sums[v.kind][v.round], claimedAmount(o), rates.MinShare)
			}
			if v.passed {
				kr.Passes++
				res.Reward = satAdd(res.Reward, rates.RewardPerPass[v.kind])
			} else {
				kr.Fails++
				res.Penalty = satAdd(res.Penalty, rates.PenaltyPerFail[v.kind])
			}
			rep = rep.update(v.passed)
		}
		res.Reputation, res.Score = rep, rep.Score()

		if kr := byKind[KindLiveness]; kr != nil && kr.Passes+kr.Fails > 0 {
			res.UptimePPM = mulDiv(kr.Passes, PPM, kr.Passes+kr.Fails)
		}
		for _, kr := range byKind {
			o, claimed := claims[kr.Kind]
			decided := kr.Passes + kr.Fails
			if !claimed || decided == 0 {
				continue
			}
			switch kr.Kind {
			case KindLiveness:
				kr.Verified = res.UptimePPM
			case KindStorage:
				kr.Verified = mulDiv(claimedAmount(o), kr.Passes, decided)
			case KindCompute:
				if kr.Fails == 0 {
					kr.Verified = o.MilliTOPS
				}
			}
			if _, ok := keys[kr.Kind]; ok {
				rounds := make([]uint64, 0, len(sums[kr.Kind]))
				for _, sum := range sums[kr.Kind] {
					rounds = append(rounds, sum)
				}
				kr.Verified = min(lowerMedian(rounds), claimedAmount(o))
			}
		}

		res.Kinds = make([]KindResult, 0, len(byKind))
		for _, kr := range byKind {
			res.Kinds = append(res.Kinds, *kr)
		}
		slices.SortFunc(res.Kinds, func(a, b KindResult) int { return cmp.Compare(a.Kind, b.Kind) })
		out = append(out, res)
	}
	return out
}

// better reports whether r should decide its challenge rather than cur: a
// pass over a fail, a fail over a timeout (no verdict), then the lower
// attempt, then the lower canonical encoding, so the choice does not
// depend on the order of the receipts.
func better(r, cur *Receipt) bool {
	rank := func(r *Receipt) int {
		switch r.Result {
		case Pass:
			return 2
		case Fail:
			return 1
		}
		return 0
	}
	if rank(r) == 0 {
		return false // timeouts never decide
	}
	if cur == nil {
		return true
	}
	if c := cmp.Compare(rank(r), rank(cur)); c != 0 {
		return c > 0
	}
	if r.Attempt != cur.Attempt {
		return r.Attempt < cur.Attempt
	}
	a, errA := wire.Marshal(*r)
	b, errB := wire.Marshal(*cur)
	if errA != nil || errB != nil {
		return false
	}
	return bytes.Compare(a, b) < 0
}

// measurement returns r's measurement key as an amount: 0 if missing or
// negative.
// summed reports whether r counts in its round's sum of key: a pass, or
// a fail that carries its measurement. key "" is no measured kind.
func summed(r *Receipt, key string) bool {
	if r == nil || key == "" {
		return false
	}
	_, measured := r.Measurements[key]
	return r.Result == Pass || r.Result == Fail && measured
}

func measurement(r *Receipt, key string) uint64 {
	m := r.Measurements[key]
	if m < 0 {
		return 0
	}
	return uint64(m)
}

// claimedAmount is the amount an offer claims in its kind's unit: padded
// bytes of the non-faulty pieces, the larger bandwidth direction in Mbit/s,
// or milli-TOPS.
func claimedAmount(o Offer) uint64 {
	switch o.Kind {
	case KindStorage:
		var total uint64
		for _, p := range o.Pieces {
			if !p.Faulty {
				total = satAdd(total, p.Size)
			}
		}
		return total
	case KindBandwidth:
		return max(o.UpMbit, o.DownMbit)
	case KindCompute:
		return o.MilliTOPS
	}
	return 0
}

// belowShare reports whether m < claim*share/PPM, without overflow.
func belowShare(m, claim, share uint64) bool {
	// m*PPM < claim*share, both sides in 128 bits.
	mh, ml := bits.Mul64(m, PPM)
	ch, cl := bits.Mul64(claim, share)
	return mh < ch || mh == ch && ml < cl
}

// lowerMedian returns the lower median of xs (0 if empty); it sorts xs.
func lowerMedian(xs []uint64) uint64 {
	if len(xs) == 0 {
		return 0
	}
	slices.Sort(xs)
	return xs[(len(xs)-1)/2]
}

// mulDiv returns a*b/c rounded down, saturating at MaxUint64; c > 0.
func mulDiv(a, b, c uint64) uint64 {
	hi, lo := bits.Mul64(a, b)
	if hi >= c {
		return math.MaxUint64
	}
	q, _ := bits.Div64(hi, lo, c)
	return q
}

// satAdd returns a+b, saturating at MaxUint64.
func satAdd(a, b uint64) uint64 {
	s, carry := bits.Add64(a, b, 0)
	if carry != 0 {
		return math.MaxUint64
	}
	return s
}
