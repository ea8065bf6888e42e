package compute

import (
	"context"
	"testing"
	"time"

	"github.com/aropeer/aropeer/wire"
)

// BenchmarkCPU measures the CPU executor's throughput in int8 GOPS
// (2n^3 operations per product, generating A and B included) on one and
// two workers.
func BenchmarkCPU(b *testing.B) {
	const n = 1024
	for _, workers := range []int{1, 2} {
		b.Run(map[int]string{1: "1core", 2: "2cores"}[workers], func(b *testing.B) {
			var spent time.Duration
			i := 0
			for b.Loop() {
				start := time.Now()
				if _, err := (CPU{Workers: workers}).Multiply(context.Background(), n, [32]byte{byte(i)}); err != nil {
					b.Fatal(err)
				}
				spent += time.Since(start)
				i++
			}
			b.ReportMetric(Ops(n)*float64(b.N)/spent.Seconds()/1e9, "GOPS")
		})
	}
}

// BenchmarkVerifyShare measures, at n = 1024 and m = 8, the keeper's
// work (drawing the rows, checking their paths and recomputing them
// exactly) against the edge's (the product on one core and the tree over
// C), in the same run; the share should be at most m/n ≈ 0.008 plus what
// generating B costs the keeper (goal <= 0.01).
func BenchmarkVerifyShare(b *testing.B) {
	const n, m = 1024, DefaultRows
	rng := detRand(1)
	var edge, keeper time.Duration
	i := 0
	for b.Loop() {
		seed := [32]byte{byte(i), byte(i >> 8)}
		i++
		start := time.Now()
		p, err := CPU{Workers: 1}.Multiply(context.Background(), n, seed)
		if err != nil {
			b.Fatal(err)
		}
		tree := commit(p)
		edge += time.Since(start)

		rows, err := drawRows(rng, n, m)
		if err != nil {
			b.Fatal(err)
		}
		ans, err := answer(p, tree, request{Rows: rows})
		if err != nil {
			b.Fatal(err)
		}
		frame, err := wire.Marshal(ans)
		if err != nil {
			b.Fatal(err)
		}
		start = time.Now()
		if reason := judgeRows(n, seed, tree.Root(), rows, frame); reason != "" {
			b.Fatal(reason)
		}
		keeper += time.Since(start)
	}
	b.ReportMetric(keeper.Seconds()/edge.Seconds(), "verify/edge")
	b.ReportMetric(float64(keeper.Microseconds())/float64(b.N), "keeper-µs")
	b.ReportMetric(float64(edge.Milliseconds())/float64(b.N), "edge-ms")
}
