package compute

// The keeper recomputes the m rows of C it checks: m·n^2 products, a
// share m/n of the edge's work, on top of generating B. It packs three
// rows of A in each 64-bit word, 21 bits a lane, so that one multiply by
// an entry of B gives three products, and takes B a row at a time, as
// the keystream gives it, so that B is neither held whole nor packed.
//
// Exactness: a product of two int8 lies in [-16256, 16384], so a lane's
// sum of up to flushK = 63 of them lies in [-2^20, 2^20) and fits its 21
// signed bits (64 would not: 64·16384 = 2^20); the lanes of the packed
// sum are then a0·y + a1·y·2^21 + a2·y·2^42 summed, which stays within
// 2^62 and splits back exactly. Every flushK rows of B the packed sums are split into exact
// int32 sums and restarted, so this holds for every n (int32 holds
// n·16384 up to n = 131071, far above maxN), with no fallback needed.
//
// Two lanes of 32 bits, as the edge's product uses, need no flushing but
// take four multiplies for eight rows where three lanes take three; three
// lanes without flushing would need 26 bits each at n = 1024 (sums up to
// 2^24 in magnitude), 78 bits in all.
const (
	laneBits = 21
	flushK   = 63
)

// pack3 packs three entries of A in lanes of laneBits.
func pack3(a0, a1, a2 int8) int64 {
	return int64(a0) + int64(a1)<<laneBits + int64(a2)<<(2*laneBits)
}

// unpack3 splits a packed sum into its three lanes, each within
// [-2^20, 2^20): the low lane is the low 21 bits, sign-extended, and
// what is left is an exact multiple of 2^21.
func unpack3(s int64) (l0, l1, l2 int32) {
	const sh = 64 - laneBits
	l0 = int32(s << sh >> sh)
	s = (s - int64(l0)) >> laneBits
	l1 = int32(s << sh >> sh)
	l2 = int32((s - int64(l1)) >> laneBits)
	return l0, l1, l2
}

// rowProducts computes rows of A·B from those rows of A, fed the rows of
// B in order.
type rowProducts struct {
	n, m int
	w    [][]int64 // w[q][k]: rows 3q, 3q+1, 3q+2 of A at column k, packed
	acc  [][]int64 // acc[q][j]: packed sums since the last flush
	sums [][]int32 // sums[r][j]: exact sums of row r up to the last flush
	k    int       // rows of B added so far
}

func newRowProducts(n int, aRows [][]int8) *rowProducts {
	m := len(aRows)
	words := (m + 2) / 3
	p := &rowProducts{n: n, m: m, w: make([][]int64, words), acc: make([][]int64, words), sums: make([][]int32, 3*words)}
	zero := make([]int8, n) // pads the last word's missing rows
	row := func(r int) []int8 {
		if r < m {
			return aRows[r][:n]
		}
		return zero
	}
	for q := range words {
		a0, a1, a2 := row(3*q), row(3*q+1), row(3*q+2)
		w := make([]int64, n)
		for k := range w {
			w[k] = pack3(a0[k], a1[k], a2[k])
		}
		p.w[q], p.acc[q] = w, make([]int64, n)
	}
	for r := range p.sums {
		p.sums[r] = make([]int32, n)
	}
	return p
}

// add adds row k of B, k being the number of rows added before.
func (p *rowProducts) add(b []int8) {
	b = b[:p.n]
	k := p.k
	q := 0
	for ; q+3 <= len(p.w); q += 3 {
		addRow3(p.acc[q], p.acc[q+1], p.acc[q+2], b, p.w[q][k], p.w[q+1][k], p.w[q+2][k])
	}
	for ; q < len(p.w); q++ {
		addRow1(p.acc[q], b, p.w[q][k])
	}
	p.k++
	if p.k%flushK == 0 {
		p.flush()
	}
}

// addRow3 adds row b of B times three packed words of A: each entry of
// B is loaded once for nine rows.
func addRow3(s0, s1, s2 []int64, b []int8, w0, w1, w2 int64) {
	s0, s1, s2 = s0[:len(b)], s1[:len(b)], s2[:len(b)]
	for j, y := range b {
		y := int64(y)
		s0[j] += w0 * y
		s1[j] += w1 * y
		s2[j] += w2 * y
	}
}

func addRow1(s []int64, b []int8, w int64) {
	s = s[:len(b)]
	for j, y := range b {
		s[j] += w * int64(y)
	}
}

// flush moves the packed sums into the exact ones.
func (p *rowProducts) flush() {
	for q, acc := range p.acc {
		r0, r1, r2 := p.sums[3*q][:len(acc)], p.sums[3*q+1][:len(acc)], p.sums[3*q+2][:len(acc)]
		for j, s := range acc {
			l0, l1, l2 := unpack3(s)
			r0[j] += l0
			r1[j] += l1
			r2[j] += l2
		}
		clear(acc)
	}
}

// rows returns the rows of A·B, once all n rows of B are added.
func (p *rowProducts) rows() [][]int32 {
	if p.k != p.n {
		panic("compute: rowProducts: not all of B added")
	}
	p.flush()
	return p.sums[:p.m]
}

// productRows computes rows of A·B, given those rows of A and B whole.
func productRows(n int, aRows [][]int8, b []int8) [][]int32 {
	p := newRowProducts(n, aRows)
	for k := range n {
		p.add(b[k*n : (k+1)*n])
	}
	return p.rows()
}
