package beacon

import (
	"crypto/sha256"
	"encoding/binary"
)

// Seed derives a 32-byte seed for one decision from a verified beacon:
//
//	SHA-256( len(domain) || domain || randomness || len(part1) || part1 || ... )
//
// where each len is the byte length as an 8-byte big-endian integer and
// randomness is the beacon's 32-byte Randomness. Every variable-length
// field is prefixed with its length and randomness has a fixed length, so
// the hashed bytes decode one way only: (domain "ab", part "c") and
// (domain "a", part "bc") or (parts "a","b") and (part "ab") cannot
// collide. testdata/seed_vectors.json has vectors from an independent
// implementation.
//
// A beacon whose Randomness is not 32 bytes (nil before Complete) has it
// derived from its Signature, as drand does.
func Seed(b Beacon, domain string, parts ...[]byte) [32]byte {
	rnd := b.Randomness
	if len(rnd) != sha256.Size {
		r := sha256.Sum256(b.Signature)
		rnd = r[:]
	}
	h := sha256.New()
	var n [8]byte
	binary.BigEndian.PutUint64(n[:], uint64(len(domain)))
	h.Write(n[:])
	h.Write([]byte(domain))
	h.Write(rnd)
	for _, p := range parts {
		binary.BigEndian.PutUint64(n[:], uint64(len(p)))
		h.Write(n[:])
		h.Write(p)
	}
	var out [32]byte
	h.Sum(out[:0])
	return out
}
