package proofs

import (
	"crypto/sha256"
	"encoding/binary"
	"encoding/hex"
	"errors"
	"fmt"
	"slices"
	"strings"
	"testing"
	"time"

	"github.com/ipfs/go-cid"
	"github.com/multiformats/go-multihash"
)

// refMTH is RFC 6962 section 2.1's MTH, written recursively from the
// definition and independent of Tree.
func refMTH(d [][]byte) [32]byte {
	switch n := len(d); n {
	case 0:
		return sha256.Sum256(nil)
	case 1:
		return sha256.Sum256(append([]byte{0x00}, d[0]...))
	default:
		k := 1
		for k*2 < n {
			k *= 2
		}
		l, r := refMTH(d[:k]), refMTH(d[k:])
		return sha256.Sum256(append(append([]byte{0x01}, l[:]...), r[:]...))
	}
}

// merkleCIDs returns n distinct raw-block CIDs sorted by bytes, as
// ReceiptStore.CIDs returns them.
func merkleCIDs(t testing.TB, n int) []cid.Cid {
	t.Helper()
	out := make([]cid.Cid, n)
	var b [8]byte
	for i := range out {
		binary.BigEndian.PutUint64(b[:], uint64(i))
		mh, err := multihash.Sum(b[:], multihash.SHA2_256, -1)
		if err != nil {
			t.Fatal(err)
		}
		out[i] = cid.NewCidV1(cid.Raw, mh)
	}
	slices.SortFunc(out, func(a, b cid.Cid) int { return strings.Compare(a.KeyString(), b.KeyString()) })
	return out
}

func cidBytes(cs []cid.Cid) [][]byte {
	out := make([][]byte, len(cs))
	for i, c := range cs {
		out[i] = c.Bytes()
	}
	return out
}

func unhex(t testing.TB, s string) []byte {
	t.Helper()
	b, err := hex.DecodeString(s)
	if err != nil {
		t.Fatal(err)
	}
	return b
}

// TestMerkleRFC6962Vectors checks the reference MTH and the level builder
// against the published RFC 6962 test vectors (certificate-transparency,
// trillian and transparency-dev/merkle share them): the roots of the
// first 1 to 8 of eight fixed leaves.
func TestMerkleRFC6962Vectors(t *testing.T) {
	leaves := []string{"", "00", "10", "2021", "3031", "40414243",
		"5051525354555657", "606162636465666768696a6b6c6d6e6f"}
	roots := []string{
		"6e340b9cffb37a989ca544e6bb780a2c78901d3fb33738768511a30617afa01d",
		"fac54203e7cc696cf0dfcb42c92a1d9dbaf70ad9e621f4bd8d98662f00e3c125",
		"aeb6bcfe274b70a14fb067a5e5578264db0fa9b51af5e0ba159158f329e06e77",
		"d37ee418976dd95753c1c73862b9398fa2a2cf9b4ff0fdfe8b30cd95209614b7",
		"4e3bbb1f7b478dcfe71fb631631519a3bca12c9aefca1612bfce4c13a86264d4",
		"76e67dadbcdf1e10e1b74ddc608abd2f98dfb16fbce75277b5232a127f2087ef",
		"ddb89be403809e325750d3d263cd78929c2942b7942a34b77e122c9594a74c8c",
		"5dc9da79a70659a9ad559cb701ded9a2ab9d823aad2f4960cfe370eff4604328",
	}
	var data [][]byte
	var hashes [][32]byte
	for i, l := range leaves {
		data = append(data, unhex(t, l))
		hashes = append(hashes, hashLeaf(data[i]))
		want := unhex(t, roots[i])
		if got := refMTH(data); hex.EncodeToString(got[:]) != roots[i] {
			t.Errorf("reference MTH of %d leaves = %x, want %x", i+1, got, want)
		}
		levels := buildLevels(slices.Clone(hashes))
		if got := levels[len(levels)-1][0]; hex.EncodeToString(got[:]) != roots[i] {
			t.Errorf("tree root of %d leaves = %x, want %x", i+1, got, want)
		}
	}
	empty := NewTree(nil).Root()
	if got := hex.EncodeToString(empty[:]); got != "e3b0c44298fc1c149afbf4c8996fb92427ae41e4649b934ca495991b7852b855" {
		t.Errorf("empty root = %s, want SHA-256 of the empty string", got)
	}
}

func TestMerkleKnownRoots(t *testing.T) {
	for _, n := range []int{0, 1, 2, 3, 4, 5, 7, 8} {
		cs := merkleCIDs(t, n)
		tr := NewTree(cs)
		if tr.Len() != n {
			t.Errorf("n=%d: Len = %d", n, tr.Len())
		}
		if got, want := tr.Root(), refMTH(cidBytes(cs)); got != want {
			t.Errorf("n=%d: root %x, want %x", n, got, want)
		}
	}
	// Order matters: the same leaves reversed give another root.
	cs := merkleCIDs(t, 4)
	rev := slices.Clone(cs)
	slices.Reverse(rev)
	if NewTree(cs).Root() == NewTree(rev).Root() {
		t.Error("reversing the leaves kept the root")
	}
}

