package compute

import (
	"bytes"
	"crypto/sha256"
	"strings"
	"testing"
	"time"

	"github.com/ipfs/go-cid"
	"github.com/multiformats/go-multihash"

	"github.com/aropeer/aropeer/proofs"
)

// TestParamsN: n takes the claim about Target, in multiples of 64 within
// [MinN, MaxN].
func TestParamsN(t *testing.T) {
	p := DefaultParams()
	for _, tc := range []struct {
		milliTOPS uint64
		n         int
	}{
		{0, 64},
		{1, 512},          // 1 GOPS: 500 in 250 ms, rounded
		{10, 1088},        // 10 GOPS: cbrt(1.25e9) = 1077
		{20, 1344},        // 20 GOPS: 1357
		{68_720, 2048},    // 2·2048^3 in 250 ms
		{1_000_000, 2048}, // a big GPU: capped
	} {
		if got := p.N(tc.milliTOPS); got != tc.n {
			t.Errorf("N(%d) = %d, want %d", tc.milliTOPS, got, tc.n)
		}
	}
	// 1 GOPS at n = 512: 0.268 s, times 4, plus the overhead.
	if got, want := p.Budget(512, 1), 4*268435456*time.Nanosecond+DefaultOverhead; got != want {
		t.Errorf("Budget(512, 1) = %v, want %v", got, want)
	}
	if p.Budget(64, 0) != 0 {
		t.Error("a claim of 0 has a budget")
	}
}

// TestParamsValidate: each bad field is named.
func TestParamsValidate(t *testing.T) {
	if err := DefaultParams().Validate(); err != nil {
		t.Fatal(err)
	}
	for field, bad := range map[string]func(*Params){
		"Target":   func(p *Params) { p.Target = 0 },
		"MinN":     func(p *Params) { p.MinN = 100 },
		"MaxN":     func(p *Params) { p.MaxN = 32 },
		"Rows":     func(p *Params) { p.Rows = MaxRows + 1 },
		"Slack":    func(p *Params) { p.Slack = 0.5 },
		"Overhead": func(p *Params) { p.Overhead = -1 },
	} {
		p := DefaultParams()
		bad(&p)
		if err := p.Validate(); err == nil || !strings.Contains(err.Error(), field+" =") {
			t.Errorf("bad %s: %v", field, err)
		}
	}
}

// TestRowTree: the row tree is proofs' RFC 6962 tree (the same root as
// proofs.Tree over leaves of the same bytes), every row's path verifies,
// and a changed row or path does not.
func TestRowTree(t *testing.T) {
	var cids []cid.Cid
	var leaves [][32]byte
	for i := range 13 {
		mh, _ := multihash.Sum([]byte{byte(i)}, multihash.SHA2_256, -1)
		c := cid.NewCidV1(cid.DagCBOR, mh)
		cids = append(cids, c)
		leaves = append(leaves, proofs.LeafHash(c.Bytes()))
	}
	if proofs.NewHashTree(leaves).Root() != proofs.NewTree(cids).Root() {
		t.Fatal("HashTree and Tree disagree")
	}

	for _, n := range []int{1, 5, 64, 65} {
		seed := sha256.Sum256([]byte{byte(n)})
		p, err := CPU{}.Multiply(t.Context(), n, seed)
		if err != nil {
			t.Fatal(err)
		}
		tree := commit(p)
		root := tree.Root()
		for i := range n {
			path, err := tree.Path(i)
			if err != nil {
				t.Fatal(err)
			}
			row := rowBytes(p.Row(i), nil)
			if err := proofs.VerifyPath(root, proofs.LeafHash(row), uint64(i), uint64(n), path); err != nil {
				t.Fatalf("n=%d row %d: %v", n, i, err)
			}
			bad := bytes.Clone(row)
			bad[len(bad)-1] ^= 1
			if proofs.VerifyPath(root, proofs.LeafHash(bad), uint64(i), uint64(n), path) == nil {
				t.Fatalf("n=%d: a changed row %d verifies", n, i)
			}
			if len(path) > 0 {
				path[len(path)-1][0] ^= 1
				if proofs.VerifyPath(root, proofs.LeafHash(row), uint64(i), uint64(n), path) == nil {
					t.Fatalf("n=%d: a changed path of row %d verifies", n, i)
				}
			}
		}
	}
}

// TestMatrices: A and B are the ChaCha20 keystream of the seed; a row of
// A and the rows of B, as the keeper generates them, are the same bytes.
func TestMatrices(t *testing.T) {
	for _, n := range []int{3, 64, 100, 200} {
		seed := MatrixSeed([]byte("s"), bytes.Repeat([]byte{1}, NonceSize))
		a, b := Matrices(n, seed)
		var rows []byte
		rowsOfB(n, seed, func(row []int8) { rows = append(rows, int8Bytes(row)...) })
		if !bytes.Equal(int8Bytes(b), rows) {
			t.Fatalf("n=%d: B differs", n)
		}
		for _, i := range []int{0, 1, n - 1} {
			if !bytes.Equal(int8Bytes(a[i*n:(i+1)*n]), int8Bytes(rowOfA(n, seed, i))) {
				t.Fatalf("n=%d: row %d of A differs", n, i)
			}
		}
	}
	// The first bytes of the keystream of the zero key, RFC 8439 A.1.
	a, _ := Matrices(2, [32]byte{})
	if got := int8Bytes(a); !bytes.Equal(got, []byte{0x76, 0xb8, 0xe0, 0xad}) {
		t.Fatalf("A of the zero seed starts %x", got)
	}
}

func int8Bytes(v []int8) []byte {
	out := make([]byte, len(v))
	for i, x := range v {
		out[i] = byte(x)
	}
	return out
}
