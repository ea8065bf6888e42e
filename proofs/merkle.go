package proofs

import (
	"crypto/sha256"
	"errors"
	"fmt"

	"github.com/ipfs/go-cid"
)

// ErrBadProof means an inclusion proof does not lead from its leaf to the
// root it is checked against.
var ErrBadProof = errors.New("proofs: bad inclusion proof")

// Domain-separation prefixes of RFC 6962 section 2.1.
const (
	leafPrefix = 0x00
	nodePrefix = 0x01
)

// Tree is an epoch batch's Merkle tree over receipt CIDs, hashed as RFC
// 6962 section 2.1 defines (Certificate Transparency): a leaf's hash is
// SHA-256(0x00 || cid bytes), an interior node's SHA-256(0x01 || left ||
// right), and the empty tree's root SHA-256 of the empty string. Leaves
// keep the order given; callers sort them (ReceiptStore.CIDs returns them
// sorted by bytes).
//
// Every level is kept, so a proof is a walk up the levels. Building pairs
// each level's nodes left to right and carries a level's unpaired last
// node up unchanged, which gives the same tree as RFC 6962's split at the
// largest power of two below n.
type Tree struct {
	leaves []cid.Cid
	levels [][][32]byte // levels[0] are the leaf hashes; the last level holds the root
}

// NewTree builds the tree over leaves, in their order. It keeps its own
// copy of the slice.
func NewTree(leaves []cid.Cid) *Tree {
	hashes := make([][32]byte, len(leaves))
	var buf []byte
	for i, c := range leaves {
		buf = append(append(buf[:0], leafPrefix), c.KeyString()...)
		hashes[i] = sha256.Sum256(buf)
	}
	return &Tree{leaves: append([]cid.Cid(nil), leaves...), levels: buildLevels(hashes)}
}

// buildLevels hashes leaf hashes up to the root, level by level.
func buildLevels(leaves [][32]byte) [][][32]byte {
	if len(leaves) == 0 {
		return nil
	}
	// The levels above n leaves hold at most n + (one carried node per
	// level) entries: one allocation for all of them.
	backing := make([][32]byte, 0, len(leaves)+64)
	levels := [][][32]byte{leaves}
	for cur := leaves; len(cur) > 1; {
		start := len(backing)
		for i := 0; i+1 < len(cur); i += 2 {
			backing = append(backing, hashNode(&cur[i], &cur[i+1]))
		}
		if len(cur)%2 == 1 {
			backing = append(backing, cur[len(cur)-1])
		}
		cur = backing[start:len(backing):len(backing)]
		levels = append(levels, cur)
	}
	return levels
}

func hashLeaf(b []byte) [32]byte {
	buf := make([]byte, 0, 1+len(b))
	return sha256.Sum256(append(append(buf, leafPrefix), b...))
}

func hashNode(left, right *[32]byte) [32]byte {
	var buf [1 + 2*sha256.Size]byte
	buf[0] = nodePrefix
	copy(buf[1:], left[:])
	copy(buf[1+sha256.Size:], right[:])
	return sha256.Sum256(buf[:])
}

// Root is the tree's Merkle Tree Hash; for no leaves, SHA-256 of nothing.
func (t *Tree) Root() [32]byte {
	if len(t.levels) == 0 {
		return sha256.Sum256(nil)
	}
	return t.levels[len(t.levels)-1][0]
}

// Len is the number of leaves.
func (t *Tree) Len() int { return len(t.leaves) }

// Proof is the inclusion proof of the leaf at index: its RFC 6962 audit
// path (section 2.1.1), sibling hashes from the leaf up.
func (t *Tree) Proof(index int) (InclusionProof, error) {
	if index < 0 || index >= len(t.leaves) {
		return InclusionProof{}, fmt.Errorf("proofs: leaf index %d outside tree of %d leaves", index, len(t.leaves))
	}
	return InclusionProof{
		Index: uint64(index),
		Size:  uint64(len(t.leaves)),
		Leaf:  t.leaves[index],
		Path:  auditPath(t.levels, index),
	}, nil
}