// checkAllProofs proves every leaf of tr and verifies it against root.
func checkAllProofs(t *testing.T, tr *Tree, cs []cid.Cid, root [32]byte) {
	t.Helper()
	for i := range cs {
		p, err := tr.Proof(i)
		if err != nil {
			t.Fatalf("n=%d leaf %d: %v", len(cs), i, err)
		}
		if p.Index != uint64(i) || p.Size != uint64(len(cs)) || !p.Leaf.Equals(cs[i]) {
			t.Fatalf("n=%d leaf %d: proof names index %d size %d leaf %s", len(cs), i, p.Index, p.Size, p.Leaf)
		}
		if err := p.Verify(root); err != nil {
			t.Fatalf("n=%d leaf %d: %v", len(cs), i, err)
		}
	}
}

func TestMerkleProofsVerify(t *testing.T) {
	for n := 1; n <= 70; n++ {
		cs := merkleCIDs(t, n)
		tr := NewTree(cs)
		root := refMTH(cidBytes(cs))
		if tr.Root() != root {
			t.Fatalf("n=%d: root differs from the reference", n)
		}
		checkAllProofs(t, tr, cs, root)
	}
}

func TestMerkle10kLeaves(t *testing.T) {
	cs := merkleCIDs(t, 10_000)
	tr := NewTree(cs)
	if tr.Root() != refMTH(cidBytes(cs)) {
		t.Fatal("root differs from the reference")
	}
	checkAllProofs(t, tr, cs, tr.Root())
}

func TestMerkleProofOtherRoot(t *testing.T) {
	cs := merkleCIDs(t, 9)
	tr := NewTree(cs)
	others := [][32]byte{
		{},
		NewTree(cs[:8]).Root(),
		NewTree(merkleCIDs(t, 10)).Root(),
		sha256.Sum256(nil),
	}
	r := tr.Root()
	r[31] ^= 1
	others = append(others, r)
	for i := range cs {
		p, _ := tr.Proof(i)
		for j, o := range others {
			if err := p.Verify(o); !errors.Is(err, ErrBadProof) {
				t.Errorf("leaf %d against other root %d: err = %v, want ErrBadProof", i, j, err)
			}
		}
	}
}

func TestMerkleProofTampered(t *testing.T) {
	for _, n := range []int{2, 3, 5, 7, 8, 13, 64, 70} {
		cs := merkleCIDs(t, n)
		tr := NewTree(cs)
		root := tr.Root()
		for i := range cs {
			p, _ := tr.Proof(i)
			bad := map[string]InclusionProof{}
			for _, idx := range []uint64{p.Index + 1, p.Index - 1, p.Index ^ 1, p.Index ^ 2, uint64(n), 1 << 40} {
				if idx != p.Index {
					q := p
					q.Index = idx
					bad[fmt.Sprintf("index %d", idx)] = q
				}
			}
			for _, size := range []uint64{0, p.Index, p.Size * 2} {
				q := p
				q.Size = size
				bad[fmt.Sprintf("size %d", size)] = q
			}
			q := p
			q.Leaf = cs[(i+1)%n]
			bad["leaf"] = q
			q = p
			q.Leaf = cid.Undef
			bad["undef leaf"] = q
			q = p
			q.Path = p.Path[:len(p.Path)-1]
			bad["missing last"] = q
			q = p
			q.Path = p.Path[1:]
			bad["missing first"] = q
			q = p
			q.Path = append(slices.Clone(p.Path), make([]byte, 32))
			bad["extra last"] = q
			q = p
			q.Path = append([][]byte{root[:]}, p.Path...)
			bad["extra first"] = q
			q = p
			q.Path = slices.Clone(p.Path)
			q.Path[0] = q.Path[0][:31]
			bad["short element"] = q
			for name, q := range bad {
				if err := q.Verify(root); !errors.Is(err, ErrBadProof) {
					t.Errorf("n=%d leaf %d, %s (index %d size %d): err = %v, want ErrBadProof", n, i, name, q.Index, q.Size, err)
				}
			}
			// One flipped bit anywhere in the path.
			for e := range p.Path {
				for bit := range 256 {
					q := p
					q.Path = slices.Clone(p.Path)
					q.Path[e] = slices.Clone(p.Path[e])
					q.Path[e][bit/8] ^= 1 << (bit % 8)
					if err := q.Verify(root); !errors.Is(err, ErrBadProof) {
						t.Fatalf("n=%d leaf %d: bit %d of path element %d flipped: err = %v", n, i, bit, e, err)
					}
				}
			}
			// The proof is untouched by all this.
			if err := p.Verify(root); err != nil {
				t.Fatalf("n=%d leaf %d: %v", n, i, err)
			}
		}
	}
}

