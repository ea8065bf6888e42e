// Package beacon gives aropeer verified drand randomness: the chains it
// trusts, verification with drand's own scheme code, the round clock, seed
// derivation, and the sources that deliver rounds (drand's HTTP relays,
// gossip on drand's topic, and a local devnet beacon).
//
// No beacon leaves this package unverified: every Source verifies what it
// delivers against the pinned chain info, and a round that cannot be
// obtained is never replaced by other randomness.
package beacon

import (
	"context"
	"errors"
	"time"
)

// Beacon is one round of a drand chain. Beacons returned by a Source have
// been verified against the chain's info.
type Beacon struct {
	Round uint64
	// Signature is the group's BLS signature of the round.
	Signature []byte
	// PreviousSignature is set on chained schemes only.
	PreviousSignature []byte
	// Randomness is SHA-256(Signature).
	Randomness []byte
}

// Info describes a drand chain: what verifies its beacons and what times
// its rounds. Its Hash is what a network config pins.
type Info struct {
	Hash        []byte        // chain hash
	PublicKey   []byte        // group public key, compressed
	Scheme      string        // drand scheme ID, e.g. bls-unchained-g1-rfc9380
	Period      time.Duration // time between rounds
	GenesisTime int64         // unix seconds of round 1
	GenesisSeed []byte        // drand's group hash
	BeaconID    string        // "default", "quicknet", ...
}

// Source delivers verified beacons of one chain.
type Source interface {
	// Info returns the chain info the source verifies against.
	Info() Info
	// Get returns round's beacon, verified. It fails with ErrNotYet for a
	// round whose time has not come and ErrUnavailable when the source
	// cannot obtain it.
	Get(ctx context.Context, round uint64) (Beacon, error)
	// Watch delivers verified beacons in strictly increasing round order
	// from the current round on, until ctx ends; then it closes the
	// channel. After a stall it catches up on every round it can still
	// obtain, in order.
	Watch(ctx context.Context) <-chan Beacon
}

// Errors sources and verification return.
var (
	// ErrInvalid means a beacon does not verify against the chain info.
	ErrInvalid = errors.New("beacon: invalid beacon")
	// ErrNotYet means a round's time has not come.
	ErrNotYet = errors.New("beacon: round is in the future")
	// ErrUnavailable means a source could not obtain a round.
	ErrUnavailable = errors.New("beacon: round unavailable")
)
