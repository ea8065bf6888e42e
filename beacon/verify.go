package beacon

import (
	"bytes"
	"crypto/sha256"
	"fmt"
	"sync"

	"github.com/drand/drand/v2/common"
	"github.com/drand/drand/v2/crypto"
	"github.com/drand/kyber"
)

// Verifier checks beacons of one chain with drand's own scheme code. It
// decodes the chain's public key once; it is safe for concurrent use.
// Beacons that verified are remembered process-wide (see verifiedBeacons).
type Verifier struct {
	info    Info
	scheme  *crypto.Scheme
	public  kyber.Point
	sigLen  int
	chained bool
}

// verifiedBeacons remembers the latest beacons that verified in this
// process, by chain, round and signatures, so that each is checked once:
// a BLS pairing costs about a millisecond, and every beacon reaches a
// node by gossip validation and again by its mux (in a simulation, every
// node of the network, all in one process).
var verifiedBeacons = &beaconMemo{rounds: make(map[beaconKey][32]byte)}

// verifiedMemo bounds how many rounds of all chains the memo holds.
const verifiedMemo = 256

type beaconKey struct {
	chain string
	round uint64
}

type beaconMemo struct {
	mu     sync.Mutex
	rounds map[beaconKey][32]byte // digest of the signatures that verified
}

// seen tells whether round of chain verified before with the same
// signatures.
func (m *beaconMemo) seen(k beaconKey, digest [32]byte) bool {
	m.mu.Lock()
	defer m.mu.Unlock()
	d, ok := m.rounds[k]
	return ok && d == digest
}

// remember notes that k verified with digest, forgetting the oldest round
// once full.
func (m *beaconMemo) remember(k beaconKey, digest [32]byte) {
	m.mu.Lock()
	defer m.mu.Unlock()
	m.rounds[k] = digest
	if len(m.rounds) > verifiedMemo {
		oldest := k
		for o := range m.rounds {
			if o.round < oldest.round {
				oldest = o
			}
		}
		delete(m.rounds, oldest)
	}
}

// signatureDigest covers what a beacon's verification depends on besides
// its chain and round.
func signatureDigest(b Beacon) [32]byte {
	h := sha256.New()
	h.Write(b.Signature)
	h.Write([]byte{0})
	h.Write(b.PreviousSignature)
	var d [32]byte
	h.Sum(d[:0])
	return d
}

// NewVerifier returns a Verifier for the chain info, which must be
// complete and consistent: a supported scheme (pedersen-bls-chained,
// bls-unchained-g1-rfc9380 or bls-unchained-on-g1), a valid public key and
// a Hash equal to the hash of its contents.
func NewVerifier(info Info) (*Verifier, error) {
	sch, err := schemeByID(info.Scheme)
	if err != nil {
		return nil, err
	}
	if err := info.check(); err != nil {
		return nil, err
	}
	pub, err := decodePublicKey(sch, info.PublicKey)
	if err != nil {
		return nil, err
	}
	return &Verifier{
		info:    info.clone(),
		scheme:  sch,
		public:  pub,
		sigLen:  sch.SigGroup.PointLen(),
		chained: sch.Name == crypto.DefaultSchemeID,
	}, nil
}

// Info returns a copy of the chain info v verifies against.
func (v *Verifier) Info() Info {
	return v.info.clone()
}

// Verify checks that b is the chain's beacon for b.Round. Every refusal
// wraps ErrInvalid with its reason. Randomness may be nil, and is then
// not checked (nor filled: see Complete); when present it must be
// SHA-256(Signature). On chained schemes PreviousSignature is required; on
// unchained ones it must be empty, since the signature does not cover it.
//
// The signature must be the canonical compressed encoding of a point of
// the prime-order subgroup. This matters because Randomness is a hash of
// the signature bytes: a second encoding of a valid signature (the point
// plus a point whose order divides the cofactor, or x written as x+p)
// would otherwise give a second randomness for the same round.
// kyber-bls12381 (kilic's FromCompressed) enforces both when it decodes;
// verify_test.go pins that.
func (v *Verifier) Verify(b Beacon) error {
	if b.Round == 0 {
		return fmt.Errorf("%w: round 0 has no beacon", ErrInvalid)
	}
	if len(b.Signature) != v.sigLen {
		return fmt.Errorf("%w: round %d: signature is %d bytes, want %d for %s",
			ErrInvalid, b.Round, len(b.Signature), v.sigLen, v.scheme.Name)
	}
	// Compressed-point flags: bit 7 compression, bit 6 infinity. The
	// identity is a valid encoding but never a valid signature.
	if b.Signature[0]&0x40 != 0 {
		return fmt.Errorf("%w: round %d: signature is the point at infinity", ErrInvalid, b.Round)
	}
	switch {
	case v.chained && len(b.PreviousSignature) == 0:
		return fmt.Errorf("%w: round %d: chained scheme %s without previous signature", ErrInvalid, b.Round, v.scheme.Name)
	case !v.chained && len(b.PreviousSignature) != 0:
		return fmt.Errorf("%w: round %d: unchained scheme %s with a previous signature", ErrInvalid, b.Round, v.scheme.Name)
	case len(b.PreviousSignature) > v.sigLen:
		// A previous signature, or the group hash before round 2.
		return fmt.Errorf("%w: round %d: previous signature is %d bytes, more than a signature", ErrInvalid, b.Round, len(b.PreviousSignature))
	}
	if len(b.Randomness) != 0 {
		want := sha256.Sum256(b.Signature)
		if !bytes.Equal(b.Randomness, want[:]) {
			return fmt.Errorf("%w: round %d: randomness is not SHA-256 of the signature", ErrInvalid, b.Round)
		}
	}
	key, digest := beaconKey{chain: string(v.info.Hash), round: b.Round}, signatureDigest(b)
	if verifiedBeacons.seen(key, digest) {
		return nil
	}
	db := &common.Beacon{Round: b.Round, Signature: b.Signature, PreviousSig: b.PreviousSignature}
	if err := v.scheme.VerifyBeacon(db, v.public); err != nil {
		// Decode again only on failure, to tell a malformed point from a
		// wrong signature without paying for two decodings on the hot path.
		if derr := v.scheme.SigGroup.Point().UnmarshalBinary(b.Signature); derr != nil {
			return fmt.Errorf("%w: round %d: signature is not a canonical point of the prime-order subgroup: %v",
				ErrInvalid, b.Round, derr)
		}
		return fmt.Errorf("%w: round %d: bad signature for chain %s", ErrInvalid, b.Round, v.info.HashString())
	}
	verifiedBeacons.remember(key, digest)
	return nil
}

// Complete returns b with Randomness set to SHA-256(Signature), drand's
// derivation. It does not verify b.
func Complete(b Beacon) Beacon {
	r := sha256.Sum256(b.Signature)
	b.Randomness = r[:]
	return b
}

// Canonical returns b as the chain signs it: randomness derived from the
// signature, and no previous signature on an unchained scheme. The
// signature does not cover that field there, so a relay or peer could put
// anything in it, and it must not make a genuine round look invalid or two
// copies of one round look different.
func (v *Verifier) Canonical(b Beacon) Beacon {
	if !v.chained {
		b.PreviousSignature = nil
	}
	return Complete(b)
}