// auditPath is the RFC 6962 audit path of the leaf at index, which the
// caller has checked is in the tree: sibling hashes from the leaf up.
func auditPath(levels [][][32]byte, index int) [][]byte {
	path := make([][]byte, 0, len(levels)-1)
	i := index
	for _, level := range levels[:len(levels)-1] {
		// A node without a sibling is carried up unchanged and adds
		// nothing to the path.
		if s := i ^ 1; s < len(level) {
			path = append(path, append([]byte(nil), level[s][:]...))
		}
		i >>= 1
	}
	return path
}

// InclusionProof shows that Leaf is the leaf at Index of a tree of Size
// leaves whose root the verifier knows.
type InclusionProof struct {
	Index uint64   `json:"index"`
	Size  uint64   `json:"size"` // number of leaves
	Leaf  cid.Cid  `json:"leaf"`
	Path  [][]byte `json:"path"` // sibling hashes from the leaf up
}

// Verify recomputes the root from the leaf and the path with the algorithm
// of RFC 9162 section 2.1.3.2 and compares it with root. A proof that does
// not hold returns an error wrapping ErrBadProof with the reason.
func (p InclusionProof) Verify(root [32]byte) error {
	return VerifyPath(root, hashLeaf(p.Leaf.Bytes()), p.Index, p.Size, p.Path)
}

// LeafHash is the RFC 6962 hash of a leaf of bytes b: SHA-256(0x00 || b).
func LeafHash(b []byte) [32]byte { return hashLeaf(b) }

// HashTree is the same RFC 6962 tree as Tree over leaves that are not
// CIDs, given by their LeafHash (compute commits the rows of a matrix
// product with it).
type HashTree struct {
	size   int
	levels [][][32]byte
}

// NewHashTree builds the tree over leaf hashes, in their order. It keeps
// the slice.
func NewHashTree(leaves [][32]byte) *HashTree {
	return &HashTree{size: len(leaves), levels: buildLevels(leaves)}
}

// Root is the tree's Merkle Tree Hash; for no leaves, SHA-256 of nothing.
func (t *HashTree) Root() [32]byte {
	if len(t.levels) == 0 {
		return sha256.Sum256(nil)
	}
	return t.levels[len(t.levels)-1][0]
}

// Len is the number of leaves.
func (t *HashTree) Len() int { return t.size }

// Path is the audit path of the leaf at index, for VerifyPath.
func (t *HashTree) Path(index int) ([][]byte, error) {
	if index < 0 || index >= t.size {
		return nil, fmt.Errorf("proofs: leaf index %d outside tree of %d leaves", index, t.size)
	}
	return auditPath(t.levels, index), nil
}

// VerifyPath checks that path leads from leaf, a LeafHash, at index of a
// tree of size leaves to root. A path that does not returns an error
// wrapping ErrBadProof with the reason.
func VerifyPath(root, leaf [32]byte, index, size uint64, path [][]byte) error {
	got, err := rootFromPath(leaf, index, size, path)
	if err != nil {
		return err
	}
	if got != root {
		return fmt.Errorf("%w: leaf %d of %d does not lead to the root", ErrBadProof, index, size)
	}
	return nil
}

// rootFromPath is RFC 9162 section 2.1.3.2, steps 1 to 5 bar the final
// comparison with the root.
func rootFromPath(leaf [32]byte, index, size uint64, path [][]byte) ([32]byte, error) {
	if index >= size {
		return [32]byte{}, fmt.Errorf("%w: index %d outside tree of %d leaves", ErrBadProof, index, size)
	}
	fn, sn := index, size-1
	r := leaf
	for i, p := range path {
		if len(p) != sha256.Size {
			return [32]byte{}, fmt.Errorf("%w: path element %d is %d bytes, want %d", ErrBadProof, i, len(p), sha256.Size)
		}
		if sn == 0 {
			return [32]byte{}, fmt.Errorf("%w: path longer than a tree of %d leaves needs", ErrBadProof, size)
		}
		sib := (*[32]byte)(p)
		if fn&1 == 1 || fn == sn {
			r = hashNode(sib, &r)
			for fn&1 == 0 && fn != 0 {
				fn >>= 1
				sn >>= 1
			}
		} else {
			r = hashNode(&r, sib)
		}
		fn >>= 1
		sn >>= 1
	}
	if sn != 0 {
		return [32]byte{}, fmt.Errorf("%w: path shorter than a tree of %d leaves needs", ErrBadProof, size)
	}
	return r, nil
}
