package beacon

import (
	"crypto/sha256"
	"crypto/sha512"
	"errors"
	"fmt"
	"time"

	"github.com/drand/drand/v2/common"
	"github.com/drand/drand/v2/crypto"
	"github.com/drand/kyber"
)

// signerKeyDomain separates the hash that turns seed material into a
// signing key from any other use of the same bytes.
const signerKeyDomain = "aropeer/beacon/signer-key/v1"

// The devnet beacon. Its key is public on purpose: a devnet needs no
// outside service and anyone may reproduce its rounds, so it proves
// nothing and no real network may name it.
const (
	devnetSeed     = "aropeer devnet beacon"
	devnetGenesis  = 1767225600 // 2026-01-01T00:00:00Z
	devnetPeriod   = time.Second
	devnetBeaconID = "aropeer-devnet"
)

// Signer is a single-key beacon of the bls-unchained-g1-rfc9380 scheme
// (quicknet's): the same message, signature group and hash-to-curve as the
// League of Entropy's quicknet, with one key in place of a threshold
// group, so its beacons go through the same Verifier code path.
type Signer struct {
	scheme *crypto.Scheme
	secret kyber.Scalar
	info   Info
}

// NewSigner derives a signing key from secret, at least 32 bytes of seed
// material: the key is SHA-512(signerKeyDomain || secret) read as a
// big-endian integer modulo the BLS12-381 group order. The chain's
// GenesisSeed (drand's group hash) is SHA-256 of the compressed public
// key, and its Hash is computed with drand's algorithm. period must be a
// whole number of seconds, as drand's chain hash requires.
func NewSigner(secret []byte, period time.Duration, genesis int64, beaconID string) (*Signer, error) {
	if len(secret) < 32 {
		return nil, fmt.Errorf("beacon: signer secret is %d bytes, want at least 32", len(secret))
	}
	if beaconID == "" {
		return nil, errors.New("beacon: signer needs a beacon ID")
	}
	sch := crypto.NewPedersenBLSUnchainedG1()
	h := sha512.New()
	h.Write([]byte(signerKeyDomain))
	h.Write(secret)
	sk := sch.KeyGroup.Scalar().SetBytes(h.Sum(nil))
	if sk.Equal(sch.KeyGroup.Scalar().Zero()) {
		return nil, errors.New("beacon: signer secret hashes to the zero key")
	}
	pub, err := sch.KeyGroup.Point().Mul(sk, nil).MarshalBinary()
	if err != nil {
		return nil, fmt.Errorf("beacon: signer public key: %w", err)
	}
	seed := sha256.Sum256(pub)
	info := Info{
		PublicKey:   pub,
		Scheme:      sch.Name,
		Period:      period,
		GenesisTime: genesis,
		GenesisSeed: seed[:],
		BeaconID:    beaconID,
	}
	if info.Hash, err = info.ComputeHash(); err != nil {
		return nil, fmt.Errorf("beacon: signer chain info: %w", err)
	}
	return &Signer{scheme: sch, secret: sk, info: info}, nil
}

// Info returns the chain info of the signer's beacons.
func (s *Signer) Info() Info {
	return s.info.clone()
}

// Sign returns round's beacon with its randomness. It signs any round it
// is asked for: holding rounds back until their time is the caller's job.
func (s *Signer) Sign(round uint64) (Beacon, error) {
	if round == 0 {
		return Beacon{}, errors.New("beacon: round 0 has no beacon")
	}
	msg := s.scheme.DigestBeacon(&common.Beacon{Round: round})
	sig, err := s.scheme.AuthScheme.Sign(s.secret, msg)
	if err != nil {
		return Beacon{}, fmt.Errorf("beacon: sign round %d: %w", round, err)
	}
	return Complete(Beacon{Round: round, Signature: sig}), nil
}

// DevnetSigner returns the devnet's beacon: key seed SHA-256("aropeer
// devnet beacon"), one round a second from 2026-01-01T00:00:00Z, beacon ID
// "aropeer-devnet". Its key is public by design; see devnetSeed.
func DevnetSigner() *Signer {
	seed := sha256.Sum256([]byte(devnetSeed))
	s, err := NewSigner(seed[:], devnetPeriod, devnetGenesis, devnetBeaconID)
	if err != nil {
		// Constant inputs: TestDevnetSigner proves this cannot happen.
		panic(err)
	}
	return s
}
