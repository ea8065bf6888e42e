package wire

import (
	"bytes"
	"encoding/binary"
	"errors"
	"fmt"

	"github.com/ipfs/go-cid"
	"github.com/libp2p/go-libp2p/core/crypto"
	cryptopb "github.com/libp2p/go-libp2p/core/crypto/pb"
	"github.com/libp2p/go-libp2p/core/peer"
	"github.com/libp2p/go-libp2p/core/record"
	"github.com/multiformats/go-multihash"
)

var (
	// ErrBadEnvelope means the bytes are not a canonically encoded signed
	// envelope.
	ErrBadEnvelope = errors.New("wire: malformed envelope")
	// ErrWrongPayloadType means the envelope holds another kind of message.
	ErrWrongPayloadType = errors.New("wire: wrong envelope payload type")
	// ErrBadSignature means the signature does not verify for the domain:
	// the message was altered, or was signed for another domain.
	ErrBadSignature = errors.New("wire: bad envelope signature")
)

// Domain names one type of signed message. Its Name is mixed into what is
// signed, so a signature made for one type never verifies as another; its
// PayloadType is written in the envelope and checked on open, so a message
// of the wrong type is refused before its signature is checked.
//
// Packages declare one per message type, e.g.
//
//	wire.Domain{Name: "aro-receipt", PayloadType: "/aro/receipt"}
type Domain struct {
	Name        string
	PayloadType string
}

func (d Domain) check() error {
	if d.Name == "" || d.PayloadType == "" {
		return fmt.Errorf("wire: domain %q with payload type %q: both must be set", d.Name, d.PayloadType)
	}
	return nil
}

// rawRecord lets record.Seal sign bytes that are already encoded.
type rawRecord struct {
	d       Domain
	payload []byte
}

func (r rawRecord) Domain() string                 { return r.d.Name }
func (r rawRecord) Codec() []byte                  { return []byte(r.d.PayloadType) }
func (r rawRecord) MarshalRecord() ([]byte, error) { return r.payload, nil }
func (r rawRecord) UnmarshalRecord([]byte) error {
	return errors.New("wire: rawRecord is for sealing only")
}

// Seal signs payload (the canonical CBOR of a message) with key under d and
// returns the libp2p signed envelope bytes.
func Seal(key crypto.PrivKey, d Domain, payload []byte) ([]byte, error) {
	if err := d.check(); err != nil {
		return nil, err
	}
	if len(payload) == 0 {
		// An empty bytes field is absent from the protobuf, and Open requires
		// every field, so refuse here rather than produce an unopenable
		// envelope.
		return nil, fmt.Errorf("wire: seal %s: empty payload", d.Name)
	}
	env, err := record.Seal(rawRecord{d: d, payload: payload}, key)
	if err != nil {
		return nil, fmt.Errorf("wire: seal %s: %w", d.Name, err)
	}
	b, err := env.Marshal()
	if err != nil {
		return nil, fmt.Errorf("wire: seal %s: marshal envelope: %w", d.Name, err)
	}
	// What this process signed verifies: a keeper opens its own receipt
	// again to store it.
	verifiedEnvelopes.add(verifiedKey(d.Name, b))
	return b, nil
}

