package challenge

import (
	"errors"
	"slices"
	"testing"

	"github.com/libp2p/go-libp2p/core/peer"

	"github.com/aropeer/aropeer/beacon"
	"github.com/aropeer/aropeer/proofs"
)

// checkFixture is one challenge the schedule called for, with what judges
// it, and the material to break it: a keeper off the edge's committee, a
// kind the edge does not offer, and a committee keeper and offered kind
// the round does not call for.
type checkFixture struct {
	p         Params
	b         beacon.Beacon
	cs        *Committees
	m         proofs.Manifest
	c         proofs.Challenge
	outsider  peer.ID
	unoffered proofs.Kind
	undue     proofs.Challenge
}

func newCheckFixture(t *testing.T) checkFixture {
	t.Helper()
	p, edges, manifests := rateNetwork()
	// rateNetwork's edge 6 offers liveness, compute and storage, not
	// bandwidth.
	edge := edges[6]
	m := manifests[edge]
	for r := p.FirstRound(3); r < p.FirstRound(4); r++ {
		cs := NewCommittees(syntheticBeacon(p.FirstRound(3)), 3, edges, p)
		b := syntheticBeacon(r)
		var due, undue *Due
		for _, k := range cs.Of(edge) {
			if d, ok := IsDue(b, k, edge, proofs.KindStorage, p); ok && due == nil {
				due = &d
			} else if !ok && undue == nil {
				undue = &d
			}
		}
		if due == nil || undue == nil {
			continue
		}
		f := checkFixture{p: p, b: b, cs: cs, m: m, c: must(due.Challenge(p.Network, m)), unoffered: proofs.KindBandwidth, undue: must(undue.Challenge(p.Network, m))}
		for _, k := range p.Keepers {
			if !cs.Has(edge, k.ID) {
				f.outsider = k.ID
			}
		}
		if !slices.Contains(Schedule(b, cs, manifests, p), *due) {
			t.Fatalf("round %d: IsDue holds but Schedule does not have %+v", r, *due)
		}
		return f
	}
	t.Fatal("no round of epoch 3 has both a due and an undue storage challenge on edge 6")
	return checkFixture{}
}

