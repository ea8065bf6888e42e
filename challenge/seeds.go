package challenge

import (
	"crypto/sha256"
	"encoding"
	"encoding/binary"
	"hash"

	"github.com/aropeer/aropeer/beacon"
)

// The seed domains of the two draws this package makes.
const (
	committeeDomain = "aro/committee"
	challengeDomain = "aro/challenge"
	// probeDomain decides, per edge, the rounds in which its committee
	// challenges it together (Together kinds).
	probeDomain = "aro/probe"
	// probeSlotDomain hashes an edge to the offset of its probe slots.
	probeSlotDomain = "aro/probe-slot/"
	// staggerDomain hashes a peer to the round of its periodic gossip.
	staggerDomain = "aro/stagger/"
)

// stateHash is a SHA-256 whose state can be saved and restored.
// crypto/sha256 (and its BoringCrypto variant) provides both.
type stateHash interface {
	hash.Hash
	encoding.BinaryAppender
	encoding.BinaryUnmarshaler
}

// seeder computes beacon.Seed for many part lists that share leading
// parts. beacon.Seed hashes domain, randomness and every part anew, about
// three SHA-256 blocks per seed; the schedule derives tens of thousands
// of seeds per round that differ only in their last part. The seeder
// saves the hash state after the shared parts and restores it, so each
// seed costs only the blocks its own parts touch. Seeds are the same
// bytes beacon.Seed gives (seeds_test.go checks it).
type seeder struct {
	h   stateHash
	n   [8]byte
	out [sha256.Size]byte
}

func newSeeder() *seeder {
	return &seeder{h: sha256.New().(stateHash)}
}

// start begins a seed of domain from b, as beacon.Seed does.
func (s *seeder) start(b beacon.Beacon, domain string) {
	rnd := b.Randomness
	if len(rnd) != sha256.Size {
		r := sha256.Sum256(b.Signature)
		rnd = r[:]
	}
	s.h.Reset()
	s.length(len(domain))
	s.h.Write([]byte(domain))
	s.h.Write(rnd)
}

// part adds one length-prefixed part.
func (s *seeder) part(p []byte) {
	s.length(len(p))
	s.h.Write(p)
}

func (s *seeder) length(n int) {
	binary.BigEndian.PutUint64(s.n[:], uint64(n))
	s.h.Write(s.n[:])
}

// save appends the hash state to buf[:0] and returns it.
func (s *seeder) save(buf []byte) []byte {
	// Neither implementation fails to marshal its own state.
	out, _ := s.h.AppendBinary(buf[:0])
	return out
}

// load restores a state save returned.
func (s *seeder) load(state []byte) {
	// A state from save always unmarshals.
	_ = s.h.UnmarshalBinary(state)
}

// seed finishes the seed.
func (s *seeder) seed() [sha256.Size]byte {
	s.h.Sum(s.out[:0])
	return s.out
}
