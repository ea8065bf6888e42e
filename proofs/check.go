package proofs

import (
	"errors"
	"fmt"

	"github.com/ipfs/go-cid"
	"github.com/libp2p/go-libp2p/core/crypto"
	"github.com/libp2p/go-libp2p/core/peer"
	"github.com/multiformats/go-multihash"

	"github.com/aropeer/aropeer/wire"
)

// Sentinel errors of the checks. Every error of an Open function means the
// message is provably bad (a gossip validator rejects it): these two, or
// one of wire's (ErrTooLarge, ErrBadEnvelope, ErrWrongPayloadType,
// ErrBadSignature, ErrNonCanonical) or a decoding error.
var (
	// ErrInvalid means a message decodes but a field fails its checks.
	ErrInvalid = errors.New("proofs: invalid message")
	// ErrWrongSigner means a message is signed by another key than that of
	// the peer it names as its author (a challenge's or receipt's keeper,
	// a manifest's edge).
	ErrWrongSigner = errors.New("proofs: signer is not the message's author")
)

// Bounds on message fields.
const (
	// SeedSize is the length of a challenge seed (a SHA-256 digest).
	SeedSize = 32
	// MaxNetworkLen caps a network name, which also names gossip topics.
	MaxNetworkLen = 64
	// MaxMeasurements caps a receipt's measurements, and
	// MaxMeasurementKeyLen their keys: they are small figures, not logs.
	MaxMeasurements      = 16
	MaxMeasurementKeyLen = 32
	// MaxReasonLen caps a receipt's reason: a sentence for an operator.
	MaxReasonLen = 512
)

// invalid wraps a field error of a message of type what so that it reads
// "proofs: invalid receipt: ..." and matches ErrInvalid.
func invalid(what string, err error) error { return &invalidError{what, err} }

type invalidError struct {
	what string
	err  error
}

func (e *invalidError) Error() string        { return "proofs: invalid " + e.what + ": " + e.err.Error() }
func (e *invalidError) Unwrap() error        { return e.err }
func (e *invalidError) Is(target error) bool { return target == ErrInvalid }

// knownKind reports whether k is one of Kinds.
func knownKind(k Kind) bool {
	switch k {
	case KindLiveness, KindStorage, KindBandwidth, KindCompute:
		return true
	}
	return false
}

// checkNetwork checks a network name: it becomes part of topic names, so
// it is short and limited to letters, digits, '-', '_' and '.'.
func checkNetwork(n string) error {
	if n == "" || len(n) > MaxNetworkLen {
		return fmt.Errorf("network name %q: want 1 to %d characters", n, MaxNetworkLen)
	}
	for i := 0; i < len(n); i++ {
		c := n[i]
		if !('a' <= c && c <= 'z' || 'A' <= c && c <= 'Z' || '0' <= c && c <= '9' || c == '-' || c == '_' || c == '.') {
			return fmt.Errorf("network name %q: want letters, digits, '-', '_' or '.'", n)
		}
	}
	return nil
}

// checkPeer checks that id is a well-formed peer ID. Decoding already
// ensures it; a message built in memory may hold anything.
func checkPeer(role string, id peer.ID) error {
	if id == "" {
		return fmt.Errorf("no %s", role)
	}
	if _, err := peer.IDFromBytes([]byte(id)); err != nil {
		return fmt.Errorf("%s: %w", role, err)
	}
	return nil
}

// checkKey checks that key is the key of author.
func checkKey(key crypto.PrivKey, author peer.ID) error {
	id, err := peer.IDFromPrivateKey(key)
	if err != nil {
		return err
	}
	if id != author {
		return fmt.Errorf("key of %s cannot sign for %s: %w", id, author, ErrWrongSigner)
	}
	return nil
}

// checkMessageCID checks that c names a message the way wire names one
// (CIDv1, dag-cbor, sha2-256).
func checkMessageCID(c cid.Cid) error {
	if !c.Defined() {
		return errors.New("undefined")
	}
	p := c.Prefix()
	if p.Version != 1 || p.Codec != cid.DagCBOR || p.MhType != multihash.SHA2_256 || p.MhLength != 32 {
		return fmt.Errorf("%s is not a message CID (CIDv1, dag-cbor, sha2-256)", c)
	}
	return nil
}

