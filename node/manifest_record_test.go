package node

import (
	"testing"

	"github.com/libp2p/go-libp2p/core/crypto"
	"github.com/libp2p/go-libp2p/core/peer"

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
