package storage

import (
	"bytes"
	"encoding/binary"
	"errors"
	"fmt"
	"hash/crc32"

	"github.com/ipfs/go-cid"
)

// Tree holds the upper levels of a piece's tree, from CacheHeight up to
// the root; the levels below are recomputed from the payload when a proof
// needs them. A Tree is not modified after Commit or UnmarshalBinary
// returns it, and is then safe for concurrent use.
type Tree struct {
	Payload     int64  // unpadded bytes
	Padded      uint64 // padded size, a power of two
	CacheHeight int    // lowest level held; levels[0] is this level
	levels      [][]byte
}

func newTree(payload int64, padded uint64) *Tree {
	height := treeHeight(padded)
	t := &Tree{Payload: payload, Padded: padded, CacheHeight: cacheHeightFor(height)}
	leaves := padded / LeafSize
	for l := t.CacheHeight; l <= height; l++ {
		t.levels = append(t.levels, make([]byte, (leaves>>l)*LeafSize))
	}
	return t
}

// Height is the number of levels above the leaves.
func (t *Tree) Height() int { return treeHeight(t.Padded) }

// Root returns the piece commitment.
func (t *Tree) Root() [32]byte {
	return [32]byte(t.level(t.Height()))
}

// CID returns the piece CID of the commitment.
func (t *Tree) CID() cid.Cid { return PieceCID(t.Root()) }

// level returns the nodes at height l >= CacheHeight, 32 bytes each.
func (t *Tree) level(l int) []byte { return t.levels[l-t.CacheHeight] }

// setChunk writes nodes at level l from node index start and fills the
// rest of count nodes with zero subtrees.
func (t *Tree) setChunk(l, start, count int, nodes []byte) {
	lvl := t.level(l)[start*LeafSize : (start+count)*LeafSize]
	n := copy(lvl, nodes)
	for ; n < len(lvl); n += LeafSize {
		copy(lvl[n:], zeroHashes[l][:])
	}
}

// hashAbove computes the levels above level l from level l.
func (t *Tree) hashAbove(l int) {
	for ; l < t.Height(); l++ {
		below, lvl := t.level(l), t.level(l+1)
		for i := range len(lvl) / LeafSize {
			h := hashNode(below[2*LeafSize*i : 2*LeafSize*(i+1)])
			copy(lvl[LeafSize*i:], h[:])
		}
	}
}

// The cache file: a header, the nodes at CacheHeight, and a CRC-32C of
// all that precedes it. Only the lowest kept level is stored, half of the
// tree's memory; the levels above are rehashed on load, which also makes
// every accepted file a consistent tree.
//
//	magic "aroptree" | version 1 | payload u64 | padded u64 | cache height u8 |
//	root [32] | nodes [padded/32 >> cache height][32] | crc32c u32
const (
	treeMagic   = "aroptree"
	treeVersion = 1
	treeHeader  = len(treeMagic) + 1 + 8 + 8 + 1 + 32
)

var castagnoli = crc32.MakeTable(crc32.Castagnoli)

// ErrBadTree is wrapped by the errors of UnmarshalBinary.
var ErrBadTree = errors.New("storage: bad tree cache")

// MarshalBinary encodes the tree as a cache file.
func (t *Tree) MarshalBinary() ([]byte, error) {
	low := t.levels[0]
	b := make([]byte, 0, treeHeader+len(low)+4)
	b = append(b, treeMagic...)
	b = append(b, treeVersion)
	b = binary.BigEndian.AppendUint64(b, uint64(t.Payload))
	b = binary.BigEndian.AppendUint64(b, t.Padded)
	b = append(b, byte(t.CacheHeight))
	root := t.Root()
	b = append(b, root[:]...)
	b = append(b, low...)
	return binary.BigEndian.AppendUint32(b, crc32.Checksum(b, castagnoli)), nil
}

// UnmarshalBinary decodes a cache file written by MarshalBinary. It
// checks the header against Filecoin's size rules, the length, the
// checksum, and that the stored nodes hash to the stored root; on error t
// is unchanged.
func (t *Tree) UnmarshalBinary(b []byte) error {
	if len(b) < treeHeader+LeafSize+4 {
		return fmt.Errorf("%w: %d bytes is too short", ErrBadTree, len(b))
	}
	if string(b[:len(treeMagic)]) != treeMagic || b[len(treeMagic)] != treeVersion {
		return fmt.Errorf("%w: not a version %d tree file", ErrBadTree, treeVersion)
	}
	h := b[len(treeMagic)+1:]
	payload := int64(binary.BigEndian.Uint64(h))
	padded := binary.BigEndian.Uint64(h[8:])
	cacheHeight := int(h[16])
	root := [32]byte(h[17:49])
	want, err := PaddedSize(payload)
	if err != nil {
		return fmt.Errorf("%w: %w", ErrBadTree, err)
	}
	if padded != want {
		return fmt.Errorf("%w: padded size %d, want %d for a payload of %d bytes", ErrBadTree, padded, want, payload)
	}
	t2 := newTree(payload, padded)
	if cacheHeight != t2.CacheHeight {
		return fmt.Errorf("%w: cache height %d, want %d", ErrBadTree, cacheHeight, t2.CacheHeight)
	}
	low := t2.levels[0]
	if len(b) != treeHeader+len(low)+4 {
		return fmt.Errorf("%w: %d bytes, want %d", ErrBadTree, len(b), treeHeader+len(low)+4)
	}
	body := b[:len(b)-4]
	if crc32.Checksum(body, castagnoli) != binary.BigEndian.Uint32(b[len(body):]) {
		return fmt.Errorf("%w: checksum mismatch", ErrBadTree)
	}
	copy(low, body[treeHeader:])
	t2.hashAbove(t2.CacheHeight)
	if got := t2.Root(); !bytes.Equal(got[:], root[:]) {
		return fmt.Errorf("%w: nodes hash to %x, not the stored root %x", ErrBadTree, got, root)
	}
	*t = *t2
	return nil
}
