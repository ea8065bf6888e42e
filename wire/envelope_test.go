package wire

import (
	"bytes"
	"encoding/binary"
	"errors"
	"reflect"
	"strings"
	"testing"

	"github.com/decred/dcrd/dcrec/secp256k1/v4"
	"github.com/libp2p/go-libp2p/core/crypto"
	"github.com/libp2p/go-libp2p/core/peer"
	"github.com/libp2p/go-libp2p/core/record"
)

// testRecord lets libp2p's own record code read our envelopes.
type testRecord struct{ payload []byte }

func (r *testRecord) Domain() string                 { return testDomain.Name }
func (r *testRecord) Codec() []byte                  { return []byte(testDomain.PayloadType) }
func (r *testRecord) MarshalRecord() ([]byte, error) { return r.payload, nil }
func (r *testRecord) UnmarshalRecord(b []byte) error {
	r.payload = bytes.Clone(b)
	return nil
}

// libp2pOpen opens env with libp2p's record package, the reference.
func libp2pOpen(env []byte) ([]byte, peer.ID, error) {
	var r testRecord
	e, err := record.ConsumeTypedEnvelope(env, &r)
	if err != nil {
		return nil, "", err
	}
	id, err := peer.IDFromPublicKey(e.PublicKey)
	return r.payload, id, err
}

// encodeEnvelope writes envelope fields in the order and form Seal does.
func encodeEnvelope(e envelope) []byte {
	var b []byte
	b = appendField(b, keyEnvPublicKey, e.publicKey)
	b = appendField(b, keyEnvPayloadType, e.payloadType)
	b = appendField(b, keyEnvPayload, e.payload)
	return appendField(b, keyEnvSignature, e.signature)
}

func appendField(b []byte, key byte, v []byte) []byte {
	b = append(b, key)
	b = binary.AppendUvarint(b, uint64(len(v)))
	return append(b, v...)
}

func sealSample(t testing.TB, key crypto.PrivKey) (env, payload []byte) {
	t.Helper()
	payload, err := Marshal(sample(t))
	if err != nil {
		t.Fatal(err)
	}
	env, err = Seal(key, testDomain, payload)
	if err != nil {
		t.Fatal(err)
	}
	return env, payload
}

func TestSealOpenMessage(t *testing.T) {
	key := testKey(t, 1)
	want := sample(t)
	env, c, err := SealMessage(key, testDomain, want)
	if err != nil {
		t.Fatal(err)
	}
	var got sampleMsg
	signer, c2, err := OpenMessage(env, testDomain, 1024, &got)
	if err != nil {
		t.Fatal(err)
	}
	if !reflect.DeepEqual(got, want) {
		t.Errorf("opened %+v, want %+v", got, want)
	}
	if signer != testPeerID(t, 1) {
		t.Errorf("signer = %s, want %s", signer, testPeerID(t, 1))
	}
	payload, err := Marshal(want)
	if err != nil {
		t.Fatal(err)
	}
	if !c.Equals(CIDOf(payload)) || !c2.Equals(c) {
		t.Errorf("CIDs %s and %s, want %s (the payload's)", c, c2, CIDOf(payload))
	}

	// Another signer, same message: same name, different envelope.
	env2, c3, err := SealMessage(testKey(t, 2), testDomain, want)
	if err != nil {
		t.Fatal(err)
	}
	if bytes.Equal(env, env2) || !c3.Equals(c) {
		t.Errorf("second signature: envelope equal %v, CID %s want %s", bytes.Equal(env, env2), c3, c)
	}
}

func TestOpenKeyTypes(t *testing.T) {
	payload, err := Marshal(sample(t))
	if err != nil {
		t.Fatal(err)
	}
	for _, kt := range []struct {
		name string
		typ  int
		bits int
	}{
		{"ed25519", crypto.Ed25519, 0},
		{"secp256k1", crypto.Secp256k1, 0},
		{"ecdsa", crypto.ECDSA, 0},
		{"rsa", crypto.RSA, 2048},
	} {
		t.Run(kt.name, func(t *testing.T) {
			key, _, err := crypto.GenerateKeyPairWithReader(kt.typ, kt.bits, constReader(7))
			if err != nil {
				t.Fatal(err)
			}
			id, err := peer.IDFromPrivateKey(key)
			if err != nil {
				t.Fatal(err)
			}
			env, err := Seal(key, testDomain, payload)
			if err != nil {
				t.Fatal(err)
			}
			got, signer, err := Open(env, testDomain, 1<<16)
			if err != nil {
				t.Fatal(err)
			}
			if !bytes.Equal(got, payload) || signer != id {
				t.Errorf("Open = %x, %s; want %x, %s", got, signer, payload, id)
			}
			// libp2p reads what we write...
			ref, refID, err := libp2pOpen(env)
			if err != nil {
				t.Fatalf("libp2p refuses our envelope: %v", err)
			}
			if !bytes.Equal(ref, payload) || refID != id {
				t.Errorf("libp2p opened %x from %s", ref, refID)
			}
			// ...and we read what libp2p writes.
			e, err := record.Seal(&testRecord{payload: payload}, key)
			if err != nil {
				t.Fatal(err)
			}
			theirs, err := e.Marshal()
			if err != nil {
				t.Fatal(err)
			}
			if _, _, err := Open(theirs, testDomain, 1<<16); err != nil {
				t.Errorf("Open refuses libp2p's envelope: %v", err)
			}
		})
	}
}

