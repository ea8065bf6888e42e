package proofs

import (
	"bytes"
	"errors"
	"reflect"
	"testing"

	"github.com/ipfs/go-cid"

	"github.com/aropeer/aropeer/wire"
)

// addSeeds adds valid envelopes and near misses of them: truncated, one
// byte flipped in the payload and the signature, and empty input.
func addSeeds(f *testing.F, envs ...[]byte) {
	for _, env := range envs {
		f.Add(env)
		f.Add(env[:len(env)/2])
		flipped := bytes.Clone(env)
		flipped[len(flipped)/2] ^= 0x20
		f.Add(flipped)
		sig := bytes.Clone(env)
		sig[len(sig)-1] ^= 1
		f.Add(sig)
	}
	f.Add([]byte{})
	f.Add([]byte{0x0a, 0x00})
}

// checkOpened checks what an Open function accepted: it validates, its
// CID names the envelope's payload, and the payload is the message's
// canonical encoding.
func checkOpened(t *testing.T, env []byte, v interface{ Validate() error }, id cid.Cid) {
	t.Helper()
	if err := v.Validate(); err != nil {
		t.Fatalf("accepted a message that does not validate: %v", err)
	}
	payload, err := envelopePayload(env)
	if err != nil {
		t.Fatalf("accepted an envelope whose payload cannot be found: %v", err)
	}
	if wire.CIDOf(payload) != id {
		t.Fatalf("CID %s does not name the payload", id)
	}
	again, err := wire.Marshal(v)
	if err != nil || !bytes.Equal(again, payload) {
		t.Fatalf("accepted payload %x re-encodes to %x (%v)", payload, again, err)
	}
}

func FuzzOpenChallenge(f *testing.F) {
	keeper := testKey(f, keeperSeed)
	c := testChallenge(f)
	env, _, err := SealChallenge(keeper, c)
	if err != nil {
		f.Fatal(err)
	}
	c.Attempt, c.Kind, c.Network, c.Piece = 0, KindCompute, "a", nil
	env2, _, err := SealChallenge(keeper, c)
	if err != nil {
		f.Fatal(err)
	}
	addSeeds(f, env, env2,
		sealRaw(f, testKey(f, strangerSeed), ChallengeDomain, mustMarshal(f, c)),
		sealRaw(f, keeper, ChallengeDomain, nonCanonical(f, c)),
		sealRaw(f, keeper, ReceiptDomain, mustMarshal(f, c)))
	f.Fuzz(func(t *testing.T, data []byte) {
		got, id, err := OpenChallenge(data)
		if err != nil {
			if !reflect.DeepEqual(got, Challenge{}) || id.Defined() {
				t.Fatalf("failed (%v) but returned %+v, %s", err, got, id)
			}
			return
		}
		checkOpened(t, data, got, id)
		// What opens, kept, decodes to the same challenge.
		named, err := got.ID()
		if err != nil {
			t.Fatal(err)
		}
		payload, _ := envelopePayload(data)
		if of, err := got.IDOf(payload); err != nil || of != named {
			t.Fatalf("IDOf its payload = %s, %v; want ID %s", of, err, named)
		}
		if kept, err := KeptChallenge(data, named); err != nil || !reflect.DeepEqual(kept, got) {
			t.Fatalf("kept: %+v, %v; want %+v", kept, err, got)
		}
	})
}

func FuzzOpenReceipt(f *testing.F) {
	keeper := testKey(f, keeperSeed)
	r := testReceipt(f)
	env, _, err := SealReceipt(keeper, r)
	if err != nil {
		f.Fatal(err)
	}
	r.Result, r.Reason, r.Measurements, r.Evidence, r.Attestation = Pass, "", nil, nil, nil
	env2, _, err := SealReceipt(keeper, r)
	if err != nil {
		f.Fatal(err)
	}
	addSeeds(f, env, env2,
		sealRaw(f, testKey(f, strangerSeed), ReceiptDomain, mustMarshal(f, r)),
		sealRaw(f, keeper, ReceiptDomain, nonCanonical(f, r)),
		sealRaw(f, keeper, ChallengeDomain, mustMarshal(f, r)))
	f.Fuzz(func(t *testing.T, data []byte) {
		got, id, err := OpenReceipt(data)
		if err != nil {
			if !reflect.DeepEqual(got, Receipt{}) || id.Defined() {
				t.Fatalf("failed (%v) but returned %+v, %s", err, got, id)
			}
			return
		}
		checkOpened(t, data, got, id)
	})
}

