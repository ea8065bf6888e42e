package compute

import (
	"crypto/sha256"
	"encoding/binary"
	"fmt"
	"unsafe"

	"github.com/aead/chacha20/chacha"

	"github.com/aropeer/aropeer/proofs"
)

// seedDomain separates the matrix seed from every other hash of a
// challenge seed.
const seedDomain = "aro/compute/matrices"

// NonceSize is the size of the keeper's nonce in a task.
const NonceSize = 32

// MatrixSeed is the seed of a check's matrices: SHA-256(seedDomain ||
// challenge seed || nonce). The nonce is the keeper's, drawn when it
// sends the task: the challenge seed alone is public from the round's
// beacon on, and an edge could compute C before the keeper asks and beat
// any deadline.
func MatrixSeed(challengeSeed, nonce []byte) [32]byte {
	h := sha256.New()
	h.Write([]byte(seedDomain))
	h.Write(challengeSeed)
	h.Write(nonce)
	return [32]byte(h.Sum(nil))
}

// keystream is the ChaCha20 (RFC 8439) keystream of seed, with seed as
// the key and a zero nonce, from byte off, which must be a multiple of
// 64. A is its first n*n bytes, B the next n*n, each row-major and read
// as int8.
func keystream(seed [32]byte, off int, dst []byte) {
	c := cipherAt(seed, off)
	clear(dst)
	c.XORKeyStream(dst, dst)
}

// cipherAt is the cipher of keystream, at byte off (a multiple of 64).
func cipherAt(seed [32]byte, off int) *chacha.Cipher {
	var nonce [12]byte
	c, err := chacha.NewCipher(nonce[:], seed[:], 20)
	if err != nil {
		panic("compute: chacha20 with a 32-byte key and a 12-byte nonce: " + err.Error())
	}
	c.SetCounter(uint64(off / 64))
	return c
}

// Matrices returns A and B of size n for seed: 2n^2 bytes of ChaCha20
// keystream (key seed, zero nonce, counter 0), A then B, each row-major
// and read as int8. Both sides, and any worker, generate them alike.
func Matrices(n int, seed [32]byte) (a, b []int8) {
	buf := make([]byte, 2*n*n)
	keystream(seed, 0, buf)
	ab := asInt8(buf)
	return ab[: n*n : n*n], ab[n*n:]
}

// rowOfA returns row i of A without generating the rest of A when the
// row starts on a keystream block (n a multiple of 64, as Params give).
func rowOfA(n int, seed [32]byte, i int) []int8 {
	off := i * n
	skip := off % 64
	buf := make([]byte, skip+n)
	keystream(seed, off-skip, buf)
	return asInt8(buf[skip:])
}

// bBlock is how many bytes of B rowsOfB generates at a time: enough for
// the cipher's wide path, little enough to stay in cache until used.
const bBlock = 32 << 10

// rowsOfB calls fn with each row of B in turn, generating B a block of
// rows at a time: the keeper, which needs each row once, never holds B
// whole (n^2 bytes, 256 MiB at maxN). fn must not keep row.
func rowsOfB(n int, seed [32]byte, fn func(row []int8)) {
	off := n * n
	c := cipherAt(seed, off-off%64)
	if skip := off % 64; skip > 0 {
		var pad [64]byte
		c.XORKeyStream(pad[:skip], pad[:skip])
	}
	per := max(1, bBlock/n)
	buf := make([]byte, per*n)
	for k0 := 0; k0 < n; k0 += per {
		blk := buf[:min(per, n-k0)*n]
		clear(blk)
		c.XORKeyStream(blk, blk)
		rows := asInt8(blk)
		for k := 0; k < len(rows); k += n {
			fn(rows[k : k+n])
		}
	}
}

// asInt8 reads b as int8, without a copy: a copy of the keystream would
// cost the keeper as much as generating it.
func asInt8(b []byte) []int8 {
	return unsafe.Slice((*int8)(unsafe.Pointer(unsafe.SliceData(b))), len(b))
}

// Product is C = A·B of size n, exact in int32, row-major.
type Product struct {
	N int
	C []int32
}

// Row returns row i of C.
func (p *Product) Row(i int) []int32 { return p.C[i*p.N : (i+1)*p.N] }

// check returns an error when p is not a product of size n.
func (p *Product) check(n int) error {
	if p == nil || p.N != n || len(p.C) != n*n {
		return fmt.Errorf("compute: executor returned no product of size %d", n)
	}
	return nil
}

// rowBytes encodes a row as a leaf: n little-endian int32.
func rowBytes(row []int32, dst []byte) []byte {
	dst = dst[:0]
	for _, x := range row {
		dst = binary.LittleEndian.AppendUint32(dst, uint32(x))
	}
	return dst
}

// decodeRow decodes a leaf of n int32.
func decodeRow(b []byte, n int) ([]int32, error) {
	if len(b) != 4*n {
		return nil, fmt.Errorf("row of %d bytes, want %d", len(b), 4*n)
	}
	row := make([]int32, n)
	for j := range row {
		row[j] = int32(binary.LittleEndian.Uint32(b[4*j:]))
	}
	return row, nil
}

// commit builds the RFC 6962 tree over the rows of p (leaf i is row i as
// n little-endian int32): proofs.HashTree, which is also what receipts'
// batches use, so that there is one Merkle tree in the module.
func commit(p *Product) *proofs.HashTree {
	leaves := make([][32]byte, p.N)
	buf := make([]byte, 0, 4*p.N)
	for i := range leaves {
		buf = rowBytes(p.Row(i), buf)
		leaves[i] = proofs.LeafHash(buf)
	}
	return proofs.NewHashTree(leaves)
}
