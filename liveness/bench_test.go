package liveness

import (
	"testing"
	"time"

	"github.com/aropeer/aropeer/proofs"
)

// BenchmarkVerify runs whole challenges over mocknet, one after another:
// open a stream, send the sealed challenge, the edge checks it and signs
// a heartbeat, the keeper opens and judges it. It reports challenges/s and
// how many bare heartbeat seal+open pairs (measured in the same run) one
// challenge costs; the rest is the challenge's own seal and open, the
// stream and the goroutines. Run with
//
//	go test ./liveness/ -run '^$' -bench Verify -benchmem
func BenchmarkVerify(b *testing.B) {
	h := newHarnessOutside(b, 0)
	base := sealOpenBaseline(b, h)
	answer := honest(h.edgeKey)
	attempt := uint32(0)
	for b.Loop() {
		// A fresh attempt each time, as containment retries are.
		out := h.mustVerify(b, h.challenge(attempt), 5*time.Second, answer)
		if out.Result != proofs.Pass {
			b.Fatalf("outcome %s (%q)", out.Result, out.Reason)
		}
		attempt++
	}
	per := b.Elapsed() / time.Duration(b.N)
	b.ReportMetric(float64(b.N)/b.Elapsed().Seconds(), "challenges/s")
	b.ReportMetric(float64(base.Nanoseconds()), "seal+open-ns")
	b.ReportMetric(float64(per)/float64(base), "x-seal+open")
}

// sealOpenBaseline times SealHeartbeat followed by OpenHeartbeat, outside
// the benchmark timer, and returns the cost of one pair.
func sealOpenBaseline(b *testing.B, h *harness) time.Duration {
	b.Helper()
	hb := HeartbeatFor(h.challenge(0))
	const n = 500
	start := time.Now()
	for range n {
		env, err := SealHeartbeat(h.edgeKey, hb)
		if err != nil {
			b.Fatal(err)
		}
		if _, _, err := OpenHeartbeat(env); err != nil {
			b.Fatal(err)
		}
	}
	return time.Since(start) / n
}
