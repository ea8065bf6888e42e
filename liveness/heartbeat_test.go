package liveness

import (
	"encoding/hex"
	"errors"
	"reflect"
	"slices"
	"strings"
	"testing"

	"github.com/aropeer/aropeer/proofs"
	"github.com/aropeer/aropeer/wire"
)

// The vectors were computed outside Go, with Python's hashlib:
// sha256(b"aro/liveness/nonce" + bytes(range(32)) + attempt.to_bytes(4, "big")).
func TestNonce(t *testing.T) {
	seed := make([]byte, 32)
	for i := range seed {
		seed[i] = byte(i)
	}
	for _, tc := range []struct {
		attempt uint32
		want    string
	}{
		{0, "1e725327fa0b6d401c3e0a2e26a9f584dc45aaa28a4c6408e87bf5dd9f77f577"},
		{1, "760db6e78b94ca11e468a133d23b7493b716162f5375bb6520144ac80e542a0d"},
		{0xdeadbeef, "9859453f89c48124e5e6590abc90a95ef35790e483f881279fe563d2dba29321"},
	} {
		// Only the seed and the attempt count: the rest of the challenge is
		// bound by the heartbeat's other fields.
		c := proofs.Challenge{Network: "aro-devnet", Round: 9, Seed: seed, Attempt: tc.attempt}
		if got := hex.EncodeToString(Nonce(c)); got != tc.want {
			t.Errorf("attempt %d: nonce %s, want %s", tc.attempt, got, tc.want)
		}
	}
}

// A heartbeat is a map with short string keys, as wire/doc.go asks, and
// every field is required: a zero one is still encoded.
func TestHeartbeatEncoding(t *testing.T) {
	b, err := wire.Marshal(Heartbeat{})
	if err != nil {
		t.Fatal(err)
	}
	var m map[string]any
	if err := wire.Unmarshal(b, &m, MaxHeartbeatSize); err != nil {
		t.Fatal(err)
	}
	keys := make([]string, 0, len(m))
	for k := range m {
		keys = append(keys, k)
	}
	slices.Sort(keys)
	if want := []string{"attempt", "edge", "keeper", "net", "nonce", "round"}; !slices.Equal(keys, want) {
		t.Errorf("keys %v, want %v", keys, want)
	}
}

func TestSealOpen(t *testing.T) {
	key := testKey(t, 2)
	c := proofs.Challenge{
		Network: "aro-devnet", Round: 701, Attempt: 2, Kind: proofs.KindLiveness,
		Keeper: peerOf(t, testKey(t, 1)), Edge: peerOf(t, key), Seed: []byte("seed"),
	}
	hb := HeartbeatFor(c)
	env, err := SealHeartbeat(key, hb)
	if err != nil {
		t.Fatal(err)
	}
	got, signer, err := OpenHeartbeat(env)
	if err != nil {
		t.Fatal(err)
	}
	if signer != c.Edge || !reflect.DeepEqual(got, hb) {
		t.Errorf("opened %+v signed by %s, want %+v by %s", got, signer, hb, c.Edge)
	}
	if r := got.mismatch(hb); r != "" {
		t.Errorf("a heartbeat mismatches itself: %s", r)
	}

	// Another message type's signature does not open as a heartbeat.
	other, _, err := wire.SealMessage(key, proofs.ChallengeDomain, hb)
	if err != nil {
		t.Fatal(err)
	}
	if _, _, err := OpenHeartbeat(other); !errors.Is(err, wire.ErrWrongPayloadType) {
		t.Errorf("challenge-domain envelope: %v, want ErrWrongPayloadType", err)
	}

	// A heartbeat the keeper would refuse unread is refused at sealing.
	hb.Network = strings.Repeat("n", MaxHeartbeatSize)
	if _, err := SealHeartbeat(key, hb); !errors.Is(err, wire.ErrTooLarge) {
		t.Errorf("oversized heartbeat: %v, want ErrTooLarge", err)
	}
}

// Reasons quote what the edge sent, clipped so that a receipt stays small.
func TestMismatchClips(t *testing.T) {
	want := Heartbeat{Network: "aro-devnet", Nonce: make([]byte, 32)}
	for _, got := range []Heartbeat{
		{Network: strings.Repeat("x", 3000)},
		{Network: "aro-devnet", Nonce: make([]byte, 3000)},
	} {
		r := got.mismatch(want)
		if r == "" || len(r) > 3*maxShown {
			t.Errorf("reason of %d bytes: %.100s...", len(r), r)
		}
	}
}