// refShape is where the siblings of leaf m of an n-leaf tree sit, from the
// leaf up (true: on the left), from RFC 6962 section 2.1.1's PATH(m, D[n]).
func refShape(m, n uint64) []bool {
	if n <= 1 {
		return nil
	}
	k := uint64(1)
	for k*2 < n {
		k *= 2
	}
	if m < k {
		return append(refShape(m, k), false)
	}
	return append(refShape(m-k, n-k), true)
}

// TestMerkleProofWrongSize pins down what RFC 6962 inclusion proofs do
// not bind: the tree size. A proof claiming another size verifies exactly
// when that size puts the leaf's siblings in the same places (leaf 0 of 5
// leaves and of 6, say), since the size only steers the hashing; it fails
// for every other size. Callers must take the size from where they take
// the root.
func TestMerkleProofWrongSize(t *testing.T) {
	for _, n := range []uint64{1, 2, 3, 5, 7, 8, 13, 64, 70} {
		cs := merkleCIDs(t, int(n))
		tr := NewTree(cs)
		root := tr.Root()
		rejected := 0
		for i := range n {
			p, _ := tr.Proof(int(i))
			for size := uint64(0); size <= 2*n+1; size++ {
				if size == n {
					continue
				}
				q := p
				q.Size = size
				err := q.Verify(root)
				same := i < size && slices.Equal(refShape(i, size), refShape(i, n))
				switch {
				case same && err != nil:
					t.Errorf("n=%d leaf %d as size %d (same shape): %v", n, i, size, err)
				case !same && !errors.Is(err, ErrBadProof):
					t.Errorf("n=%d leaf %d as size %d: err = %v, want ErrBadProof", n, i, size, err)
				case !same:
					rejected++
				}
			}
		}
		if rejected == 0 {
			t.Errorf("n=%d: no wrong size was rejected", n)
		}
	}
}

// TestMerkleNotInTree builds the would-be proof of a CID outside the tree
// from each member's index, size and path: none verifies.
func TestMerkleNotInTree(t *testing.T) {
	all := merkleCIDs(t, 41)
	outside, cs := all[20], slices.Delete(slices.Clone(all), 20, 21)
	tr := NewTree(cs)
	for i := range cs {
		p, _ := tr.Proof(i)
		p.Leaf = outside
		if err := p.Verify(tr.Root()); !errors.Is(err, ErrBadProof) {
			t.Errorf("outside CID with leaf %d's path: err = %v, want ErrBadProof", i, err)
		}
	}
}

func TestMerkleProofRange(t *testing.T) {
	if _, err := NewTree(nil).Proof(0); err == nil {
		t.Error("empty tree gave a proof")
	}
	tr := NewTree(merkleCIDs(t, 3))
	for _, i := range []int{-1, 3, 100} {
		if _, err := tr.Proof(i); err == nil {
			t.Errorf("Proof(%d) of 3 leaves: no error", i)
		}
	}
	// The tree keeps its own copy of the leaves.
	cs := merkleCIDs(t, 3)
	tr = NewTree(cs)
	cs[0] = cs[1]
	if p, _ := tr.Proof(0); p.Verify(tr.Root()) != nil || p.Leaf.Equals(cs[1]) {
		t.Error("tree followed a change to the caller's slice")
	}
}

func BenchmarkTree100k(b *testing.B) {
	const n = 100_000
	cs := merkleCIDs(b, n)
	for b.Loop() {
		tr := NewTree(cs)
		_ = tr.Root()
	}
	treeMS := b.Elapsed().Seconds() * 1e3 / float64(b.N)
	b.ReportMetric(treeMS, "ms/tree")
	b.ReportMetric(float64(2*n-1)/(treeMS/1e3), "hashes/s") // n leaf hashes, n-1 node hashes

	// Baseline: SHA-256 over n 64-byte inputs, best of a few runs. A tree
	// hashes about 2n inputs, so a tree/baseline near 2 means no overhead
	// beyond the hashing.
	var in [64]byte
	best := time.Duration(1 << 62)
	for range 5 {
		start := time.Now()
		for i := range n {
			binary.LittleEndian.PutUint64(in[:], uint64(i))
			h := sha256.Sum256(in[:])
			copy(in[8:], h[:]) // chain the hashes so none is optimised away
		}
		best = min(best, time.Since(start))
	}
	baseMS := best.Seconds() * 1e3
	b.ReportMetric(float64(n)/best.Seconds(), "sha256-64B/s")
	b.ReportMetric(treeMS/baseMS, "tree/baseline")
}

func BenchmarkVerifyProof(b *testing.B) {
	const n = 100_000
	cs := merkleCIDs(b, n)
	tr := NewTree(cs)
	root := tr.Root()
	ps := make([]InclusionProof, 1024)
	for i := range ps {
		p, err := tr.Proof(i * (n / len(ps)))
		if err != nil {
			b.Fatal(err)
		}
		ps[i] = p
	}
	i := 0
	for b.Loop() {
		if err := ps[i%len(ps)].Verify(root); err != nil {
			b.Fatal(err)
		}
		i++
	}
	perSecond(b, b.N, "proofs/s")
}
