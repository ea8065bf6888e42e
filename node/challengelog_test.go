package node

import (
	"bytes"
	"crypto/rand"
	"testing"

	"github.com/libp2p/go-libp2p/core/crypto"
	"github.com/libp2p/go-libp2p/core/peer"

	"github.com/aropeer/aropeer/proofs"
	"github.com/aropeer/aropeer/store"
	"github.com/aropeer/aropeer/wire"
)

// TestChallengeLog: a kept challenge is found by its ID, whatever its
// attempt, until its epoch falls out of the window.
func TestChallengeLog(t *testing.T) {
	db, err := store.Open(t.TempDir())
	if err != nil {
		t.Fatal(err)
	}
	defer db.Close()
	key, _, err := crypto.GenerateEd25519Key(rand.Reader)
	if err != nil {
		t.Fatal(err)
	}
	keeper, _ := peer.IDFromPrivateKey(key)
	edgeKey, _, err := crypto.GenerateEd25519Key(rand.Reader)
	if err != nil {
		t.Fatal(err)
	}
	edge, _ := peer.IDFromPrivateKey(edgeKey)
	l := newChallengeLog(db, 2)
	add := func(epoch uint64, attempt uint32) ([]byte, proofs.Challenge) {
		c := proofs.Challenge{
			Network: "devnet", Epoch: epoch, Round: epoch * 10, Keeper: keeper, Edge: edge,
			Kind: proofs.KindLiveness, Attempt: attempt, Seed: bytes.Repeat([]byte{byte(epoch)}, proofs.SeedSize),
		}
		env, _, err := proofs.SealChallenge(key, c)
		if err != nil {
			t.Fatal(err)
		}
		payload, err := wire.Marshal(c)
		if err != nil {
			t.Fatal(err)
		}
		if err := l.add(payload, env); err != nil {
			t.Fatal(err)
		}
		return env, c
	}
	env1, c1 := add(1, 2)
	id1, _ := c1.ID()
	if got, ok := l.get(id1); !ok || !bytes.Equal(got, env1) {
		t.Fatalf("challenge of epoch 1 not found: %v", ok)
	}
	add(3, 0)
	if _, ok := l.get(id1); !ok {
		t.Fatal("epoch 1 pruned with epoch 3 seen, keeping 2 epochs")
	}
	env4, c4 := add(4, 0)
	if _, ok := l.get(id1); ok {
		t.Error("epoch 1 still kept with epoch 4 seen")
	}
	id4, _ := c4.ID()
	if got, ok := l.get(id4); !ok || !bytes.Equal(got, env4) {
		t.Error("challenge of epoch 4 not found")
	}
}
