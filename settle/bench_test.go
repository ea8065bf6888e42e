package settle

import (
	"context"
	"testing"
	"time"

	"github.com/ipfs/go-cid"
	"github.com/libp2p/go-libp2p/core/peer"

	"github.com/aropeer/aropeer/proofs"
)

// BenchmarkBuildFromStore100k measures what a keeper does to build an
// epoch batch of 100,000 receipts: read them from its pebble store,
// aggregate, and build the Merkle root (goal: under a second). It
// reports seconds per batch, and the share of it that is BuildBatch
// alone on the same receipts in memory.
func BenchmarkBuildFromStore100k(b *testing.B) {
	const n = 100_000
	kn := newKeeperNet(b, 4)
	envs := kn.receipts(b, n)
	rs := kn.stores[0]
	for i := 0; i < n; i += 10_000 {
		if _, err := rs.PutBatch(envs[i : i+10_000]); err != nil {
			b.Fatal(err)
		}
	}
	s := kn.settlers[0]
	ctx := context.Background()

	// The in-memory part alone, as a baseline in the same run.
	var ids []cid.Cid
	var receipts []proofs.Receipt
	byKeeper := map[peer.ID]uint64{}
	epoch := uint64(testEpoch)
	rs.List(proofs.Filter{Epoch: &epoch}, func(id cid.Cid, r proofs.Receipt) error {
		ids, receipts = append(ids, id), append(receipts, r)
		byKeeper[r.Keeper]++
		return nil
	})
	start := time.Now()
	results := proofs.Aggregate(testEpoch, receipts, nil, nil, s.cfg.Rates)
	proofs.BuildBatch("devnet", testEpoch, ids, results, byKeeper, 1)
	inMemory := time.Since(start)

	b.ResetTimer()
	for b.Loop() {
		batch, _, err := s.Build(ctx, testEpoch)
		if err != nil || batch.Receipts != n {
			b.Fatalf("built %d receipts: %v", batch.Receipts, err)
		}
	}
	perBatch := b.Elapsed() / time.Duration(b.N)
	b.ReportMetric(perBatch.Seconds(), "s/batch")
	b.ReportMetric(inMemory.Seconds()/perBatch.Seconds(), "in-memory-share")
}
