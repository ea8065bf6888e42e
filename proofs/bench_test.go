package proofs

import (
	"encoding/binary"
	"runtime"
	"testing"
	"time"

	"github.com/libp2p/go-libp2p/core/crypto"
)

// ingestBatch is how many receipts one PutBatch stores, as a keeper
// ingesting gossip would batch them.
const ingestBatch = 100

// perSecond reports n operations over the benchmark's timed duration.
func perSecond(b *testing.B, n int, unit string) {
	if s := b.Elapsed().Seconds(); s > 0 {
		b.ReportMetric(float64(n)/s, unit)
	}
}

// signedBytes is what an envelope's signature covers (libp2p's record
// package): domain, payload type and payload, each length-prefixed.
func signedBytes(domain string, payloadType, payload []byte) []byte {
	b := binary.AppendUvarint(nil, uint64(len(domain)))
	b = append(b, domain...)
	b = binary.AppendUvarint(b, uint64(len(payloadType)))
	b = append(b, payloadType...)
	b = binary.AppendUvarint(b, uint64(len(payload)))
	return append(b, payload...)
}

// freshReceipts seals n receipts no store has seen, the next round each.
func freshReceipts(b *testing.B, key crypto.PrivKey, r *Receipt, n int) [][]byte {
	envs := make([][]byte, n)
	for i := range envs {
		r.Round++
		env, _, err := SealReceipt(key, *r)
		if err != nil {
			b.Fatal(err)
		}
		envs[i] = env
	}
	return envs
}

// BenchmarkReceiptIngest times what a keeper does with each gossiped
// receipt: open the envelope, check the signature, decode strictly,
// validate, and store it with its index entries in synced batches of
// ingestBatch (PutBatch). In the same loop it times a bare libp2p ed25519
// verification of the same envelopes, so both see the same machine state.
// ingest/verify is verify time over ingest time: 1 would mean ingestion
// costs nothing beyond the signature check; the goal is at least 0.7.
func BenchmarkReceiptIngest(b *testing.B) {
	s := NewReceiptStore(openDB(b, b.TempDir()))
	key := testKey(b, keeperSeed)
	pub := key.GetPublic()
	r := testReceipt(b)
	var ingestT, verifyT time.Duration
	n := 0
	for b.Loop() {
		envs := freshReceipts(b, key, &r, ingestBatch)
		signed := make([][]byte, len(envs))
		sigs := make([][]byte, len(envs))
		for i, env := range envs {
			_, ptype, payload, sig := envFields(b, env)
			signed[i], sigs[i] = signedBytes(ReceiptDomain.Name, ptype, payload), sig
		}
		// Collect the sealing's garbage now, so that its collection is
		// not charged to either timed part.
		runtime.GC()

		t0 := time.Now()
		added, err := s.PutBatch(envs)
		if err != nil || added != len(envs) {
			b.Fatalf("PutBatch = %d, %v", added, err)
		}
		t1 := time.Now()
		for i := range signed {
			if ok, err := pub.Verify(signed[i], sigs[i]); !ok || err != nil {
				b.Fatal("signature does not verify", err)
			}
		}
		verifyT += time.Since(t1)
		ingestT += t1.Sub(t0)
		n += len(envs)
	}
	b.ReportMetric(float64(n)/ingestT.Seconds(), "receipts/s")
	b.ReportMetric(float64(n)/verifyT.Seconds(), "verifies/s")
	b.ReportMetric(float64(verifyT)/float64(ingestT), "ingest/verify")
}

// BenchmarkReceiptOpen times OpenReceipt alone, the part of ingestion
// before the store.
func BenchmarkReceiptOpen(b *testing.B) {
	env, _, err := SealReceipt(testKey(b, keeperSeed), testReceipt(b))
	if err != nil {
		b.Fatal(err)
	}
	b.SetBytes(int64(len(env)))
	n := 0
	for b.Loop() {
		if _, _, err := OpenReceipt(env); err != nil {
			b.Fatal(err)
		}
		n++
	}
	perSecond(b, n, "opens/s")
}

func BenchmarkReceiptSeal(b *testing.B) {
	key := testKey(b, keeperSeed)
	r := testReceipt(b)
	n := 0
	for b.Loop() {
		if _, _, err := SealReceipt(key, r); err != nil {
			b.Fatal(err)
		}
		n++
	}
	perSecond(b, n, "seals/s")
}
