package challenge

import (
	"encoding/binary"
	"math/bits"
	"slices"

	"github.com/libp2p/go-libp2p/core/peer"

	"github.com/aropeer/aropeer/beacon"
)

// Committee returns the k keepers of edge's committee for the epoch whose
// first round's beacon is b, best first. It is stake-weighted rendezvous
// hashing: for each keeper,
//
//	s = Seed(b, "aro/committee", edge, keeper)
//	x = the first 8 bytes of s, big-endian
//	u = (x + 1/2) / 2^64, uniform in (0, 1)
//	score = -stake / ln(u)
//
// and the k highest scores win; equal scores go to the keeper whose peer
// ID bytes are lower. Drawing keepers by highest -stake/ln(u) is drawing
// them one by one without replacement, each with probability proportional
// to its stake among those not yet drawn (Efraimidis and Spirakis 2006:
// u^(1/stake) orders the same way). Adding or removing a keeper moves
// only the seats that keeper wins or held.
//
// The scores are compared exactly in integers, not in floating point:
// ln(u) = ln 2 · log2(u) and the common factor ln 2 does not change the
// order, so score ∝ stake / L with L = -log2(u) computed bit by bit in
// fixed point with 57 fractional bits (negLog2), and stake_a/L_a against
// stake_b/L_b is decided by the 128-bit products stake_a·L_b and
// stake_b·L_a. Go's math.Log is assembly on amd64 and s390x and may be
// compiled with fused multiply-adds elsewhere, so float scores could
// differ in their last bit between peers; these cannot.
// testdata/committee_vectors.json holds committees computed from real
// drand beacons with the real-number formula in 80-digit arithmetic.
//
// Keepers with zero stake are never chosen. With k or fewer staked
// keepers, all of them are the committee. IDs must be distinct
// (Params.Validate checks it).
func Committee(b beacon.Beacon, edge peer.ID, keepers []Keeper, k int) []peer.ID {
	d := newDraw(b, keepers)
	return d.committee([]byte(edge), k, nil)
}

// draw computes committees of one beacon and keeper list, reusing its
// buffers from edge to edge.
type draw struct {
	s       *seeder
	prefix  []byte // hash state after domain and randomness
	edge    []byte // hash state after the edge too
	keepers []Keeper
	ids     [][]byte // keepers' IDs as bytes, hashed once each
	top     []candidate
}

// candidate is a keeper with its score stake/l.
type candidate struct {
	i     int // index in keepers
	stake uint64
	l     uint64 // -log2(u) in fixed point, see negLog2
}

func newDraw(b beacon.Beacon, keepers []Keeper) *draw {
	d := &draw{s: newSeeder(), keepers: keepers, ids: make([][]byte, len(keepers))}
	for i, k := range keepers {
		d.ids[i] = []byte(k.ID)
	}
	d.s.start(b, committeeDomain)
	d.prefix = d.s.save(nil)
	return d
}

// committee appends the committee of k of the edge whose ID is edge to
// out.
func (d *draw) committee(edge []byte, k int, out []peer.ID) []peer.ID {
	if k <= 0 {
		return out
	}
	d.s.load(d.prefix)
	d.s.part(edge)
	d.edge = d.s.save(d.edge)
	d.top = d.top[:0]
	for i, kp := range d.keepers {
		if kp.Stake == 0 {
			continue
		}
		d.s.load(d.edge)
		d.s.part(d.ids[i])
		seed := d.s.seed()
		l := newNegLog(binary.BigEndian.Uint64(seed[:8]))
		// Most keepers score well below the k-th best so far, and the
		// first bits of the logarithm prove it: skip the rest for them.
		// Only a provable loss is skipped; the others are compared
		// exactly, so the committee is the one negLog2 gives.
		l.advance(negLogPeek)
		if len(d.top) == k && loses(kp.Stake, l.atLeast(), d.top[k-1]) {
			continue
		}
		l.advance(negLogFrac - negLogPeek)
		d.offer(candidate{i: i, stake: kp.Stake, l: l.value()}, k)
	}
	for _, c := range d.top {
		out = append(out, d.keepers[c.i].ID)
	}
	return out
}

// offer keeps c if it is among the k best seen so far; top stays sorted
// best first. k is small (3), so insertion beats a heap.
func (d *draw) offer(c candidate, k int) {
	if len(d.top) == k && !d.better(c, d.top[k-1]) {
		return
	}
	if len(d.top) < k {
		d.top = append(d.top, c)
	} else {
		d.top[k-1] = c
	}
	for j := len(d.top) - 1; j > 0 && d.better(d.top[j], d.top[j-1]); j-- {
		d.top[j], d.top[j-1] = d.top[j-1], d.top[j]
	}
}

