package storage

import (
	"bytes"
	"errors"
	"math/rand/v2"
	"os"
	"path/filepath"
	"testing"
)

func randomPayload(seed uint64, n int) []byte {
	b := make([]byte, n)
	rand.NewChaCha8([32]byte{byte(seed), byte(seed >> 8)}).Read(b)
	return b
}

// naiveProofs returns a function giving the proof of a leaf from the full
// naive tree of payload.
func naiveProofs(t *testing.T, payload []byte) func(index uint64) LeafProof {
	t.Helper()
	padded, err := PaddedSize(int64(len(payload)))
	if err != nil {
		t.Fatal(err)
	}
	levels := naiveTree(naivePad(payload, padded))
	return func(index uint64) LeafProof {
		p := LeafProof{Index: index, Leaf: [32]byte(levels[0][index*LeafSize:])}
		for l := range len(levels) - 1 {
			p.Path = append(p.Path, [32]byte(levels[l][((index>>l)^1)*LeafSize:]))
		}
		return p
	}
}

func commitBytes(t testing.TB, payload []byte) *Tree {
	t.Helper()
	tree, err := Commit(bytes.NewReader(payload), int64(len(payload)), 2, nil)
	if err != nil {
		t.Fatal(err)
	}
	return tree
}

func equalProofs(a, b LeafProof) bool {
	if a.Index != b.Index || a.Leaf != b.Leaf || len(a.Path) != len(b.Path) {
		return false
	}
	for i := range a.Path {
		if a.Path[i] != b.Path[i] {
			return false
		}
	}
	return true
}

// TestProveEveryLeaf proves every leaf of small pieces, including the
// leaves and whole cached subtrees in the zero padding, and compares each
// proof with the one taken from the full naive tree.
func TestProveEveryLeaf(t *testing.T) {
	// 65: one quad in a 4-leaf tree (shorter than CacheHeight); 5000: a
	// padding tail inside the last subtree; 70000: whole 64-leaf subtrees
	// of padding.
	for _, n := range []int{65, 127, 5000, 70000} {
		payload := randomPayload(uint64(n), n)
		tree := commitBytes(t, payload)
		naive := naiveProofs(t, payload)
		for i := range tree.Padded / LeafSize {
			p, err := tree.Prove(bytes.NewReader(payload), i)
			if err != nil {
				t.Fatalf("%d bytes: Prove(%d): %v", n, i, err)
			}
			if err := Verify(tree.Root(), tree.Padded, p); err != nil {
				t.Fatalf("%d bytes: leaf %d: %v", n, i, err)
			}
			if want := naive(i); !equalProofs(p, want) {
				t.Fatalf("%d bytes: leaf %d: proof differs from the naive tree's", n, i)
			}
		}
		if _, err := tree.Prove(bytes.NewReader(payload), tree.Padded/LeafSize); err == nil {
			t.Fatalf("%d bytes: Prove past the last leaf succeeded", n)
		}
	}
}

// TestProveFromFile proves leaves of a multi-chunk piece from a data file
// and compares them with the naive tree's.
func TestProveFromFile(t *testing.T) {
	payload := randomPayload(9, 3<<20+1234)
	path := filepath.Join(t.TempDir(), "piece")
	if err := os.WriteFile(path, payload, 0o600); err != nil {
		t.Fatal(err)
	}
	f, err := os.Open(path)
	if err != nil {
		t.Fatal(err)
	}
	defer f.Close()
	tree := commitBytes(t, payload)
	leaves := tree.Padded / LeafSize
	naive := naiveProofs(t, payload)
	for _, i := range []uint64{0, 1, 63, 64, 12345, 99999, 105000, leaves/2 + 7, leaves - 1} {
		p, err := tree.Prove(f, i)
		if err != nil {
			t.Fatal(err)
		}
		if !equalProofs(p, naive(i)) {
			t.Fatalf("leaf %d: proof from the file differs from the full tree's", i)
		}
		if err := Verify(tree.Root(), tree.Padded, p); err != nil {
			t.Fatal(err)
		}
	}

	// A data file cut short cannot answer for its missing leaves.
	if err := os.Truncate(path, 1<<20); err != nil {
		t.Fatal(err)
	}
	if _, err := tree.Prove(f, leaves/2); err == nil {
		t.Fatal("Prove from a truncated file succeeded")
	}
}

