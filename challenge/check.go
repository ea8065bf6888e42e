package challenge

import (
	"bytes"
	"errors"
	"fmt"
	"slices"

	"github.com/aropeer/aropeer/beacon"
	"github.com/aropeer/aropeer/proofs"
)

// Why CheckChallenge refuses a challenge. All but ErrMismatch and
// ErrNoManifest say the challenge itself is wrong, whoever judges it.
var (
	ErrWrongNetwork    = errors.New("challenge: wrong network")
	ErrFuture          = errors.New("challenge: round in the future")
	ErrTooOld          = errors.New("challenge: round too old")
	ErrTooManyAttempts = errors.New("challenge: too many attempts")
	ErrNotOnCommittee  = errors.New("challenge: keeper not on the edge's committee")
	ErrNotOffered      = errors.New("challenge: kind not offered")
	ErrNotScheduled    = errors.New("challenge: not scheduled")
	ErrBadSeed         = errors.New("challenge: bad seed")
	// ErrMismatch means the caller passed the beacon or committees of
	// another round or epoch than the challenge's: it says nothing about
	// the challenge, which may be fine when judged with the right ones.
	ErrMismatch = errors.New("challenge: beacon or committees not of the challenge's round")
	// ErrNoManifest means this node holds no manifest of the edge, so it
	// cannot tell what the edge offers. It wraps ErrNotOffered.
	ErrNoManifest = fmt.Errorf("%w: no manifest", ErrNotOffered)
)

// CheckChallenge returns nil if the schedule called for c, given b, the
// beacon of c.Round; cs, the committees of c's epoch (they need hold only
// c.Edge's); the edge's manifest; and currentRound, the round now. It is
// the stateless part of what a topic validator and an edge check;
// duplicates and containment state are the engine's.
//
// It checks, in order: the network; that c.Round is not after
// currentRound nor more than p.Window rounds before it; the attempt
// number; that b and cs are c's; that c.Epoch is c.Round's epoch; that
// c.Keeper is on c.Edge's committee; that the manifest is c.Edge's and
// offers c.Kind; that IsDue holds; and that c.Seed is the derived seed.
func CheckChallenge(c proofs.Challenge, b beacon.Beacon, cs *Committees, manifest proofs.Manifest, p Params, currentRound uint64) error {
	if c.Network != p.Network {
		return fmt.Errorf("%w: challenge is for network %q, this is %q", ErrWrongNetwork, c.Network, p.Network)
	}
	if c.Round > currentRound {
		return fmt.Errorf("%w: challenge of round %d arrived in round %d: check the keeper's clock", ErrFuture, c.Round, currentRound)
	}
	if currentRound-c.Round > p.Window {
		return fmt.Errorf("%w: challenge of round %d arrived in round %d, more than the %d-round window after it", ErrTooOld, c.Round, currentRound, p.Window)
	}
	if c.Attempt > p.Retries {
		return fmt.Errorf("%w: attempt %d of a challenge with %d retries allowed", ErrTooManyAttempts, c.Attempt, p.Retries)
	}
	if b.Round != c.Round {
		return fmt.Errorf("%w: judging a challenge of round %d with the beacon of round %d", ErrMismatch, c.Round, b.Round)
	}
	epoch := p.EpochOf(c.Round)
	if c.Epoch != epoch {
		return fmt.Errorf("%w: challenge claims epoch %d, but round %d is in epoch %d", ErrNotScheduled, c.Epoch, c.Round, epoch)
	}
	if cs == nil {
		return fmt.Errorf("%w: judging a challenge of epoch %d without committees", ErrMismatch, epoch)
	}
	if cs.epoch != epoch || cs.round != p.FirstRound(epoch) {
		return fmt.Errorf("%w: judging a challenge of epoch %d (committees from round %d) with committees of epoch %d from round %d", ErrMismatch, epoch, p.FirstRound(epoch), cs.epoch, cs.round)
	}
	members := cs.Of(c.Edge)
	if members == nil {
		return fmt.Errorf("%w: edge %s has no committee in epoch %d", ErrNotOnCommittee, c.Edge, epoch)
	}
	if !slices.Contains(members, c.Keeper) {
		return fmt.Errorf("%w: keeper %s is not on edge %s's committee %v in epoch %d", ErrNotOnCommittee, c.Keeper, c.Edge, members, epoch)
	}
	if manifest.Edge != c.Edge || manifest.Network != p.Network {
		return fmt.Errorf("%w: the manifest given is edge %s's on network %q, not edge %s's", ErrNotOffered, manifest.Edge, manifest.Network, c.Edge)
	}
	if !offers(manifest, c.Kind, c.Round) {
		return fmt.Errorf("%w: edge %s's manifest (seq %d) does not offer %q in round %d", ErrNotOffered, c.Edge, manifest.Seq, c.Kind, c.Round)
	}
	d, due := IsDue(b, c.Keeper, c.Edge, c.Kind, p)
	if !due {
		return fmt.Errorf("%w: round %d's beacon does not call for keeper %s to challenge edge %s on %s (probability %v)", ErrNotScheduled, c.Round, c.Keeper, c.Edge, c.Kind, p.Probability[c.Kind])
	}
	if len(c.Seed) == 0 {
		return fmt.Errorf("%w: challenge carries no seed, round %d derives %x", ErrBadSeed, c.Round, d.Seed)
	}
	if !bytes.Equal(c.Seed, d.Seed[:]) {
		return fmt.Errorf("%w: challenge carries seed %x, round %d derives %x", ErrBadSeed, c.Seed, c.Round, d.Seed)
	}
	want, _ := d.Challenge(p.Network, manifest)
	switch {
	case (c.Piece == nil) != (want.Piece == nil):
		return fmt.Errorf("%w: a %s challenge names piece %v, the seed picks %v", ErrBadSeed, c.Kind, c.Piece, want.Piece)
	case c.Piece != nil && (!c.Piece.CID.Equals(want.Piece.CID) || c.Piece.Size != want.Piece.Size || c.Piece.Faulty || c.Piece.FaultRound != 0):
		return fmt.Errorf("%w: challenge names piece %s of %d bytes, the seed picks %s of %d among edge %s's (seq %d)", ErrBadSeed, c.Piece.CID, c.Piece.Size, want.Piece.CID, want.Piece.Size, c.Edge, manifest.Seq)
	}
	return nil
}