func TestOpenEveryBitFlip(t *testing.T) {
	env, _ := sealSample(t, testKey(t, 1))
	if len(env) < 300 {
		t.Fatalf("envelope is %d bytes, want a realistic one", len(env))
	}
	if _, _, err := Open(env, testDomain, 1<<16); err != nil {
		t.Fatal(err)
	}
	mutated := make([]byte, len(env))
	for bit := range len(env) * 8 {
		copy(mutated, env)
		mutated[bit/8] ^= 1 << (bit % 8)
		payload, signer, err := Open(mutated, testDomain, 1<<16)
		if err == nil {
			t.Errorf("bit %d flipped: Open succeeded, payload %x, signer %s", bit, payload, signer)
			continue
		}
		if payload != nil || signer != "" {
			t.Errorf("bit %d flipped: error %v but returned payload %x, signer %q", bit, err, payload, signer)
		}
	}
}

func TestOpenRefuses(t *testing.T) {
	env, _ := sealSample(t, testKey(t, 1))
	tests := []struct {
		name    string
		env     []byte
		d       Domain
		maxSize int
		want    error
	}{
		{"wrong domain", env, Domain{Name: "aro-other", PayloadType: testDomain.PayloadType}, 1 << 16, ErrBadSignature},
		{"wrong payload type", env, Domain{Name: testDomain.Name, PayloadType: "/aro/other"}, 1 << 16, ErrWrongPayloadType},
		{"over the cap", env, testDomain, len(env) - 1, ErrTooLarge},
		{"empty", nil, testDomain, 1 << 16, ErrBadEnvelope},
		{"truncated", env[:len(env)-1], testDomain, 1 << 16, ErrBadEnvelope},
		{"garbage", []byte("not an envelope at all"), testDomain, 1 << 16, ErrBadEnvelope},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			payload, signer, err := Open(tt.env, tt.d, tt.maxSize)
			if !errors.Is(err, tt.want) {
				t.Errorf("Open = %v, want %v", err, tt.want)
			}
			if payload != nil || signer != "" {
				t.Errorf("Open failed but returned %x, %q", payload, signer)
			}
			if err != nil && !strings.HasPrefix(err.Error(), "wire: ") {
				t.Errorf("error %q lacks the wire: prefix", err)
			}
		})
	}
	if _, _, err := Open(env, testDomain, len(env)); err != nil {
		t.Errorf("at the cap: %v", err)
	}
	if _, _, err := Open(env, testDomain, 0); err == nil {
		t.Error("zero cap accepted")
	}
	if _, _, err := Open(env, Domain{PayloadType: testDomain.PayloadType}, 1<<16); err == nil {
		t.Error("empty domain name accepted")
	}
}

func TestSealRefuses(t *testing.T) {
	key := testKey(t, 1)
	if _, err := Seal(key, testDomain, nil); err == nil {
		t.Error("empty payload sealed")
	}
	if _, err := Seal(key, Domain{Name: "x"}, []byte{1}); err == nil {
		t.Error("empty payload type sealed")
	}
	if _, err := Seal(key, Domain{PayloadType: "x"}, []byte{1}); err == nil {
		t.Error("empty domain name sealed")
	}
}

