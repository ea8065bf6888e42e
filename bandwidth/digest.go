package bandwidth

import (
	"crypto/sha256"
	"crypto/subtle"
	"encoding/binary"
)

// foldSize is the width the Down bytes are folded into.
const foldSize = 4 << 10

// digestDomain separates a Down digest from every other hash.
const digestDomain = "aro/bandwidth/down-digest"

// downDigest is what an edge proves it received the Down bytes with, and
// what the keeper computes of the bytes it sent: the bytes XORed into a
// foldSize buffer at their offset modulo foldSize, then the SHA-256 of
// the domain, the byte count and the buffer.
//
// It need not be a cryptographic hash of the bytes, only a function the
// edge cannot compute without every one of them: the bytes are keystream
// of the keeper's secret, uniform and unknown to the edge, so each byte
// it lacks leaves the fold, and so the digest, as unknown as the byte
// (a stream delivers a prefix, so what a cheat lacks is a run, which
// covers every offset of the fold once it is foldSize long). The fold
// costs a fraction of SHA-256 over every byte, the largest cost of a
// probe after the transport's own (BenchmarkProbeLoopback).
type downDigest struct {
	fold [foldSize]byte
	n    uint64
}

// Write folds p in; it never fails.
func (d *downDigest) Write(p []byte) (int, error) {
	written := len(p)
	for len(p) > 0 {
		off := int(d.n % foldSize)
		k := subtle.XORBytes(d.fold[off:], d.fold[off:], p)
		p = p[k:]
		d.n += uint64(k)
	}
	return written, nil
}

// Sum returns the digest of the bytes written so far.
func (d *downDigest) Sum() []byte {
	h := sha256.New()
	h.Write([]byte(digestDomain))
	h.Write(binary.BigEndian.AppendUint64(nil, d.n))
	h.Write(d.fold[:])
	return h.Sum(nil)
}