// TestVerifyRejectsEveryFlippedBit flips each bit of the leaf and of every
// path node, one at a time.
func TestVerifyRejectsEveryFlippedBit(t *testing.T) {
	// 6000 bytes: 8 KiB padded, 256 leaves of which 192 hold data.
	payload := randomPayload(1, 6000)
	tree := commitBytes(t, payload)
	root := tree.Root()
	for _, i := range []uint64{0, 1, 77, 190, 255} {
		p, err := tree.Prove(bytes.NewReader(payload), i)
		if err != nil {
			t.Fatal(err)
		}
		if err := Verify(root, tree.Padded, p); err != nil {
			t.Fatal(err)
		}
		for bit := range 256 {
			q := p
			q.Leaf[bit/8] ^= 1 << (bit % 8)
			if err := Verify(root, tree.Padded, q); !errors.Is(err, ErrBadProof) {
				t.Fatalf("leaf %d with leaf bit %d flipped: %v", i, bit, err)
			}
			for l := range p.Path {
				q := p
				q.Path = append([][32]byte(nil), p.Path...)
				q.Path[l][bit/8] ^= 1 << (bit % 8)
				if err := Verify(root, tree.Padded, q); !errors.Is(err, ErrBadProof) {
					t.Fatalf("leaf %d with bit %d of path node %d flipped: %v", i, bit, l, err)
				}
			}
		}
		for _, bad := range []struct {
			name   string
			padded uint64
			edit   func(*LeafProof)
		}{
			// (Zero leaves of the padding prove each other's places.)
			{"other index", tree.Padded, func(q *LeafProof) { q.Index = (q.Index + 2) % 192 }},
			{"index past the end", tree.Padded, func(q *LeafProof) { q.Index += tree.Padded / LeafSize }},
			{"short path", tree.Padded, func(q *LeafProof) { q.Path = q.Path[:len(q.Path)-1] }},
			{"long path", tree.Padded, func(q *LeafProof) { q.Path = append(q.Path, [32]byte{}) }},
			{"other size", tree.Padded * 2, func(*LeafProof) {}},
			{"size not a power of two", tree.Padded + 128, func(*LeafProof) {}},
			{"size too small", 64, func(*LeafProof) {}},
		} {
			q := p
			q.Path = append([][32]byte(nil), p.Path...)
			bad.edit(&q)
			if err := Verify(root, bad.padded, q); !errors.Is(err, ErrBadProof) {
				t.Errorf("leaf %d, %s: %v", i, bad.name, err)
			}
		}
	}
}

// TestProveDamagedData checks that a proof read from changed data fails,
// while proofs of other subtrees still pass.
func TestProveDamagedData(t *testing.T) {
	payload := randomPayload(2, 100000)
	tree := commitBytes(t, payload)
	damaged := bytes.Clone(payload)
	damaged[50000] ^= 0x10 // in leaf 50000*8/254 = 1574
	for i, wantOK := range map[uint64]bool{1574: false, 1575: false, 0: true, 3000: true} {
		p, err := tree.Prove(bytes.NewReader(damaged), i)
		if err != nil {
			t.Fatal(err)
		}
		// Leaf 1575 is intact but shares the damaged leaf's subtree, whose
		// recomputed nodes are on its path.
		if err := Verify(tree.Root(), tree.Padded, p); (err == nil) != wantOK {
			t.Errorf("leaf %d of damaged data: Verify = %v, want ok=%v", i, err, wantOK)
		}
	}
}