// TestOpenRefusesNonCanonicalEnvelopes checks envelopes whose signature is
// valid, which libp2p's decoder accepts, but which are not the encoding
// Seal writes.
func TestOpenRefusesNonCanonicalEnvelopes(t *testing.T) {
	env, _ := sealSample(t, testKey(t, 1))
	e, err := parseEnvelope(env)
	if err != nil {
		t.Fatal(err)
	}
	if !bytes.Equal(encodeEnvelope(e), env) {
		t.Fatal("encodeEnvelope does not reproduce Seal's encoding")
	}

	secpKey, _, err := crypto.GenerateKeyPairWithReader(crypto.Secp256k1, 0, constReader(3))
	if err != nil {
		t.Fatal(err)
	}
	secpEnv, _ := sealSample(t, secpKey)
	se, err := parseEnvelope(secpEnv)
	if err != nil {
		t.Fatal(err)
	}
	raw, err := secpKey.GetPublic().Raw()
	if err != nil {
		t.Fatal(err)
	}
	point, err := secp256k1.ParsePubKey(raw)
	if err != nil {
		t.Fatal(err)
	}
	uncompressed := se
	uncompressed.publicKey = append([]byte{keyPubKeyType, 2}, appendField(nil, keyPubKeyData, point.SerializeUncompressed())...)

	paddedType := e
	paddedType.publicKey = append([]byte{keyPubKeyType, 0x81, 0x00}, e.publicKey[2:]...)

	// The payload's length prefix with a redundant zero continuation byte.
	var padded []byte
	padded = appendField(padded, keyEnvPublicKey, e.publicKey)
	padded = appendField(padded, keyEnvPayloadType, e.payloadType)
	padded = append(padded, keyEnvPayload, byte(len(e.payload))|0x80, byte(len(e.payload)>>7)|0x80, 0x00)
	padded = append(padded, e.payload...)
	padded = appendField(padded, keyEnvSignature, e.signature)

	var reordered []byte
	reordered = appendField(reordered, keyEnvPublicKey, e.publicKey)
	reordered = appendField(reordered, keyEnvPayloadType, e.payloadType)
	reordered = appendField(reordered, keyEnvSignature, e.signature)
	reordered = appendField(reordered, keyEnvPayload, e.payload)

	tests := []struct {
		name string
		env  []byte
	}{
		{"unknown field", append(bytes.Clone(env), 6<<3|2, 1, 0)},
		{"repeated signature", appendField(bytes.Clone(env), keyEnvSignature, e.signature)},
		{"fields out of order", reordered},
		{"padded length", padded},
		{"padded key type", encodeEnvelope(paddedType)},
		{"uncompressed secp256k1 key", encodeEnvelope(uncompressed)},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			if _, _, err := libp2pOpen(tt.env); err != nil {
				t.Fatalf("libp2p refuses it too (%v), so the case tests nothing", err)
			}
			if _, _, err := Open(tt.env, testDomain, 1<<16); !errors.Is(err, ErrBadEnvelope) {
				t.Errorf("Open = %v, want ErrBadEnvelope", err)
			}
		})
	}
}

func TestOpenSwappedKey(t *testing.T) {
	env, _ := sealSample(t, testKey(t, 1))
	e, err := parseEnvelope(env)
	if err != nil {
		t.Fatal(err)
	}
	other, err := crypto.MarshalPublicKey(testKey(t, 2).GetPublic())
	if err != nil {
		t.Fatal(err)
	}
	e.publicKey = other
	if _, _, err := Open(encodeEnvelope(e), testDomain, 1<<16); !errors.Is(err, ErrBadSignature) {
		t.Errorf("Open with another key = %v, want ErrBadSignature", err)
	}
}

func TestOpenPayloadDoesNotReachEnvelope(t *testing.T) {
	env, want := sealSample(t, testKey(t, 1))
	orig := bytes.Clone(env)
	payload, _, err := Open(env, testDomain, 1<<16)
	if err != nil {
		t.Fatal(err)
	}
	if !bytes.Equal(payload, want) {
		t.Fatalf("payload %x, want %x", payload, want)
	}
	_ = append(payload, 0xff, 0xff, 0xff, 0xff)
	if !bytes.Equal(env, orig) {
		t.Error("appending to the payload overwrote the envelope")
	}
}

func TestOpenMessageRefusesNonCanonicalPayload(t *testing.T) {
	key := testKey(t, 1)
	canonical, err := Marshal(strict{Must: 5})
	if err != nil {
		t.Fatal(err)
	}
	tests := []struct {
		name    string
		payload []byte
		want    error
	}{
		{"padded int", []byte{0xa1, 0x01, 0x18, 0x05}, ErrNonCanonical},
		{"trailing byte", append(bytes.Clone(canonical), 0), nil},
		{"unknown field", []byte{0xa2, 0x01, 0x05, 0x02, 0x05}, nil},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			env, err := Seal(key, testDomain, tt.payload)
			if err != nil {
				t.Fatal(err)
			}
			if _, _, err := Open(env, testDomain, 1<<16); err != nil {
				t.Fatalf("Open: %v (the signature is good)", err)
			}
			var v strict
			signer, c, err := OpenMessage(env, testDomain, 1<<16, &v)
			if err == nil || (tt.want != nil && !errors.Is(err, tt.want)) {
				t.Errorf("OpenMessage = %v, want %v", err, tt.want)
			}
			if signer != "" || c.Defined() {
				t.Errorf("OpenMessage failed but returned %q, %s", signer, c)
			}
		})
	}
}
