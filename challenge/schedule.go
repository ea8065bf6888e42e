package challenge

import (
	"cmp"
	"crypto/sha256"
	"encoding/binary"
	"slices"

	"github.com/libp2p/go-libp2p/core/peer"

	"github.com/aropeer/aropeer/beacon"
	"github.com/aropeer/aropeer/proofs"
)

// Due is one challenge the schedule calls for: keeper challenges edge on
// kind in round Round.
type Due struct {
	Round  uint64
	Epoch  uint64
	Keeper peer.ID
	Edge   peer.ID
	Kind   proofs.Kind
	// Seed is Seed(beacon of Round, "aro/challenge", keeper, edge, kind);
	// the challenge's parameters derive from it.
	Seed [32]byte
}

// IsDue reports whether, in round b.Round, keeper challenges edge on
// kind: x, the first 8 bytes of Seed(b, "aro/challenge", keeper, edge,
// kind) read big-endian, is below floor(Probability[kind] · 2^64). For a
// kind the committee challenges Together, x is read from Seed(b,
// "aro/probe", edge, kind) instead, the same for every keeper, so that
// the whole committee is due in the same rounds. Probability 1 is always
// due, 0 or absent never. The Due, its seed always the keeper's own, is
// filled in either way. IsDue does not check the committee or the
// manifest.
func IsDue(b beacon.Beacon, keeper, edge peer.ID, kind proofs.Kind, p Params) (Due, bool) {
	d := Due{
		Round:  b.Round,
		Epoch:  p.EpochOf(b.Round),
		Keeper: keeper,
		Edge:   edge,
		Kind:   kind,
		Seed:   beacon.Seed(b, challengeDomain, []byte(keeper), []byte(edge), []byte(kind)),
	}
	if Together(kind) {
		return d, p.probeSlot(b.Round, []byte(edge)) && p.togetherThreshold(kind).due(beacon.Seed(b, probeDomain, []byte(edge), []byte(kind)))
	}
	return d, thresholdOf(p.Probability[kind]).due(d.Seed)
}

// probeSlot reports whether round is one of edge's slots for challenges
// run Together: every ProbeRounds-th round, offset by a hash of the edge
// so that the edges' probes spread over the rounds.
func (p Params) probeSlot(round uint64, edge []byte) bool {
	if p.ProbeRounds <= 1 {
		return true
	}
	h := sha256.Sum256(append([]byte(probeSlotDomain), edge...))
	return (round+binary.BigEndian.Uint64(h[:8]))%p.ProbeRounds == 0
}

// Stagger returns the round, among every, in which peer id does what
// each peer does every so many rounds (announce its manifest, file its
// report): a thousand edges doing it in the same round would make a
// burst each keeper forwards to its whole mesh, and the round's
// challenges and receipts would queue behind it.
func Stagger(id peer.ID, every uint64) uint64 {
	if every <= 1 {
		return 0
	}
	h := sha256.Sum256(append([]byte(staggerDomain), id...))
	return binary.BigEndian.Uint64(h[:8]) % every
}

// togetherThreshold is the chance of a Together kind in one of an edge's
// slots: ProbeRounds times the chance per round, so that the rate per
// round stays Probability[kind] (up to 1 per slot).
func (p Params) togetherThreshold(kind proofs.Kind) threshold {
	return thresholdOf(min(p.Probability[kind]*float64(max(p.ProbeRounds, 1)), 1))
}

// Together reports whether an edge's committee challenges it on kind all
// at once: bandwidth, so that the keepers' simultaneous measurements add
// up to the edge's capacity beyond any one keeper's link (FlashFlow).
func Together(kind proofs.Kind) bool { return kind == proofs.KindBandwidth }

// threshold is a probability as the schedule applies it to a seed.
type threshold struct {
	always bool
	below  uint64 // due when x < below
}

func thresholdOf(prob float64) threshold {
	switch {
	case prob >= 1:
		return threshold{always: true}
	case !(prob > 0): // 0, negative or NaN
		return threshold{}
	}
	// Scaling by a power of two is exact, and the product is below 2^64,
	// so the conversion truncates the same way on every machine.
	return threshold{below: uint64(prob * 0x1p64)}
}

func (t threshold) due(seed [32]byte) bool {
	return t.always || binary.BigEndian.Uint64(seed[:8]) < t.below
}

func (t threshold) never() bool { return !t.always && t.below == 0 }

