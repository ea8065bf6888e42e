package store_test

import (
	"encoding/binary"
	"fmt"
	"testing"
)

// BenchmarkCommit measures synced batch commits, the write path of receipts
// and the ledger: each commit waits for fsync of the WAL.
func BenchmarkCommit(b *testing.B) {
	value := make([]byte, 64) // about the size of a receipt index entry
	for _, records := range []int{1, 100} {
		b.Run(fmt.Sprintf("records=%d", records), func(b *testing.B) {
			db := open(b, b.TempDir())
			ns := db.Namespace("bench")
			key := make([]byte, 8)
			var n uint64
			b.ReportAllocs()
			b.ResetTimer()
			for b.Loop() {
				batch := ns.Batch()
				for range records {
					binary.BigEndian.PutUint64(key, n)
					n++
					batch.Set(key, value)
				}
				if err := batch.Commit(); err != nil {
					b.Fatal(err)
				}
			}
			secs := b.Elapsed().Seconds()
			b.ReportMetric(float64(b.N)/secs, "commits/s")
			b.ReportMetric(float64(n)/secs, "records/s")
		})
	}
}
