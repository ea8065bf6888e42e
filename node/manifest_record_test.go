package node

import (
	"errors"
	"fmt"
	"maps"
	"strings"
	"testing"

	"github.com/libp2p/go-libp2p/core/crypto"
	"github.com/libp2p/go-libp2p/core/peer"

	"github.com/aropeer/aropeer/challenge"
	"github.com/aropeer/aropeer/proofs"
)

func sealedManifest(t *testing.T, key crypto.PrivKey, network string, seq uint64) []byte {
	t.Helper()
	id, err := peer.IDFromPrivateKey(key)
	if err != nil {
		t.Fatal(err)
	}
	env, _, err := proofs.SealManifest(key, proofs.Manifest{Network: network, Edge: id, Seq: seq, Offers: []proofs.Offer{{Kind: proofs.KindLiveness}}})
	if err != nil {
		t.Fatal(err)
	}
	return env
}

func TestManifestValidator(t *testing.T) {
	key, _, _ := crypto.GenerateEd25519Key(nil)
	other, _, _ := crypto.GenerateEd25519Key(nil)
	id, _ := peer.IDFromPrivateKey(key)
	v := manifestValidator{network: "devnet"}
	good := sealedManifest(t, key, "devnet", 2)
	flipped := append([]byte(nil), good...)
	flipped[len(flipped)-1] ^= 1

	tests := []struct {
		name  string
		key   string
		value []byte
		ok    bool
	}{
		{"valid", ManifestKey(id), good, true},
		{"under another peer's key", ManifestKey(id), sealedManifest(t, other, "devnet", 2), false},
		{"of another network", ManifestKey(id), sealedManifest(t, key, "mainnet", 2), false},
		{"bad signature", ManifestKey(id), flipped, false},
		{"not a manifest key", "/pk/" + string(id), good, false},
		{"garbage", ManifestKey(id), []byte("garbage"), false},
	}
	for _, tc := range tests {
		if err := v.Validate(tc.key, tc.value); (err == nil) != tc.ok {
			t.Errorf("%s: Validate = %v; want ok=%v", tc.name, err, tc.ok)
		}
	}
	newer := sealedManifest(t, key, "devnet", 5)
	if i, err := v.Select(ManifestKey(id), [][]byte{good, flipped, newer}); err != nil || i != 2 {
		t.Errorf("Select = %d, %v; want the highest sequence number, 2", i, err)
	}
	if _, err := v.Select(ManifestKey(id), [][]byte{flipped}); err == nil {
		t.Error("Select chose among invalid records")
	}
}

// TestWithManifests: a receipt refused for want of its edge's manifest is
// checked again once the manifest is fetched; each edge's manifest is
// looked for once, found or not; other refusals fetch nothing.
func TestWithManifests(t *testing.T) {
	known := map[peer.ID]bool{}
	check := func(r proofs.Receipt) error {
		switch {
		case r.Round == 0:
			return challenge.ErrNotScheduled
		case !known[r.Edge]:
			return fmt.Errorf("%w of %s", challenge.ErrNoManifest, r.Edge)
		}
		return nil
	}
	fetches := map[peer.ID]int{}
	fetch := func(edge peer.ID) error {
		fetches[edge]++
		if edge == "lost" {
			return errors.New("no record")
		}
		known[edge] = true
		return nil
	}
	accept := withManifests(check, fetch)
	for _, tc := range []struct {
		edge  peer.ID
		round uint64
		want  error // nil, or what the error must match
	}{
		{"found", 1, nil},
		{"found", 2, nil},
		{"lost", 1, challenge.ErrNoManifest},
		{"lost", 2, challenge.ErrNoManifest},
		{"unscheduled", 0, challenge.ErrNotScheduled},
	} {
		err := accept(proofs.Receipt{Edge: tc.edge, Round: tc.round})
		if (tc.want == nil) != (err == nil) || (tc.want != nil && !errors.Is(err, tc.want)) {
			t.Errorf("receipt of %s, round %d: %v, want %v", tc.edge, tc.round, err, tc.want)
		}
	}
	if want := map[peer.ID]int{"found": 1, "lost": 1}; !maps.Equal(fetches, want) {
		t.Errorf("manifests fetched %v, want %v", fetches, want)
	}
	if err := accept(proofs.Receipt{Edge: "lost", Round: 3}); err == nil || !strings.Contains(err.Error(), "no record") {
		t.Errorf("a receipt of an edge whose manifest was not found: %v, want the lookup's error too", err)
	}
}
