package compute

import (
	"context"
	"fmt"
	mrand "math/rand/v2"
	"slices"
	"testing"
)

// naive is the textbook triple loop, the reference every fast path is
// held to.
func naive(n int, a, b []int8) []int32 {
	c := make([]int32, n*n)
	for i := range n {
		for j := range n {
			var s int32
			for k := range n {
				s += int32(a[i*n+k]) * int32(b[k*n+j])
			}
			c[i*n+j] = s
		}
	}
	return c
}

// TestCPUMatchesNaive: the CPU executor, on one and several workers,
// equals the triple loop for sizes on and off its blocks (odd ones
// included, which leave a half pair), on seeds that fill A and B with
// every int8 value.
func TestCPUMatchesNaive(t *testing.T) {
	rng := mrand.New(mrand.NewPCG(1, 2))
	for _, n := range []int{1, 2, 3, 7, 31, 32, 33, 64, 65, 100, 127, 130} {
		var seed [32]byte
		for i := range seed {
			seed[i] = byte(rng.Uint32())
		}
		a, b := Matrices(n, seed)
		want := naive(n, a, b)
		for _, workers := range []int{1, 3} {
			p, err := CPU{Workers: workers}.Multiply(context.Background(), n, seed)
			if err != nil {
				t.Fatal(err)
			}
			if p.N != n || !slices.Equal(p.C, want) {
				t.Fatalf("n=%d, %d workers: product differs from the triple loop", n, workers)
			}
		}
		// The keeper's row check agrees too.
		rowsA := [][]int8{a[:n], a[(n-1)*n:]}
		got := productRows(n, rowsA, b)
		if !slices.Equal(got[0], want[:n]) || !slices.Equal(got[1], want[(n-1)*n:]) {
			t.Fatalf("n=%d: productRows differs from the triple loop", n)
		}
	}
}

// TestCPUExtremes: the packed sums stay exact where they are largest,
// every term -128·-128 or -128·127, at the largest size a network may
// set.
func TestCPUExtremes(t *testing.T) {
	for _, n := range []int{2, 65, 512} {
		for _, v := range [][2]int8{{-128, -128}, {-128, 127}, {127, 127}} {
			a, b := make([]int8, n*n), make([]int8, n*n)
			for i := range a {
				a[i], b[i] = v[0], v[1]
			}
			c, err := multiply(context.Background(), n, a, b, 2)
			if err != nil {
				t.Fatal(err)
			}
			want := int32(n) * int32(v[0]) * int32(v[1])
			for i, x := range c {
				if x != want {
					t.Fatalf("n=%d, %v: C[%d] = %d, want %d", n, v, i, x, want)
				}
			}
		}
	}
	// One row of the largest n, as the keeper computes it.
	const n = maxN
	a, b := make([]int8, n), make([]int8, n*n)
	for i := range a {
		a[i] = -128
	}
	for i := range b {
		b[i] = -128
	}
	if got := productRows(n, [][]int8{a}, b)[0]; got[0] != n*128*128 || got[n-1] != n*128*128 {
		t.Fatalf("n=%d: row sums %d, %d, want %d", n, got[0], got[n-1], n*128*128)
	}
}

// TestCPUCancel: a cancelled context stops the product.
func TestCPUCancel(t *testing.T) {
	ctx, cancel := context.WithCancel(context.Background())
	cancel()
	if _, err := (CPU{}).Multiply(ctx, 256, [32]byte{}); err == nil {
		t.Fatal("a cancelled product returned no error")
	}
}

func ExampleCPU() {
	p, err := CPU{}.Multiply(context.Background(), 64, MatrixSeed([]byte("challenge seed"), make([]byte, NonceSize)))
	if err != nil {
		panic(err)
	}
	fmt.Println(p.N, len(p.C))
	// Output: 64 4096
}
