package proofs

import (
	"github.com/ipfs/go-cid"
	"github.com/libp2p/go-libp2p/core/peer"

	"github.com/aropeer/aropeer/wire"
)

// ChallengeDomain signs challenges.
var ChallengeDomain = wire.Domain{Name: "aro-challenge", PayloadType: "/aro/challenge"}

// MaxChallengeSize caps a sealed challenge.
const MaxChallengeSize = 4 << 10

// Challenge is what a keeper asks of an edge in one round. Everything in
// it is derived from the round's beacon, so anyone can recompute it and
// check that the schedule called for it.
type Challenge struct {
	Network string `cbor:"net"`
	Epoch   uint64 `cbor:"epoch"`
	// Round is the round whose beacon called for the challenge. A retry
	// under containment keeps it and raises Attempt.
	Round   uint64  `cbor:"round"`
	Keeper  peer.ID `cbor:"keeper"`
	Edge    peer.ID `cbor:"edge"`
	Kind    Kind    `cbor:"kind"`
	Attempt uint32  `cbor:"attempt"` // 0 first, then each retry
	// Seed is Seed(round, "aro/challenge", keeper, edge, kind): the
	// challenge's parameters (nonce, leaf indices, matrix seed) derive
	// from it.
	Seed []byte `cbor:"seed"`
	// Piece is, for a storage challenge, the piece it names (PickPiece
	// from the seed) with its padded size; nil for other kinds.
	Piece *Piece `cbor:"piece,omitempty"`
}

// ID names the challenge independently of its attempt: every retry of a
// challenge has the same ID, so receipts of retries point to one thing.
func (c Challenge) ID() (cid.Cid, error) {
	c.Attempt = 0
	_, id, err := wire.MarshalCID(c)
	return id, err
}

// IDOf is ID for c decoded from payload, its canonical encoding: for a
// first attempt, most challenges, the CID of payload itself, without
// encoding c again as ID does. Every keeper computes it for every
// challenge gossiped.
func (c Challenge) IDOf(payload []byte) (cid.Cid, error) {
	if c.Attempt == 0 {
		return wire.CIDOf(payload), nil
	}
	return c.ID()
}