// printable reports whether s is printable ASCII.
func printable(s string) bool {
	for i := 0; i < len(s); i++ {
		if s[i] < 0x20 || s[i] > 0x7e {
			return false
		}
	}
	return true
}

// checkRound checks the fields a challenge and its receipts share.
func checkRound(network string, round uint64, keeper, edge peer.ID, k Kind) error {
	if err := checkNetwork(network); err != nil {
		return err
	}
	if round == 0 {
		return errors.New("round 0: beacon rounds start at 1")
	}
	if err := checkPeer("keeper", keeper); err != nil {
		return err
	}
	if err := checkPeer("edge", edge); err != nil {
		return err
	}
	// A keeper vouching for itself proves nothing.
	if keeper == edge {
		return fmt.Errorf("keeper %s is also the edge", keeper)
	}
	if !knownKind(k) {
		return fmt.Errorf("unknown kind %q", k)
	}
	return nil
}

// Validate checks the fields of a challenge on their own: a network, a
// round, two distinct valid peers, a known kind and a seed of SeedSize
// bytes. Whether the schedule called for it is the engine's check. Errors
// match ErrInvalid.
func (c Challenge) Validate() error {
	if err := checkRound(c.Network, c.Round, c.Keeper, c.Edge, c.Kind); err != nil {
		return invalid("challenge", err)
	}
	if len(c.Seed) != SeedSize {
		return invalid("challenge", fmt.Errorf("seed of %d bytes, want %d", len(c.Seed), SeedSize))
	}
	switch {
	case c.Kind == KindStorage && c.Piece == nil:
		return invalid("challenge", errors.New("storage challenge without a piece"))
	case c.Kind != KindStorage && c.Piece != nil:
		return invalid("challenge", fmt.Errorf("%s challenge names a piece", c.Kind))
	case c.Piece != nil:
		if err := checkPiece(c.Piece); err != nil {
			return invalid("challenge", err)
		}
	}
	return nil
}

// Validate checks the fields of a receipt on their own: those it shares
// with its challenge, a defined challenge CID, a known result with a
// reason for a fail or timeout, and a few short measurement keys. Errors
// match ErrInvalid.
func (r Receipt) Validate() error {
	if err := checkRound(r.Network, r.Round, r.Keeper, r.Edge, r.Kind); err != nil {
		return invalid("receipt", err)
	}
	if err := checkMessageCID(r.Challenge); err != nil {
		return invalid("receipt", fmt.Errorf("challenge CID: %w", err))
	}
	switch r.Result {
	case Pass:
	case Fail, Timeout:
		if r.Reason == "" {
			return invalid("receipt", fmt.Errorf("%s without a reason", r.Result))
		}
	default:
		return invalid("receipt", fmt.Errorf("result %q: want pass, fail or timeout", r.Result))
	}
	if len(r.Reason) > MaxReasonLen {
		return invalid("receipt", fmt.Errorf("reason of %d bytes, over %d", len(r.Reason), MaxReasonLen))
	}
	if len(r.Measurements) > MaxMeasurements {
		return invalid("receipt", fmt.Errorf("%d measurements, over %d", len(r.Measurements), MaxMeasurements))
	}
	for k := range r.Measurements {
		if !measurementKey(k) {
			return invalid("receipt", fmt.Errorf("measurement key %q: want 1 to %d of a-z, 0-9 and '_'", k, MaxMeasurementKeyLen))
		}
	}
	return nil
}

// measurementKey reports whether k is a short snake_case key like "rtt_ms".
func measurementKey(k string) bool {
	if k == "" || len(k) > MaxMeasurementKeyLen {
		return false
	}
	for i := 0; i < len(k); i++ {
		c := k[i]
		if !('a' <= c && c <= 'z' || '0' <= c && c <= '9' || c == '_') {
			return false
		}
	}
	return true
}

