package challenge

import "math/bits"

// negLogFrac is the number of fractional bits of negLog2's result.
const negLogFrac = 57

// negLog2 returns -log2(u) for u = (x + 1/2) / 2^64, in fixed point with
// negLogFrac fractional bits, rounded down at each step of the
// computation, always at least 1. The result is at most 65·2^57 < 2^64.
//
// u = y / 2^65 with y = 2x+1, so -log2(u) = 65 - log2(y). log2(y) is its
// integer part n, the position of y's top bit, plus log2(m) for m = y/2^n
// in [1, 2), whose bits come one at a time by squaring m: a square of 2
// or more means the next bit is 1, and halves m back into [1, 2). Each
// square is truncated to 63 fractional bits, so the last few of the 57
// bits may be off by a unit or so; that error is below 2^-50 (the test
// checks it against math.Log2) and, being integer arithmetic, is the same
// on every machine, which is what a committee needs.
func negLog2(x uint64) uint64 {
	l := newNegLog(x)
	l.advance(negLogFrac)
	return l.value()
}

// negLog is negLog2 part-way through: the first bits of the fraction are
// known, which bounds the result before the rest are computed.
type negLog struct {
	n    uint   // integer part of log2(y)
	m    uint64 // in [1, 2) with 63 fractional bits
	f    uint64 // the fraction's bits so far
	done int    // how many
}

func newNegLog(x uint64) negLog {
	if x >= 1<<63 {
		// y has 65 bits; y/2 = x, and the half dropped is 2^-64 of y.
		return negLog{n: 64, m: x}
	}
	y := 2*x + 1
	n := uint(bits.Len64(y) - 1)
	return negLog{n: n, m: y << (63 - n)}
}

// advance computes the fraction's next steps bits.
func (l *negLog) advance(steps int) {
	m, f := l.m, l.f
	for range steps {
		hi, lo := bits.Mul64(m, m) // m² with 126 fractional bits
		// The bit is 1 when m² >= 2; then m²/2 with 63 fractional bits is
		// hi, else m² is hi<<1 | lo>>63. Without a branch: the bits are
		// random, and mispredicting half of them doubles the cost.
		bit := hi >> 63
		f = f<<1 | bit
		shift := (bit ^ 1) & 1
		m = hi<<shift | lo>>63&shift
	}
	l.m, l.f, l.done = m, f, l.done+steps
}

// atLeast returns a lower bound of the final value: the bits not yet
// computed are at most all ones.
func (l negLog) atLeast() uint64 {
	rest := uint(negLogFrac - l.done)
	return uint64(65-l.n)<<negLogFrac - l.f<<rest - (1<<rest - 1)
}

// value is the result, once all negLogFrac bits are done.
func (l negLog) value() uint64 {
	return uint64(65-l.n)<<negLogFrac - l.f
}