func FuzzOpenManifest(f *testing.F) {
	edge := testKey(f, edgeSeed)
	m := testManifest(f)
	env, _, err := SealManifest(edge, m)
	if err != nil {
		f.Fatal(err)
	}
	bare := Manifest{Network: "devnet", Edge: m.Edge, Seq: 1, Offers: []Offer{{Kind: KindLiveness}}}
	env2, _, err := SealManifest(edge, bare)
	if err != nil {
		f.Fatal(err)
	}
	addSeeds(f, env, env2,
		sealRaw(f, testKey(f, strangerSeed), ManifestDomain, mustMarshal(f, m)),
		sealRaw(f, edge, ManifestDomain, nonCanonical(f, m)),
		sealRaw(f, edge, ReceiptDomain, mustMarshal(f, bare)))
	f.Fuzz(func(t *testing.T, data []byte) {
		got, id, err := OpenManifest(data)
		if err != nil {
			if !reflect.DeepEqual(got, Manifest{}) || id.Defined() {
				t.Fatalf("failed (%v) but returned %+v, %s", err, got, id)
			}
			return
		}
		checkOpened(t, data, got, id)
	})
}

// FuzzReceiptStorePut feeds network bytes to Put, which looks at an
// envelope's payload before its signature: whatever it accepts must open,
// and what is stored must read back as the receipt Put returned.
func FuzzReceiptStorePut(f *testing.F) {
	keeper := testKey(f, keeperSeed)
	r := testReceipt(f)
	env, _, err := SealReceipt(keeper, r)
	if err != nil {
		f.Fatal(err)
	}
	addSeeds(f, env, sealRaw(f, testKey(f, strangerSeed), ReceiptDomain, mustMarshal(f, r)))
	s := NewReceiptStore(openDB(f, f.TempDir()))
	// The valid seed is stored already, so its near misses meet the
	// stored copy.
	if _, _, _, err := s.Put(env); err != nil {
		f.Fatal(err)
	}
	f.Fuzz(func(t *testing.T, data []byte) {
		got, id, _, err := s.Put(data)
		if err != nil {
			return
		}
		want, wantID, err := OpenReceipt(data)
		if err != nil || wantID != id || !reflect.DeepEqual(got, want) {
			t.Fatalf("Put accepted %x, which OpenReceipt does not: %v", data, err)
		}
		if stored, _, err := s.Get(id); err != nil || !reflect.DeepEqual(stored, got) {
			t.Fatalf("Get(%s) = %+v, %v; want %+v", id, stored, err, got)
		}
	})
}

func FuzzOpenReport(f *testing.F) {
	edge := testKey(f, edgeSeed)
	r := aggReport(f, 3, 1)
	r.Edge = testID(f, edge)
	env, _, err := SealReport(edge, r)
	if err != nil {
		f.Fatal(err)
	}
	bare := Report{Network: "devnet", Epoch: 3, Edge: r.Edge, Claims: []Claim{{Offer: Offer{Kind: KindLiveness}, Answered: 4}}}
	env2, _, err := SealReport(edge, bare)
	if err != nil {
		f.Fatal(err)
	}
	addSeeds(f, env, env2,
		sealRaw(f, testKey(f, strangerSeed), ReportDomain, mustMarshal(f, bare)),
		sealRaw(f, edge, ReportDomain, nonCanonical(f, bare)),
		sealRaw(f, edge, ReceiptDomain, mustMarshal(f, bare)))
	f.Fuzz(func(t *testing.T, data []byte) {
		got, id, err := OpenReport(data)
		if err != nil {
			if !reflect.DeepEqual(got, Report{}) || id.Defined() {
				t.Fatalf("failed (%v) but returned %+v, %s", err, got, id)
			}
			return
		}
		checkOpened(t, data, got, id)
	})
}

// FuzzBatchSignature feeds network bytes to what a keeper does with a
// gossiped batch signature: open it and count its signer for a batch.
// Whatever opens must count for the batch it names, and only for it.
func FuzzBatchSignature(f *testing.F) {
	keys, _ := batchKeepers(f)
	b := testBatch(f, 5)
	id, err := b.ID()
	if err != nil {
		f.Fatal(err)
	}
	for _, env := range signAll(f, b, keys[:2]...) {
		addSeeds(f, env)
	}
	f.Fuzz(func(t *testing.T, data []byte) {
		got, signer, err := OpenBatchSignature(data)
		if err != nil {
			return
		}
		signers, err := SignedBatch{Batch: b, Signatures: [][]byte{data}}.Signers()
		if got == (BatchSignature{Network: b.Network, Epoch: b.Epoch, Batch: id}) {
			if err != nil || len(signers) != 1 || signers[0] != signer {
				t.Fatalf("a signature of the batch by %s counts signers %v (%v)", signer, signers, err)
			}
		} else if len(signers) != 0 || !errors.Is(err, ErrOtherBatch) {
			t.Fatalf("a signature of %v counts %v (%v) for batch %s", got, signers, err, id)
		}
	})
}
