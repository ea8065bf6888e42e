// Package storage is the storage resource: pieces committed exactly as
// Filecoin commits them, so that a piece CID here is a Filecoin piece CID,
// and leaf proofs against that commitment.
//
// A piece of payload bytes is fr32-padded (each 127 bytes become four
// 32-byte leaves of 254 data bits each), zero-padded to a power-of-two
// number of leaves, and hashed in a binary tree whose nodes are SHA-256 of
// the two children truncated to 254 bits. The root is the commitment.
package storage

import (
	"crypto/sha256"
	"encoding/binary"
	"errors"
	"fmt"
	"io"
	"math/bits"
	"runtime"
	"sync"
)

const (
	// LeafSize is the size of a leaf of the piece tree: 254 data bits and
	// two zero bits.
	LeafSize = 32
	// MinPayload is the smallest payload Filecoin defines a commitment for.
	MinPayload = 65
	// MaxPadded is the largest padded piece Filecoin's proofs accept (a
	// 64 GiB sector), so a tree is at most 31 levels high.
	MaxPadded = 64 << 30
	// MaxPayload is the largest payload: MaxPadded before fr32 padding.
	MaxPayload = MaxPadded / 128 * 127
	// CacheHeight is the lowest level a Tree keeps. Levels at and above it
	// take about 2*32 bytes per 2^CacheHeight leaves, 1/32 of the padded
	// piece; a proof rereads 2^CacheHeight leaves (2032 payload bytes).
	CacheHeight = 6
)

// ErrPayloadSize is wrapped by the errors for payloads Filecoin cannot
// commit: under MinPayload or over MaxPayload bytes.
var ErrPayloadSize = errors.New("storage: payload size out of range")

// Sizes of the chunks Commit hashes on one worker: 2^15 leaves, 1 MiB
// padded, which keeps a worker's leaves in its core's L2 cache while
// making the per-chunk overhead negligible.
const (
	chunkHeight = 15
	quadPayload = 127 // payload bytes of four leaves
	quadPadded  = 128
)

// PaddedSize returns the padded size of a piece of payload bytes, by
// Filecoin's rule: the payload is rounded up to 127*2^k bytes, which pad
// to 128*2^k.
func PaddedSize(payload int64) (uint64, error) {
	if payload < MinPayload {
		return 0, fmt.Errorf("%w: a piece of %d bytes is under Filecoin's minimum of %d bytes", ErrPayloadSize, payload, MinPayload)
	}
	if payload > MaxPayload {
		return 0, fmt.Errorf("%w: a piece of %d bytes is over Filecoin's maximum of %d bytes", ErrPayloadSize, payload, int64(MaxPayload))
	}
	quads := (uint64(payload) + quadPayload - 1) / quadPayload
	if quads&(quads-1) != 0 {
		quads = 1 << bits.Len64(quads)
	}
	return quads * quadPadded, nil
}

// treeHeight is the number of levels above the leaves of a padded piece.
func treeHeight(padded uint64) int { return bits.TrailingZeros64(padded / LeafSize) }

// cacheHeightFor returns the cache height of a tree of the given height;
// every tree is at least 2 high (128 padded bytes, 4 leaves).
func cacheHeightFor(height int) int { return min(CacheHeight, height) }

// zeroHashes[h] is the root of a subtree of height h whose leaves are all
// zero: the padding of a piece is hashed once here, not per piece.
var zeroHashes = func() (z [treeMaxHeight + 1][LeafSize]byte) {
	var pair [2 * LeafSize]byte
	for h := 1; h <= treeMaxHeight; h++ {
		copy(pair[:LeafSize], z[h-1][:])
		copy(pair[LeafSize:], z[h-1][:])
		z[h] = hashNode(pair[:])
	}
	return z
}()

// treeMaxHeight is the height of a MaxPadded tree.
const treeMaxHeight = 31

// hashNode is a node of the tree: SHA-256 of the 64 bytes of its two
// children, truncated to 254 bits.
func hashNode(pair []byte) [LeafSize]byte {
	h := sha256.Sum256(pair)
	h[31] &= 0x3f
	return h
}

// hashLevel replaces the first n/2 nodes of buf by the parents of its
// first n nodes (n even). Writing parent i over child i is safe: children
// 2i and 2i+1 have been read and later children lie above index i.
func hashLevel(buf []byte, n int) {
	for i := 0; i < n/2; i++ {
		// An array store, not copy(): no call to memmove per node.
		*(*[LeafSize]byte)(buf[LeafSize*i:]) = hashNode(buf[2*LeafSize*i : 2*LeafSize*(i+1)])
	}
}