// Schedule returns every challenge of round b.Round, sorted by keeper,
// edge and kind (each in byte order): for each keeper on the committee of
// an edge in c, each kind the edge's manifest offers and IsDue says is
// due. It is a pure function of the round's beacon, the epoch's
// committees, the manifests and p, so every peer computes the same
// schedule. Edges without a manifest are not challenged, nor are those
// whose manifest is of another edge or network. c must be the committees
// of b.Round's epoch, drawn from its first round; with any other, nothing
// is due and Schedule returns nil.
func Schedule(b beacon.Beacon, c *Committees, manifests map[peer.ID]proofs.Manifest, p Params) []Due {
	epoch := p.EpochOf(b.Round)
	if c == nil || c.epoch != epoch || c.round != p.FirstRound(epoch) {
		return nil
	}
	type kindRule struct {
		kind  proofs.Kind
		bytes []byte
		t     threshold
	}
	// The known kinds that can be due, in byte order; few, so the bits
	// of a uint32 hold which of them an edge offers.
	var kinds []kindRule
	for _, k := range proofs.Kinds() {
		t := thresholdOf(p.Probability[k])
		if Together(k) {
			t = p.togetherThreshold(k)
		}
		if !t.never() {
			kinds = append(kinds, kindRule{kind: k, bytes: []byte(k), t: t})
		}
	}
	slices.SortFunc(kinds, func(a, b kindRule) int { return cmp.Compare(a.kind, b.kind) })
	if len(kinds) == 0 {
		return nil
	}

	// Which of those kinds each edge offers, looked up once per edge
	// rather than once per committee seat; and of the kinds challenged
	// Together, which are due for the whole committee.
	offered := make([]uint32, len(c.edges))
	together := make([]uint32, len(c.edges))
	for i, edge := range c.edges {
		m, ok := manifests[edge]
		if !ok || m.Edge != edge || m.Network != p.Network {
			continue
		}
		for j, k := range kinds {
			if offers(m, k.kind, b.Round) {
				offered[i] |= 1 << j
				if Together(k.kind) && p.probeSlot(b.Round, c.edgeBytes[i]) && k.t.due(beacon.Seed(b, probeDomain, c.edgeBytes[i], k.bytes)) {
					together[i] |= 1 << j
				}
			}
		}
	}

	// Seed(b, domain, keeper, edge, kind) shares its hash state up to the
	// keeper across a keeper's edges, and up to the edge across its kinds:
	// save each once, and hash only the last part per seed.
	s := newSeeder()
	s.start(b, challengeDomain)
	prefix := s.save(nil)
	var keeperState, edgeState []byte
	// Room for the expected number of dues, and a little more, so that
	// the result is allocated once, not grown.
	var chance float64
	for _, k := range kinds {
		chance += min(p.Probability[k.kind], 1)
	}
	out := make([]Due, 0, int(float64(c.seats)*chance*1.05)+16)
	for _, keeper := range c.keepers {
		s.load(prefix)
		s.part([]byte(keeper))
		keeperState = s.save(keeperState)
		for _, i := range c.edgesOf[keeper] {
			if offered[i] == 0 {
				continue
			}
			edge := c.edges[i]
			s.load(keeperState)
			s.part(c.edgeBytes[i])
			edgeState = s.save(edgeState)
			for j, k := range kinds {
				if offered[i]&(1<<j) == 0 {
					continue
				}
				s.load(edgeState)
				s.part(k.bytes)
				seed := s.seed()
				due := k.t.due(seed)
				if Together(k.kind) {
					due = together[i]&(1<<j) != 0
				}
				if due {
					out = append(out, Due{Round: b.Round, Epoch: epoch, Keeper: keeper, Edge: edge, Kind: k.kind, Seed: seed})
				}
			}
		}
	}
	return out
}

// Challenge returns the challenge message of d's first attempt; a
// storage challenge names the piece PickPiece draws from the edge's
// manifest m, and there is none (false) when no piece is eligible.
func (d Due) Challenge(network string, m proofs.Manifest) (proofs.Challenge, bool) {
	c := proofs.Challenge{
		Network: network,
		Epoch:   d.Epoch,
		Round:   d.Round,
		Keeper:  d.Keeper,
		Edge:    d.Edge,
		Kind:    d.Kind,
		Attempt: 0,
		Seed:    slices.Clone(d.Seed[:]),
	}
	if d.Kind == proofs.KindStorage {
		o, _ := m.Offer(proofs.KindStorage)
		p, ok := proofs.PickPiece(c.Seed, o, d.Round)
		if !ok {
			return proofs.Challenge{}, false
		}
		c.Piece = &p
	}
	return c, true
}

// offers reports whether m offers kind k in round: storage only with a
// piece no declared fault excuses then.
func offers(m proofs.Manifest, k proofs.Kind, round uint64) bool {
	o, ok := m.Offer(k)
	if !ok {
		return false
	}
	return k != proofs.KindStorage || len(o.Eligible(round)) > 0
}
