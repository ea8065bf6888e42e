package storage

import (
	"errors"
	"fmt"
	"io"
	"math/bits"
	"sync"
)

// LeafProof is a leaf of a piece and the path from it to the root: Path[l]
// is the sibling at level l of the leaf's ancestor (Path[0] is the leaf's
// own sibling).
type LeafProof struct {
	Index uint64
	Leaf  [32]byte
	Path  [][32]byte
}

// ErrBadProof is wrapped by Verify's errors.
var ErrBadProof = errors.New("storage: bad leaf proof")

// proveBufs holds Prove's buffers: an edge proves 16 leaves a storage
// challenge, 4 KiB of data and hashes each, and the proof keeps none of
// it.
var proveBufs = sync.Pool{New: func() any { return new([]byte) }}

// Prove returns leaf index of the piece and its path to the root. It reads
// from data, the unpadded payload, only the 2^CacheHeight leaves around
// the leaf (2032 bytes), and takes the path above them from the tree.
// Prove does not judge the data: a proof built from damaged data simply
// fails Verify.
func (t *Tree) Prove(data io.ReaderAt, index uint64) (LeafProof, error) {
	if index >= t.Padded/LeafSize {
		return LeafProof{}, fmt.Errorf("storage: prove: leaf %d of a piece of %d leaves", index, t.Padded/LeafSize)
	}
	c := t.CacheHeight
	leaves := 1 << c
	sub := index >> c
	quadBytes := int64(leaves / 4 * quadPayload)
	off := int64(sub) * quadBytes
	bp := proveBufs.Get().(*[]byte)
	defer proveBufs.Put(bp)
	if n := int(quadBytes) + leaves*LeafSize; cap(*bp) < n {
		*bp = make([]byte, n)
	}
	buf := (*bp)[:int(quadBytes)+leaves*LeafSize]
	clear(buf)
	in, out := buf[:quadBytes], buf[quadBytes:]
	if n := min(quadBytes, t.Payload-off); n > 0 {
		if got, err := data.ReadAt(in[:n], off); got < int(n) {
			return LeafProof{}, fmt.Errorf("storage: prove leaf %d: read %d bytes at %d: %w", index, n, off, err)
		}
	}
	// Leaves in the zero padding pad to zero leaves like any zero bytes.
	padLeaves(out, in)

	p := LeafProof{Index: index, Leaf: [32]byte(out[(index%uint64(leaves))*LeafSize:]), Path: make([][32]byte, 0, t.Height())}
	i := int(index % uint64(leaves))
	for l := range c {
		p.Path = append(p.Path, [32]byte(out[(i^1)*LeafSize:]))
		hashLevel(out, leaves>>l)
		i >>= 1
	}
	for l := c; l < t.Height(); l++ {
		j := (index >> l) ^ 1
		p.Path = append(p.Path, [32]byte(t.level(l)[j*LeafSize:]))
	}
	return p, nil
}

// Verify checks that p proves a leaf of the piece with this root and
// padded size. Its errors wrap ErrBadProof and say what is wrong.
func Verify(root [32]byte, padded uint64, p LeafProof) error {
	if padded < quadPadded || padded > MaxPadded || bits.OnesCount64(padded) != 1 {
		return fmt.Errorf("%w: padded size %d is not a power of two from 128 to %d", ErrBadProof, padded, uint64(MaxPadded))
	}
	height := treeHeight(padded)
	if p.Index >= padded/LeafSize {
		return fmt.Errorf("%w: leaf %d of a piece of %d leaves", ErrBadProof, p.Index, padded/LeafSize)
	}
	if len(p.Path) != height {
		return fmt.Errorf("%w: path of %d nodes, want %d", ErrBadProof, len(p.Path), height)
	}
	if p.Leaf[31]&0xc0 != 0 {
		return fmt.Errorf("%w: leaf %d is not fr32-padded (top bits set)", ErrBadProof, p.Index)
	}
	var pair [2 * LeafSize]byte
	node := p.Leaf
	for l, sib := range p.Path {
		if p.Index>>l&1 == 0 {
			copy(pair[:LeafSize], node[:])
			copy(pair[LeafSize:], sib[:])
		} else {
			copy(pair[:LeafSize], sib[:])
			copy(pair[LeafSize:], node[:])
		}
		node = hashNode(pair[:])
	}
	if node != root {
		return fmt.Errorf("%w: leaf %d hashes to %x, not the root %x", ErrBadProof, p.Index, node, root)
	}
	return nil
}
