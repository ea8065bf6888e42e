package liveness

import (
	"bytes"
	"testing"

	"github.com/aropeer/aropeer/proofs"
	"github.com/aropeer/aropeer/wire"
)

// FuzzOpenHeartbeat feeds bytes from the network to the heartbeat decoder
// by both ways they reach it: as a whole envelope, and as the payload of
// an envelope with a valid signature (which the fuzzer cannot forge, so
// without this the CBOR decoder behind the signature check would never
// run). What opens must re-encode to exactly the bytes signed.
func FuzzOpenHeartbeat(f *testing.F) {
	key := testKey(f, 2)
	c := proofs.Challenge{
		Network: "aro-devnet", Round: 701, Attempt: 1, Kind: proofs.KindLiveness,
		Keeper: peerOf(f, testKey(f, 1)), Edge: peerOf(f, key), Seed: []byte("seed"),
	}
	env, err := SealHeartbeat(key, HeartbeatFor(c))
	if err != nil {
		f.Fatal(err)
	}
	payload, err := wire.Marshal(HeartbeatFor(c))
	if err != nil {
		f.Fatal(err)
	}
	empty, err := wire.Marshal(Heartbeat{})
	if err != nil {
		f.Fatal(err)
	}
	for _, seed := range [][]byte{env, payload, empty, env[:len(env)-1], {0xa0}, nil} {
		f.Add(seed)
	}
	f.Fuzz(func(t *testing.T, data []byte) {
		if _, _, err := OpenHeartbeat(data); err == nil && !bytes.Equal(data, env) {
			t.Fatalf("opened an envelope the fuzzer made: %x", data)
		}
		if len(data) == 0 {
			return // Seal refuses empty payloads
		}
		sealed, err := wire.Seal(key, HeartbeatDomain, data)
		if err != nil {
			t.Fatal(err)
		}
		hb, signer, err := OpenHeartbeat(sealed)
		if err != nil {
			return
		}
		again, err := wire.Marshal(hb)
		if err != nil {
			t.Fatalf("opened %x but cannot re-encode it: %v", data, err)
		}
		if !bytes.Equal(again, data) || signer != c.Edge {
			t.Fatalf("opened %x as %+v by %s, which encodes to %x", data, hb, signer, again)
		}
		_ = hb.mismatch(HeartbeatFor(c)) // must not panic on anything decoded
	})
}