// Open verifies an envelope sealed under d and returns its payload and the
// signer's peer ID. It refuses input over maxSize before parsing it, and
// accepts only the canonical encoding of an envelope, the one Seal writes,
// so a signed message has exactly one envelope per signature.
//
// The payload aliases env (with its capacity clipped): do not modify env
// while the payload is in use.
func Open(env []byte, d Domain, maxSize int) (payload []byte, signer peer.ID, err error) {
	if maxSize <= 0 {
		return nil, "", fmt.Errorf("wire: open: invalid size cap %d", maxSize)
	}
	if len(env) > maxSize {
		return nil, "", fmt.Errorf("wire: open %s: %d bytes over cap %d: %w", d.Name, len(env), maxSize, ErrTooLarge)
	}
	if err := d.check(); err != nil {
		return nil, "", err
	}
	e, err := parseEnvelope(env)
	if err != nil {
		return nil, "", fmt.Errorf("wire: open %s: %w", d.Name, err)
	}
	if string(e.payloadType) != d.PayloadType {
		return nil, "", fmt.Errorf("wire: open %s: payload type %q: %w", d.Name, e.payloadType, ErrWrongPayloadType)
	}
	pk, err := parsePublicKey(e.publicKey)
	if err != nil {
		return nil, "", fmt.Errorf("wire: open %s: %w", d.Name, err)
	}
	key := verifiedKey(d.Name, env)
	if !verifiedEnvelopes.has(key) {
		ok, err := pk.Verify(signedBytes(d.Name, e.payloadType, e.payload), e.signature)
		if err != nil {
			return nil, "", fmt.Errorf("wire: open %s: %w: %w", d.Name, ErrBadSignature, err)
		}
		if !ok {
			return nil, "", fmt.Errorf("wire: open %s: %w", d.Name, ErrBadSignature)
		}
		verifiedEnvelopes.add(key)
	}
	signer, err = signerID(e.publicKey, pk)
	if err != nil {
		return nil, "", fmt.Errorf("wire: open %s: signer id: %w", d.Name, err)
	}
	return e.payload, signer, nil
}

// SealMessage encodes v canonically, seals it under d, and returns the
// envelope and the message's CID. The CID names the payload, not the
// envelope: every signature over one message gives it the same name.
func SealMessage(key crypto.PrivKey, d Domain, v any) (env []byte, c cid.Cid, err error) {
	payload, c, err := MarshalCID(v)
	if err != nil {
		return nil, cid.Undef, err
	}
	env, err = Seal(key, d, payload)
	if err != nil {
		return nil, cid.Undef, err
	}
	return env, c, nil
}

// OpenMessage opens env as Open does, decodes the payload strictly into v
// (see Unmarshal) and returns the signer and the message's CID.
func OpenMessage(env []byte, d Domain, maxSize int, v any) (peer.ID, cid.Cid, error) {
	payload, signer, err := Open(env, d, maxSize)
	if err != nil {
		return "", cid.Undef, err
	}
	if err := Unmarshal(payload, v, maxSize); err != nil {
		return "", cid.Undef, fmt.Errorf("wire: open %s: %w", d.Name, err)
	}
	return signer, CIDOf(payload), nil
}

// signedBytes is what an envelope's signature covers, as libp2p's record
// package defines it: each of domain, payload type and payload prefixed
// by its length as an unsigned varint.
func signedBytes(domain string, payloadType, payload []byte) []byte {
	b := make([]byte, 0, 3*binary.MaxVarintLen64+len(domain)+len(payloadType)+len(payload))
	b = binary.AppendUvarint(b, uint64(len(domain)))
	b = append(b, domain...)
	b = binary.AppendUvarint(b, uint64(len(payloadType)))
	b = append(b, payloadType...)
	b = binary.AppendUvarint(b, uint64(len(payload)))
	return append(b, payload...)
}

// Protobuf keys (field number << 3 | wire type) of the envelope
// (core/record/pb/envelope.proto) and of the public key inside it
// (core/crypto/pb/crypto.proto), in the order the Go protobuf encoder
// writes them.
const (
	keyEnvPublicKey   = 1<<3 | 2
	keyEnvPayloadType = 2<<3 | 2
	keyEnvPayload     = 3<<3 | 2
	keyEnvSignature   = 5<<3 | 2
	keyPubKeyType     = 1<<3 | 0 // wire type 0: varint
	keyPubKeyData     = 2<<3 | 2
)

// envelope holds the fields of an envelope, all aliasing its bytes.
type envelope struct {
	publicKey, payloadType, payload, signature []byte
}

