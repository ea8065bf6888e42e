package storage

import (
	"crypto/sha256"
	"encoding/binary"
	"errors"
	"fmt"
	"math/bits"

	"github.com/ipfs/go-cid"
	"github.com/libp2p/go-libp2p/core/protocol"

	"github.com/aropeer/aropeer/proofs"
)

// Protocol carries storage challenges: the keeper sends the challenge,
// the edge answers with one frame holding a proof for each leaf the
// challenge's seed names.
const Protocol protocol.ID = "/aro/storage/1.0.0"

// ServiceName is the resource manager service of the protocol's streams.
const ServiceName = "aro.storage"

// DefaultLeaves is how many leaves a challenge checks when the network
// sets none.
const DefaultLeaves = 16

// MaxLeaves caps the leaves of one challenge, and so an answer's size.
const MaxLeaves = 64

// maxAnswerSize caps an answer: MaxLeaves proofs of a 64 GiB piece (31
// levels), each node a CBOR byte string of 34 bytes, with room to spare.
const maxAnswerSize = MaxLeaves*(34+31*34+16) + 1024

// LeafIndices are the k leaves of a piece of padded bytes that the
// challenge of seed asks for: every peer derives the same ones.
func LeafIndices(seed []byte, padded uint64, k int) []uint64 {
	leaves := padded / LeafSize
	out := make([]uint64, k)
	var n [8]byte
	for i := range out {
		binary.BigEndian.PutUint64(n[:], uint64(i))
		h := sha256.New()
		h.Write([]byte("aro/storage/leaf"))
		h.Write(seed)
		h.Write(n[:])
		out[i] = binary.BigEndian.Uint64(h.Sum(nil)[:8]) % leaves
	}
	return out
}

// Prover proves leaves of the pieces an edge holds (pieces.Store): the
// proofs of leaves indices of piece, in their order, read together.
type Prover interface {
	ProveLeaves(piece cid.Cid, indices []uint64) ([]LeafProof, error)
}

// answer is the edge's reply: a proof per leaf asked for, in order, or
// the reason it has none.
type answer struct {
	Proofs []leafAnswer `cbor:"proofs,omitempty"`
	Error  string       `cbor:"error,omitempty"`
}

type leafAnswer struct {
	Index uint64   `cbor:"index"`
	Leaf  []byte   `cbor:"leaf"`
	Path  [][]byte `cbor:"path"`
}

func toAnswer(p LeafProof) leafAnswer {
	a := leafAnswer{Index: p.Index, Leaf: append([]byte(nil), p.Leaf[:]...), Path: make([][]byte, len(p.Path))}
	for i, n := range p.Path {
		a.Path[i] = append([]byte(nil), n[:]...)
	}
	return a
}

// errMalformed marks an answer whose shape is wrong, before any hash.
var errMalformed = errors.New("malformed proof")

func (a leafAnswer) proof() (LeafProof, error) {
	if len(a.Leaf) != LeafSize {
		return LeafProof{}, fmt.Errorf("%w: leaf of %d bytes", errMalformed, len(a.Leaf))
	}
	p := LeafProof{Index: a.Index, Leaf: [LeafSize]byte(a.Leaf), Path: make([][LeafSize]byte, len(a.Path))}
	for i, n := range a.Path {
		if len(n) != LeafSize {
			return LeafProof{}, fmt.Errorf("%w: path node %d of %d bytes", errMalformed, i, len(n))
		}
		p.Path[i] = [LeafSize]byte(n)
	}
	return p, nil
}

// checkChallenge refuses challenges no keeper should build or answer.
func checkChallenge(c proofs.Challenge, k int) error {
	switch {
	case c.Kind != proofs.KindStorage:
		return fmt.Errorf("storage: challenge of kind %q", c.Kind)
	case c.Piece == nil:
		return errors.New("storage: challenge names no piece")
	case len(c.Seed) == 0:
		return errors.New("storage: challenge without seed")
	case k < 1 || k > MaxLeaves:
		return fmt.Errorf("storage: %d leaves per challenge, want 1 to %d", k, MaxLeaves)
	}
	if _, err := RootOf(c.Piece.CID); err != nil {
		return err
	}
	if s := c.Piece.Size; s < 2*LeafSize || s > MaxPadded || bits.OnesCount64(s) != 1 {
		return fmt.Errorf("storage: challenge names a piece of padded size %d", s)
	}
	return nil
}