// TestCheckChallenge has one case per reason to refuse, each changing one
// thing of a challenge the schedule called for, and the valid ones at
// the limits.
func TestCheckChallenge(t *testing.T) {
	f := newCheckFixture(t)
	r := f.c.Round
	cases := []struct {
		name   string
		change func(c *proofs.Challenge, b *beacon.Beacon, cs **Committees, m *proofs.Manifest, now *uint64)
		want   error // nil: valid
	}{
		{"valid", func(*proofs.Challenge, *beacon.Beacon, **Committees, *proofs.Manifest, *uint64) {}, nil},
		{"valid in its own round", func(_ *proofs.Challenge, _ *beacon.Beacon, _ **Committees, _ *proofs.Manifest, now *uint64) { *now = r }, nil},
		{"valid on the window's last round", func(_ *proofs.Challenge, _ *beacon.Beacon, _ **Committees, _ *proofs.Manifest, now *uint64) {
			*now = r + f.p.Window
		}, nil},
		{"valid last retry", func(c *proofs.Challenge, _ *beacon.Beacon, _ **Committees, _ *proofs.Manifest, _ *uint64) {
			c.Attempt = f.p.Retries
		}, nil},
		{"other network", func(c *proofs.Challenge, _ *beacon.Beacon, _ **Committees, _ *proofs.Manifest, _ *uint64) {
			c.Network = "othernet"
		}, ErrWrongNetwork},
		{"from the future", func(_ *proofs.Challenge, _ *beacon.Beacon, _ **Committees, _ *proofs.Manifest, now *uint64) {
			*now = r - 1
		}, ErrFuture},
		{"past the window", func(_ *proofs.Challenge, _ *beacon.Beacon, _ **Committees, _ *proofs.Manifest, now *uint64) {
			*now = r + f.p.Window + 1
		}, ErrTooOld},
		{"retries exhausted", func(c *proofs.Challenge, _ *beacon.Beacon, _ **Committees, _ *proofs.Manifest, _ *uint64) {
			c.Attempt = f.p.Retries + 1
		}, ErrTooManyAttempts},
		{"beacon of another round", func(_ *proofs.Challenge, b *beacon.Beacon, _ **Committees, _ *proofs.Manifest, _ *uint64) {
			*b = syntheticBeacon(r + 1)
		}, ErrMismatch},
		{"committees of another epoch", func(_ *proofs.Challenge, _ *beacon.Beacon, cs **Committees, _ *proofs.Manifest, _ *uint64) {
			*cs = NewCommittees(syntheticBeacon(f.p.FirstRound(2)), 2, f.cs.Edges(), f.p)
		}, ErrMismatch},
		{"no committees", func(_ *proofs.Challenge, _ *beacon.Beacon, cs **Committees, _ *proofs.Manifest, _ *uint64) { *cs = nil }, ErrMismatch},
		{"epoch not the round's", func(c *proofs.Challenge, _ *beacon.Beacon, _ **Committees, _ *proofs.Manifest, _ *uint64) { c.Epoch++ }, ErrNotScheduled},
		{"keeper off the committee", func(c *proofs.Challenge, _ *beacon.Beacon, _ **Committees, _ *proofs.Manifest, _ *uint64) {
			c.Keeper = f.outsider
		}, ErrNotOnCommittee},
		{"edge without a committee", func(c *proofs.Challenge, _ *beacon.Beacon, _ **Committees, m *proofs.Manifest, _ *uint64) {
			c.Edge = syntheticID("stranger")
			m.Edge = c.Edge
		}, ErrNotOnCommittee},
		{"kind not offered", func(c *proofs.Challenge, _ *beacon.Beacon, _ **Committees, _ *proofs.Manifest, _ *uint64) {
			c.Kind = f.unoffered
		}, ErrNotOffered},
		{"another edge's manifest", func(_ *proofs.Challenge, _ *beacon.Beacon, _ **Committees, m *proofs.Manifest, _ *uint64) {
			m.Edge = syntheticID("other edge")
		}, ErrNotOffered},
		{"not due this round", func(c *proofs.Challenge, _ *beacon.Beacon, _ **Committees, _ *proofs.Manifest, _ *uint64) {
			*c = f.undue
		}, ErrNotScheduled},
		{"seed altered", func(c *proofs.Challenge, _ *beacon.Beacon, _ **Committees, _ *proofs.Manifest, _ *uint64) {
			c.Seed = slices.Clone(c.Seed)
			c.Seed[31] ^= 1
		}, ErrBadSeed},
		{"no seed", func(c *proofs.Challenge, _ *beacon.Beacon, _ **Committees, _ *proofs.Manifest, _ *uint64) {
			c.Seed = nil
		}, ErrBadSeed},
		{"another piece", func(c *proofs.Challenge, _ *beacon.Beacon, _ **Committees, _ *proofs.Manifest, _ *uint64) {
			c.Piece = &proofs.Piece{CID: syntheticPiece("not held"), Size: c.Piece.Size}
		}, ErrBadSeed},
		{"piece of another size", func(c *proofs.Challenge, _ *beacon.Beacon, _ **Committees, _ *proofs.Manifest, _ *uint64) {
			c.Piece = &proofs.Piece{CID: c.Piece.CID, Size: 2 * c.Piece.Size}
		}, ErrBadSeed},
		{"piece's fault declared two rounds before", func(_ *proofs.Challenge, _ *beacon.Beacon, _ **Committees, m *proofs.Manifest, _ *uint64) {
			*m = faulted(*m, r-2)
		}, ErrNotOffered},
		{"valid: piece's fault declared a round before, too late", func(_ *proofs.Challenge, _ *beacon.Beacon, _ **Committees, m *proofs.Manifest, _ *uint64) {
			*m = faulted(*m, r-1)
		}, nil},
		{"valid: piece's fault declared after the round", func(_ *proofs.Challenge, _ *beacon.Beacon, _ **Committees, m *proofs.Manifest, _ *uint64) {
			*m = faulted(*m, r+1)
		}, nil},
	}
	sentinels := []error{ErrWrongNetwork, ErrFuture, ErrTooOld, ErrTooManyAttempts, ErrMismatch, ErrNotOnCommittee, ErrNotOffered, ErrNotScheduled, ErrBadSeed}
	covered := map[error]bool{}
	for _, tc := range cases {
		t.Run(tc.name, func(t *testing.T) {
			c, b, cs, m, now := f.c, f.b, f.cs, f.m, r+1
			tc.change(&c, &b, &cs, &m, &now)
			err := CheckChallenge(c, b, cs, m, f.p, now)
			if tc.want == nil {
				if err != nil {
					t.Fatalf("refused: %v", err)
				}
				return
			}
			if !errors.Is(err, tc.want) {
				t.Fatalf("error %v, want %v", err, tc.want)
			}
			for _, s := range sentinels {
				if s != tc.want && errors.Is(err, s) {
					t.Errorf("error %v also matches %v", err, s)
				}
			}
			covered[tc.want] = true
			t.Log(err)
		})
	}
	for _, s := range sentinels {
		if !covered[s] {
			t.Errorf("no case for %v", s)
		}
	}
}

// must is a challenge the test knows the schedule can build.
func must(c proofs.Challenge, ok bool) proofs.Challenge {
	if !ok {
		panic("no challenge")
	}
	return c
}

// faulted is m with its storage pieces declared faulty in round.
func faulted(m proofs.Manifest, round uint64) proofs.Manifest {
	m.Offers = slices.Clone(m.Offers)
	for i, o := range m.Offers {
		if o.Kind == proofs.KindStorage {
			o.Pieces = slices.Clone(o.Pieces)
			for j := range o.Pieces {
				o.Pieces[j].Faulty, o.Pieces[j].FaultRound = true, round
			}
			m.Offers[i] = o
		}
	}
	return m
}

// TestLateFault: a fault declared in the current or the previous round is
// taken; one declared earlier, or backdated to the start for a piece held
// healthy, is not; faults already known pass unchanged.
func TestLateFault(t *testing.T) {
	old := manifestOf("testnet", syntheticID("edge"), proofs.KindLiveness, proofs.KindStorage)
	next := func(round uint64) proofs.Manifest {
		m := faulted(old, round)
		m.Seq++
		return m
	}
	for _, tc := range []struct {
		name      string
		old, next proofs.Manifest
		now       uint64
		late      bool
	}{
		{"declared this round", old, next(100), 100, false},
		{"declared the round before", old, next(99), 100, false},
		{"declared two rounds before", old, next(98), 100, true},
		{"backdated to the start", old, next(0), 100, true},
		{"already known", next(50), next(50), 100, false},
		{"a new piece faulty from the start", manifestOf("testnet", syntheticID("edge"), proofs.KindLiveness), next(0), 100, false},
	} {
		err := LateFault(tc.old, tc.next, tc.now)
		if tc.late != errors.Is(err, ErrLateFault) {
			t.Errorf("%s: LateFault = %v, want late %v", tc.name, err, tc.late)
		}
	}
}
