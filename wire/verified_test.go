package wire

import (
	"errors"
	"testing"
)

// TestOpenRemembersOnlyWhatVerified: an envelope that verified, or that
// this process sealed, opens again from memory; the same bytes under
// another domain, or with any byte of the signature changed, are still
// checked and refused.
func TestOpenRemembersOnlyWhatVerified(t *testing.T) {
	env, payload := sealSample(t, testKey(t, 1))
	if !verifiedEnvelopes.has(verifiedKey(testDomain.Name, env)) {
		t.Fatal("an envelope this process sealed is not remembered")
	}
	verifiedEnvelopes = newEnvelopeMemo(1 << 14) // as if sealed elsewhere
	if _, _, err := Open(env, testDomain, 1024); err != nil {
		t.Fatal(err)
	}
	if !verifiedEnvelopes.has(verifiedKey(testDomain.Name, env)) {
		t.Fatal("an envelope that verified is not remembered")
	}
	got, signer, err := Open(env, testDomain, 1024)
	if err != nil || string(got) != string(payload) || signer != testPeerID(t, 1) {
		t.Fatalf("opened again: %q by %s, %v", got, signer, err)
	}
	other := Domain{Name: "aro-other", PayloadType: testDomain.PayloadType}
	if _, _, err := Open(env, other, 1024); !errors.Is(err, ErrBadSignature) {
		t.Fatalf("under another domain: %v, want ErrBadSignature", err)
	}
	bad := append([]byte(nil), env...)
	bad[len(bad)-1] ^= 1 // the signature is the envelope's last field
	if _, _, err := Open(bad, testDomain, 1024); !errors.Is(err, ErrBadSignature) {
		t.Fatalf("signature changed: %v, want ErrBadSignature", err)
	}

	m := newEnvelopeMemo(4)
	for i := range 10 {
		m.add([32]byte{byte(i)})
	}
	if len(m.set) != 4 || m.has([32]byte{0}) || !m.has([32]byte{9}) {
		t.Fatalf("memo of 4 after 10: %d held, oldest held %v, newest held %v", len(m.set), m.has([32]byte{0}), m.has([32]byte{9}))
	}
}
