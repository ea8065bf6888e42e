package exchange

import (
	"testing"
)

// BenchmarkSync has a keeper with no receipts catch up on 10,000 from a
// peer over mocknet: list, fetch, open, store. The figure is receipts
// stored per second.
func BenchmarkSync(b *testing.B) {
	const n = 10_000
	hosts := newHosts(b, 2)
	src, dst := hosts[0], hosts[1]
	storeA := openStore(b)
	put(b, storeA, newFleet(b, 20).receipts(b, epoch, 0, n))
	defer Serve(src, StoreSource(storeA), quiet)()

	total := 0
	for b.Loop() {
		b.StopTimer()
		storeB := openStore(b)
		b.StartTimer()
		added, err := Sync(b.Context(), dst, src.ID(), epoch, "", storeB, nil)
		if err != nil || added != n {
			b.Fatalf("Sync = %d, %v; want %d added", added, err, n)
		}
		total += added
	}
	b.ReportMetric(float64(total)/b.Elapsed().Seconds(), "receipts/s")
}
