package compute

import (
	"context"
	"fmt"
	"runtime"
	"sync"
	"sync/atomic"
)

// Executor computes the product a check asks for. The Responder then
// commits C's rows and serves the root and the rows; an executor only
// multiplies.
type Executor interface {
	// Multiply returns C = A·B exactly, for the matrices of size n that
	// Matrices(n, seed) gives. It stops early with ctx's error when ctx
	// ends.
	Multiply(ctx context.Context, n int, seed [32]byte) (*Product, error)
}

// CPU multiplies in pure Go on all cores (or Workers of them), exactly.
//
// Two int8 products fit one 64-bit multiply: B's columns are packed in
// pairs as b0 + b1<<32, so a·(b0 + b1<<32) = a·b0 + (a·b1)<<32, and a
// sum of n such terms keeps both sums exact while |a·b0| summed stays
// within int32 (n·128·128 < 2^31 up to n = 131072). The low half of the
// 64-bit sum is then the first sum, and the rest, shifted down, the
// second. Pairs are stored transposed, so that each 2x2 tile of C is four
// dot products in registers, and B is walked in blocks that stay in the
// core's cache while a block of rows of A runs past them.
type CPU struct {
	// Workers is how many goroutines multiply; 0 means GOMAXPROCS.
	Workers int
}

var _ Executor = CPU{}

// Multiply generates A and B from seed and multiplies them.
func (x CPU) Multiply(ctx context.Context, n int, seed [32]byte) (*Product, error) {
	if n < 1 || n > maxN {
		return nil, fmt.Errorf("compute: cpu: size %d outside 1 to %d", n, maxN)
	}
	a, b := Matrices(n, seed)
	workers := x.Workers
	if workers <= 0 {
		workers = runtime.GOMAXPROCS(0)
	}
	c, err := multiply(ctx, n, a, b, workers)
	if err != nil {
		return nil, fmt.Errorf("compute: cpu: %w", err)
	}
	return &Product{N: n, C: c}, nil
}

// Blocking: rowBlock rows of A (a unit of work) run past pairBlock
// packed column pairs of B at a time (pairBlock·n·8 bytes: 256 KiB at
// n = 2048, well inside a core's L2).
const (
	rowBlock  = 32
	pairBlock = 16
)

// packPairsT packs B's columns in pairs, transposed: out[p*n+k] =
// B[k][2p] + B[k][2p+1]<<32, with a zero column after an odd last one.
// It goes in blocks of packBlock rows of B, so that its writes run along
// out's rows rather than a row apart, which at a power-of-two n would
// all fall in one cache set.
func packPairsT(n int, b []int8) []int64 {
	const packBlock = 64
	h := (n + 1) / 2
	out := make([]int64, h*n)
	for k0 := 0; k0 < n; k0 += packBlock {
		k1 := min(k0+packBlock, n)
		for p := range h {
			dst := out[p*n+k0 : p*n+k1]
			for k := range dst {
				row := b[(k0+k)*n : (k0+k+1)*n]
				v := int64(row[2*p])
				if 2*p+1 < n {
					v += int64(row[2*p+1]) << 32
				}
				dst[k] = v
			}
		}
	}
	return out
}

// unpack splits a packed sum into its two int32 sums.
func unpack(s int64) (lo, hi int32) {
	lo = int32(s)
	return lo, int32((s - int64(lo)) >> 32)
}

// multiply returns A·B for int8 matrices of size n, row-major, on
// workers goroutines.
func multiply(ctx context.Context, n int, a, b []int8, workers int) ([]int32, error) {
	bt := packPairsT(n, b)
	c := make([]int32, n*n)
	blocks := (n + rowBlock - 1) / rowBlock
	var next atomic.Int64
	var wg sync.WaitGroup
	for range min(workers, blocks) {
		wg.Go(func() {
			for {
				blk := int(next.Add(1) - 1)
				if blk >= blocks || ctx.Err() != nil {
					return
				}
				rows(n, a, bt, c, blk*rowBlock, min((blk+1)*rowBlock, n))
			}
		})
	}
	wg.Wait()
	if err := ctx.Err(); err != nil {
		return nil, err
	}
	return c, nil
}

// rows computes rows [i0, i1) of C.
func rows(n int, a []int8, bt []int64, c []int32, i0, i1 int) {
	h := (n + 1) / 2
	for p0 := 0; p0 < h; p0 += pairBlock {
		p1 := min(p0+pairBlock, h)
		i := i0
		for ; i+1 < i1; i += 2 {
			a0, a1 := a[i*n:(i+1)*n], a[(i+1)*n:(i+2)*n]
			p := p0
			for ; p+1 < p1; p += 2 {
				s00, s01, s10, s11 := tile(a0, a1, bt[p*n:(p+1)*n], bt[(p+1)*n:(p+2)*n])
				put(n, c, i, p, s00)
				put(n, c, i, p+1, s01)
				put(n, c, i+1, p, s10)
				put(n, c, i+1, p+1, s11)
			}
			if p < p1 {
				put(n, c, i, p, dot(a0, bt[p*n:(p+1)*n]))
				put(n, c, i+1, p, dot(a1, bt[p*n:(p+1)*n]))
			}
		}
		if i < i1 {
			ai := a[i*n : (i+1)*n]
			for p := p0; p < p1; p++ {
				put(n, c, i, p, dot(ai, bt[p*n:(p+1)*n]))
			}
		}
	}
}

// put stores the packed sum of row i and column pair p.
func put(n int, c []int32, i, p int, s int64) {
	lo, hi := unpack(s)
	c[i*n+2*p] = lo
	if 2*p+1 < n {
		c[i*n+2*p+1] = hi
	}
}

// tile is the 2x2 tile of rows a0, a1 and packed pairs b0, b1: eight
// products for four multiplies, held in registers.
func tile(a0, a1 []int8, b0, b1 []int64) (s00, s01, s10, s11 int64) {
	a1 = a1[:len(a0)]
	b0 = b0[:len(a0)]
	b1 = b1[:len(a0)]
	for k, x := range a0 {
		x0, x1 := int64(x), int64(a1[k])
		y0, y1 := b0[k], b1[k]
		s00 += x0 * y0
		s01 += x0 * y1
		s10 += x1 * y0
		s11 += x1 * y1
	}
	return
}

func dot(a []int8, b []int64) (s int64) {
	b = b[:len(a)]
	for k, x := range a {
		s += int64(x) * b[k]
	}
	return s
}