// SealChallenge validates c, checks that key is c.Keeper's, and signs it.
// The CID names the payload (this attempt); Challenge.ID names the
// challenge across attempts.
func SealChallenge(key crypto.PrivKey, c Challenge) ([]byte, cid.Cid, error) {
	if err := c.Validate(); err != nil {
		return nil, cid.Undef, err
	}
	if err := checkKey(key, c.Keeper); err != nil {
		return nil, cid.Undef, fmt.Errorf("proofs: seal challenge: %w", err)
	}
	env, id, err := wire.SealMessage(key, ChallengeDomain, c)
	if err != nil {
		return nil, cid.Undef, fmt.Errorf("proofs: seal challenge: %w", err)
	}
	return env, id, nil
}

// OpenChallenge opens a sealed challenge: size cap, signature, canonical
// decoding, Validate, and a signer that is the challenge's keeper. It
// returns the challenge and the CID of its payload.
func OpenChallenge(env []byte) (Challenge, cid.Cid, error) {
	var c Challenge
	signer, id, err := wire.OpenMessage(env, ChallengeDomain, MaxChallengeSize, &c)
	if err != nil {
		return Challenge{}, cid.Undef, fmt.Errorf("proofs: open challenge: %w", err)
	}
	if err := c.Validate(); err != nil {
		return Challenge{}, cid.Undef, err
	}
	if signer != c.Keeper {
		return Challenge{}, cid.Undef, fmt.Errorf("proofs: open challenge: signed by %s for keeper %s: %w", signer, c.Keeper, ErrWrongSigner)
	}
	return c, id, nil
}

// KeptChallenge decodes a sealed challenge of ID id (of any attempt)
// that this node opened before (OpenChallenge) and kept, without checking
// its signature again: a keeper looking for passes without evidence reads
// every challenge of an epoch.
func KeptChallenge(env []byte, id cid.Cid) (Challenge, error) {
	payload, err := envelopePayload(env)
	if err != nil {
		return Challenge{}, fmt.Errorf("proofs: kept challenge %s: %w", id, err)
	}
	var c Challenge
	if err := wire.UnmarshalTrusted(payload, &c, MaxChallengeSize); err != nil {
		return Challenge{}, fmt.Errorf("proofs: kept challenge %s: %w", id, err)
	}
	if got, err := c.IDOf(payload); err != nil || got != id {
		return Challenge{}, fmt.Errorf("proofs: kept challenge %s: holds challenge %s (%v)", id, got, err)
	}
	return c, nil
}

// SealReceipt validates r, checks that key is r.Keeper's, and signs it.
func SealReceipt(key crypto.PrivKey, r Receipt) ([]byte, cid.Cid, error) {
	if err := r.Validate(); err != nil {
		return nil, cid.Undef, err
	}
	if err := checkKey(key, r.Keeper); err != nil {
		return nil, cid.Undef, fmt.Errorf("proofs: seal receipt: %w", err)
	}
	env, id, err := wire.SealMessage(key, ReceiptDomain, r)
	if err != nil {
		return nil, cid.Undef, fmt.Errorf("proofs: seal receipt: %w", err)
	}
	return env, id, nil
}

// OpenReceipt opens a sealed receipt: size cap, signature, canonical
// decoding, Validate, and a signer that is the receipt's keeper. Since the
// signature covers every field, a receipt cannot be moved to another
// round, edge, network or challenge. It returns the receipt and its CID.
func OpenReceipt(env []byte) (Receipt, cid.Cid, error) {
	r, payload, err := openReceipt(env)
	if err != nil {
		return Receipt{}, cid.Undef, err
	}
	return r, wire.CIDOf(payload), nil
}

// openReceipt is OpenReceipt without naming the receipt, for callers that
// have hashed the payload already.
func openReceipt(env []byte) (Receipt, []byte, error) {
	payload, signer, err := wire.Open(env, ReceiptDomain, MaxReceiptSize)
	if err != nil {
		return Receipt{}, nil, fmt.Errorf("proofs: open receipt: %w", err)
	}
	var r Receipt
	if err := wire.Unmarshal(payload, &r, MaxReceiptSize); err != nil {
		return Receipt{}, nil, fmt.Errorf("proofs: open receipt: %w", err)
	}
	if err := r.Validate(); err != nil {
		return Receipt{}, nil, err
	}
	if signer != r.Keeper {
		return Receipt{}, nil, fmt.Errorf("proofs: open receipt: signed by %s for keeper %s: %w", signer, r.Keeper, ErrWrongSigner)
	}
	return r, payload, nil
}