// negLogPeek is how many bits of the logarithm bound a keeper's score
// before its committee draw decides whether it needs the rest.
const negLogPeek = 8

// loses reports whether a keeper of stake whose L is at least lMin
// scores strictly below t: stake/L <= stake/lMin < t.stake/t.l.
func loses(stake, lMin uint64, t candidate) bool {
	ah, al := bits.Mul64(stake, t.l)
	bh, bl := bits.Mul64(t.stake, lMin)
	return ah < bh || ah == bh && al < bl
}

// better reports whether a scores above b: a.stake/a.l > b.stake/b.l,
// compared as a.stake·b.l > b.stake·a.l in 128 bits, ties to the lower
// peer ID.
func (d *draw) better(a, b candidate) bool {
	ah, al := bits.Mul64(a.stake, b.l)
	bh, bl := bits.Mul64(b.stake, a.l)
	if ah != bh {
		return ah > bh
	}
	if al != bl {
		return al > bl
	}
	return d.keepers[a.i].ID < d.keepers[b.i].ID
}

// Committees are the committees of every edge for one epoch, drawn once
// from the beacon of the epoch's first round. They are read-only, and
// safe to share between goroutines.
type Committees struct {
	epoch uint64
	round uint64
	edges []peer.ID // sorted
	// edgeBytes[i] is edges[i] as bytes, converted once for every
	// round's hashing.
	edgeBytes [][]byte
	// of[i] is edges[i]'s committee, best first.
	of    [][]peer.ID
	index map[peer.ID]int32 // edge → its index in edges
	// edgesOf holds each keeper's edges as indices into edges, ascending,
	// so in edge order; Schedule walks them.
	edgesOf map[peer.ID][]int32
	keepers []peer.ID // with at least one seat, sorted
	seats   int       // committee seats of all edges
}

// NewCommittees draws the committees of edges for epoch from b, the
// beacon of p.FirstRound(epoch), with p's keepers and committee size.
// Duplicate edges count once.
func NewCommittees(b beacon.Beacon, epoch uint64, edges []peer.ID, p Params) *Committees {
	edges = slices.Clone(edges)
	slices.Sort(edges)
	edges = slices.Compact(edges)
	c := &Committees{
		epoch:     epoch,
		round:     b.Round,
		edges:     edges,
		edgeBytes: make([][]byte, len(edges)),
		of:        make([][]peer.ID, len(edges)),
		index:     make(map[peer.ID]int32, len(edges)),
		edgesOf:   make(map[peer.ID][]int32),
	}
	d := newDraw(b, p.Keepers)
	// One backing array for all committees: one allocation, not one per
	// edge.
	seats := make([]peer.ID, 0, len(edges)*min(max(p.CommitteeSize, 0), len(p.Keepers)))
	for i, e := range edges {
		c.edgeBytes[i] = []byte(e)
		start := len(seats)
		seats = d.committee(c.edgeBytes[i], p.CommitteeSize, seats)
		c.of[i] = seats[start:len(seats):len(seats)]
		c.index[e] = int32(i)
		for _, k := range c.of[i] {
			c.edgesOf[k] = append(c.edgesOf[k], int32(i))
		}
	}
	c.seats = len(seats)
	for k := range c.edgesOf {
		c.keepers = append(c.keepers, k)
	}
	slices.Sort(c.keepers)
	return c
}

// Epoch returns the epoch the committees are for.
func (c *Committees) Epoch() uint64 { return c.epoch }

// Round returns the round of the beacon they were drawn from.
func (c *Committees) Round() uint64 { return c.round }

// Of returns edge's committee, best score first, or nil for an edge the
// committees were not drawn for.
func (c *Committees) Of(edge peer.ID) []peer.ID {
	i, ok := c.index[edge]
	if !ok {
		return nil
	}
	return slices.Clone(c.of[i])
}

// Has reports whether keeper is on edge's committee.
func (c *Committees) Has(edge, keeper peer.ID) bool {
	i, ok := c.index[edge]
	return ok && slices.Contains(c.of[i], keeper)
}

// EdgesOf returns the edges keeper must challenge this epoch, sorted.
func (c *Committees) EdgesOf(keeper peer.ID) []peer.ID {
	idx := c.edgesOf[keeper]
	if idx == nil {
		return nil
	}
	out := make([]peer.ID, len(idx))
	for j, i := range idx {
		out[j] = c.edges[i]
	}
	return out
}

// Edges returns the edges the committees were drawn for, sorted.
func (c *Committees) Edges() []peer.ID { return slices.Clone(c.edges) }

// Keepers returns the keepers with at least one seat, sorted.
func (c *Committees) Keepers() []peer.ID { return slices.Clone(c.keepers) }