// parseEnvelope reads the envelope protobuf without copying. It accepts
// exactly the deterministic encoding: every field present and non-empty,
// in field order, once, with minimal varints, and nothing else. A general
// protobuf decoder would also take unknown fields, repeats and padded
// varints, so one signature could travel in many different envelopes.
func parseEnvelope(b []byte) (envelope, error) {
	var e envelope
	var err error
	if e.publicKey, b, err = bytesField(b, keyEnvPublicKey); err != nil {
		return e, fmt.Errorf("public key: %w", err)
	}
	if e.payloadType, b, err = bytesField(b, keyEnvPayloadType); err != nil {
		return e, fmt.Errorf("payload type: %w", err)
	}
	if e.payload, b, err = bytesField(b, keyEnvPayload); err != nil {
		return e, fmt.Errorf("payload: %w", err)
	}
	if e.signature, b, err = bytesField(b, keyEnvSignature); err != nil {
		return e, fmt.Errorf("signature: %w", err)
	}
	if len(b) != 0 {
		return e, fmt.Errorf("%d trailing bytes: %w", len(b), ErrBadEnvelope)
	}
	return e, nil
}

// parsePublicKey decodes a libp2p public key protobuf, accepting only its
// canonical form (the one crypto.MarshalPublicKey writes).
func parsePublicKey(b []byte) (crypto.PubKey, error) {
	if len(b) == 0 || b[0] != keyPubKeyType {
		return nil, fmt.Errorf("public key type: %w", ErrBadEnvelope)
	}
	t, b, err := uvarint(b[1:])
	if err != nil {
		return nil, fmt.Errorf("public key type: %w", err)
	}
	data, rest, err := bytesField(b, keyPubKeyData)
	if err != nil {
		return nil, fmt.Errorf("public key data: %w", err)
	}
	if len(rest) != 0 || t > uint64(^uint32(0)>>1) {
		return nil, fmt.Errorf("public key: %w", ErrBadEnvelope)
	}
	kt := cryptopb.KeyType(t)
	pk, err := crypto.PublicKeyFromProto(&cryptopb.PublicKey{Type: &kt, Data: data})
	if err != nil {
		return nil, fmt.Errorf("public key: %w: %w", ErrBadEnvelope, err)
	}
	// Some key types parse several encodings of one key (secp256k1 takes
	// compressed and uncompressed points); only the one Raw gives back is
	// canonical.
	raw, err := pk.Raw()
	if err != nil || !bytes.Equal(raw, data) {
		return nil, fmt.Errorf("public key: non-canonical key bytes: %w", ErrBadEnvelope)
	}
	return pk, nil
}

// maxInlineKeyLength is go-libp2p's peer.maxInlineKeyLength: public keys
// whose protobuf is at most this long are inlined in their peer ID.
const maxInlineKeyLength = 42

// signerID returns the peer ID of pk, whose canonical protobuf encoding is
// pkBytes. It equals peer.IDFromPublicKey(pk), which re-marshals the key
// and looks up the hash function (a few percent of an Open); small keys
// such as ed25519's are inlined here directly from the bytes at hand.
func signerID(pkBytes []byte, pk crypto.PubKey) (peer.ID, error) {
	if !peer.AdvancedEnableInlining || len(pkBytes) > maxInlineKeyLength {
		return peer.IDFromPublicKey(pk)
	}
	// An identity multihash: code 0x00, length, the bytes.
	id := make([]byte, 0, 2+len(pkBytes))
	id = append(id, multihash.IDENTITY, byte(len(pkBytes)))
	return peer.ID(append(id, pkBytes...)), nil
}

// bytesField reads one length-delimited protobuf field with the given key
// and a non-empty value.
func bytesField(b []byte, key byte) (val, rest []byte, err error) {
	if len(b) == 0 || b[0] != key {
		return nil, nil, ErrBadEnvelope
	}
	n, b, err := uvarint(b[1:])
	if err != nil {
		return nil, nil, err
	}
	if n == 0 || n > uint64(len(b)) {
		return nil, nil, ErrBadEnvelope
	}
	return b[:n:n], b[n:], nil
}

// uvarint reads a minimally encoded unsigned varint.
func uvarint(b []byte) (uint64, []byte, error) {
	v, n := binary.Uvarint(b)
	if n <= 0 || (n > 1 && b[n-1] == 0) {
		return 0, nil, ErrBadEnvelope
	}
	return v, b[n:], nil
}