// fr32 pads one 127-byte quad into four 32-byte leaves. The payload is a
// little-endian bit stream cut into 254-bit pieces; leaf j starts at bit
// 254j, so the leaves are the 32 bytes from bytes 0, 31, 63 and 95
// shifted right by 0, 6, 4 and 2 bits, with their top two bits cleared.
func fr32(out, in []byte) {
	_ = in[quadPayload-1]
	_ = out[quadPadded-1]
	le := binary.LittleEndian
	// Leaf 0: bytes 0..31, no shift.
	le.PutUint64(out[0:], le.Uint64(in[0:]))
	le.PutUint64(out[8:], le.Uint64(in[8:]))
	le.PutUint64(out[16:], le.Uint64(in[16:]))
	le.PutUint64(out[24:], le.Uint64(in[24:])&(1<<62-1))
	// Leaf 1: from byte 31, shifted right by 6.
	le.PutUint64(out[32:], le.Uint64(in[31:])>>6|uint64(in[39])<<58)
	le.PutUint64(out[40:], le.Uint64(in[39:])>>6|uint64(in[47])<<58)
	le.PutUint64(out[48:], le.Uint64(in[47:])>>6|uint64(in[55])<<58)
	le.PutUint64(out[56:], (le.Uint64(in[55:])>>6|uint64(in[63])<<58)&(1<<62-1))
	// Leaf 2: from byte 63, shifted right by 4.
	le.PutUint64(out[64:], le.Uint64(in[63:])>>4|uint64(in[71])<<60)
	le.PutUint64(out[72:], le.Uint64(in[71:])>>4|uint64(in[79])<<60)
	le.PutUint64(out[80:], le.Uint64(in[79:])>>4|uint64(in[87])<<60)
	le.PutUint64(out[88:], (le.Uint64(in[87:])>>4|uint64(in[95])<<60)&(1<<62-1))
	// Leaf 3: from byte 95, shifted right by 2; its 254 bits end the quad.
	le.PutUint64(out[96:], le.Uint64(in[95:])>>2|uint64(in[103])<<62)
	le.PutUint64(out[104:], le.Uint64(in[103:])>>2|uint64(in[111])<<62)
	le.PutUint64(out[112:], le.Uint64(in[111:])>>2|uint64(in[119])<<62)
	le.PutUint64(out[120:], le.Uint64(in[119:])>>2)
}

// padLeaves fr32-pads data into leaves and returns the number of leaves
// written: four per 127 bytes, the last quad zero-padded.
func padLeaves(leaves, data []byte) int {
	q := 0
	for ; (q+1)*quadPayload <= len(data); q++ {
		fr32(leaves[q*quadPadded:], data[q*quadPayload:])
	}
	if rest := data[q*quadPayload:]; len(rest) > 0 {
		var last [quadPayload]byte
		copy(last[:], rest)
		fr32(leaves[q*quadPadded:], last[:])
		q++
	}
	return 4 * q
}

// hashSubtree hashes the n leaves at the start of buf (n > 0) up to the
// given height in place, as the left part of a subtree whose other leaves
// are zero. keep, if not nil, is called after each level l >= 1 with the
// nodes of that level that cover data; the nodes after them are zero
// subtrees.
func hashSubtree(buf []byte, n, height int, keep func(level int, nodes []byte)) {
	for l := 1; l <= height; l++ {
		if n%2 == 1 {
			// The right sibling of the last node is a zero subtree.
			copy(buf[n*LeafSize:], zeroHashes[l-1][:])
			n++
		}
		hashLevel(buf, n)
		n /= 2
		if keep != nil {
			keep(l, buf[:n*LeafSize])
		}
	}
}

// Commit reads exactly payload bytes from r, once, in chunks of 1 MiB of
// padded data, and returns the piece's tree. Chunks are padded and hashed
// on workers goroutines (0 means GOMAXPROCS), each reading its next chunk
// while the others hash theirs; the zero padding of the piece costs no
// hashing. progress, if not nil, is called after each chunk read with the
// number of bytes read so far, ending with payload; calls do not overlap.
func Commit(r io.Reader, payload int64, workers int, progress func(done int64)) (*Tree, error) {
	padded, err := PaddedSize(payload)
	if err != nil {
		return nil, err
	}
	if workers <= 0 {
		workers = runtime.GOMAXPROCS(0)
	}
	t := newTree(payload, padded)
	height, cache := t.Height(), t.CacheHeight
	ch := min(chunkHeight, height)
	chunkLeaves := 1 << ch
	chunkBytes := int64(chunkLeaves / 4 * quadPayload)
	dataChunks := int((payload + chunkBytes - 1) / chunkBytes)
	workers = min(workers, dataChunks)

	// Each worker reads its next chunk itself, in turn under mu, so the
	// chunk is still in its core's cache when it pads and hashes it; a
	// separate reader goroutine handing chunks over measured 5% slower on
	// two cores.
	var (
		mu      sync.Mutex
		next    int   // next chunk to read
		done    int64 // bytes read
		readErr error
		wg      sync.WaitGroup
	)
	read := func(buf []byte) (index int, data []byte, ok bool) {
		mu.Lock()
		defer mu.Unlock()
		if readErr != nil || next == dataChunks {
			return 0, nil, false
		}
		n := min(chunkBytes, payload-done)
		if _, err := io.ReadFull(r, buf[:n]); err != nil {
			readErr = err
			return 0, nil, false
		}
		done += n
		next++
		if progress != nil {
			progress(done)
		}
		return next - 1, buf[:n], true
	}
	for range workers {
		wg.Go(func() {
			buf := make([]byte, chunkBytes)
			leaves := make([]byte, chunkLeaves*LeafSize)
			for {
				i, data, ok := read(buf)
				if !ok {
					return
				}
				n := padLeaves(leaves, data)
				hashSubtree(leaves, n, ch, func(l int, nodes []byte) {
					if l >= cache {
						t.setChunk(l, i<<(ch-l), 1<<(ch-l), nodes)
					}
				})
			}
		})
	}
	wg.Wait()
	if err := readErr; errors.Is(err, io.EOF) || errors.Is(err, io.ErrUnexpectedEOF) {
		return nil, fmt.Errorf("storage: commit: payload ended after %d of %d bytes: %w", done, payload, io.ErrUnexpectedEOF)
	} else if err != nil {
		return nil, fmt.Errorf("storage: commit: read after %d of %d bytes: %w", done, payload, err)
	}

	// Chunks wholly in the padding are zero subtrees; the levels above
	// the chunks are hashed here, from the chunks' roots.
	chunks := 1 << (height - ch)
	for l := cache; l <= ch; l++ {
		per := 1 << (ch - l)
		t.setChunk(l, dataChunks*per, (chunks-dataChunks)*per, nil)
	}
	t.hashAbove(ch)
	return t, nil
}
