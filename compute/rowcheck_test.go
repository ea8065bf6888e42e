package compute

import (
	mrand "math/rand/v2"
	"slices"
	"testing"
)

// TestRowProducts: the keeper's three-lane rows equal the triple loop,
// for odd and even n below, at and past the flush interval, for counts
// of rows that fill the packed words or leave one or two lanes empty,
// with A and B random, at the int8 extremes, or a mix of the extremes
// (every product ±16384 or -16256, the sums as large as they get).
func TestRowProducts(t *testing.T) {
	rng := mrand.New(mrand.NewPCG(3, 4))
	fills := map[string]func() int8{
		"random":  func() int8 { return int8(rng.Uint32()) },
		"-128":    func() int8 { return -128 },
		"127":     func() int8 { return 127 },
		"extreme": func() int8 { return [2]int8{-128, 127}[rng.IntN(2)] },
	}
	for _, n := range []int{1, 2, 5, 62, 63, 64, 127, 189, 190, 257} {
		for na, fa := range fills {
			for nb, fb := range fills {
				a, b := make([]int8, n*n), make([]int8, n*n)
				for i := range a {
					a[i], b[i] = fa(), fb()
				}
				want := naive(n, a, b)
				for _, m := range []int{1, 2, 3, 4, 8, 10} {
					rows := make([][]int8, m)
					idx := make([]int, m)
					for r := range rows {
						idx[r] = rng.IntN(n)
						rows[r] = a[idx[r]*n : (idx[r]+1)*n]
					}
					got := productRows(n, rows, b)
					for r, i := range idx {
						if !slices.Equal(got[r], want[i*n:(i+1)*n]) {
							t.Fatalf("n=%d, m=%d, A %s, B %s: row %d (A's row %d) differs from the triple loop", n, m, na, nb, r, i)
						}
					}
				}
			}
		}
	}
}

// TestUnpack3: the lanes come back exactly at their bounds.
func TestUnpack3(t *testing.T) {
	lim := []int32{-1 << 20, -1<<20 + 1, -1, 0, 1, 1<<20 - 1}
	for _, x := range lim {
		for _, y := range lim {
			for _, z := range lim {
				s := int64(x) + int64(y)<<laneBits + int64(z)<<(2*laneBits)
				if a, b, c := unpack3(s); a != x || b != y || c != z {
					t.Fatalf("unpack3(pack of %d, %d, %d) = %d, %d, %d", x, y, z, a, b, c)
				}
			}
		}
	}
	// flushK products at their largest fit a lane; one more does not.
	if flushK*128*128 >= 1<<20 || (flushK+1)*128*128 < 1<<20 {
		t.Fatalf("flushK = %d is not the largest count whose sums fit %d bits", flushK, laneBits)
	}
}
