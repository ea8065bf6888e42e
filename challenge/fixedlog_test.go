package challenge

import (
	"math"
	"math/bits"
	"math/rand/v2"
	"slices"
	"testing"
)

// TestNegLog2 checks the fixed-point logarithm against math.Log2, and
// that it never increases with x, so a higher x never scores lower.
// -log2(u) = 65 - n - log2(m) with n = floor(log2(2x+1)) and m in [1, 2);
// the test compares the part below 1, log2(m), where float64 holds 52
// fractional bits, more than the 57-bit result's error needs.
func TestNegLog2(t *testing.T) {
	const scale = 1 << negLogFrac
	xs := []uint64{0, 1, 2, 3, 1 << 20, 1<<63 - 1, 1 << 63, 1<<63 + 1, math.MaxUint64 - 1<<20, math.MaxUint64 - 1, math.MaxUint64}
	rng := rand.New(rand.NewPCG(1, 2))
	for range 100_000 {
		xs = append(xs, rng.Uint64(), rng.Uint64()>>rng.UintN(64))
	}
	if got := negLog2(0); got != 65<<negLogFrac {
		t.Errorf("negLog2(0) = %d, want 65·2^57 (u = 2^-65)", got)
	}
	worst := 0.0
	for _, x := range xs {
		got := negLog2(x)
		if got == 0 {
			t.Fatalf("negLog2(%d) = 0", x)
		}
		n := bits.Len64(x)                           // = floor(log2(2x+1))
		m := (float64(x) + 0.5) / math.Ldexp(1, n-1) // (2x+1) / 2^n
		frac := float64(uint64(65-n)<<negLogFrac-got) / scale
		if d := math.Abs(frac - math.Log2(m)); d > worst {
			worst = d
		}
	}
	for _, x := range xs[:1000] {
		want := negLog2(x)
		for _, peek := range []int{0, 1, 8, 30, negLogFrac} {
			l := newNegLog(x)
			l.advance(peek)
			if lo := l.atLeast(); lo > want || lo == 0 || (peek == negLogFrac && lo != want) {
				t.Fatalf("negLog2(%d) = %d, but after %d bits atLeast says %d", x, want, peek, lo)
			}
		}
	}
	if worst > 0x1p-50 {
		t.Errorf("negLog2 is off by up to %g, want under 2^-50", worst)
	}
	t.Logf("negLog2 absolute error at most %.3g (2^%.1f)", worst, math.Log2(worst))
	slices.Sort(xs)
	for i := 1; i < len(xs); i++ {
		if negLog2(xs[i]) > negLog2(xs[i-1]) {
			t.Fatalf("negLog2(%d) = %d > negLog2(%d) = %d", xs[i], negLog2(xs[i]), xs[i-1], negLog2(xs[i-1]))
		}
	}
}
