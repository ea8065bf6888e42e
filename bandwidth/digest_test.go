package bandwidth

import (
	"bytes"
	"math/rand/v2"
	"testing"
)

// TestDownDigestSplits: the edge reads the Down bytes in whatever pieces
// the transport delivers, the keeper writes them in chunks; the digest
// must not depend on the pieces.
func TestDownDigestSplits(t *testing.T) {
	data := make([]byte, 3*foldSize+1234)
	NewKeystream([]byte("seed"), Down, 0).Read(data)
	var whole downDigest
	whole.Write(data)
	want := whole.Sum()
	rng := rand.New(rand.NewPCG(1, 2))
	for range 50 {
		var d downDigest
		for p := data; len(p) > 0; {
			k := min(len(p), 1+rng.IntN(2*foldSize))
			d.Write(p[:k])
			p = p[k:]
		}
		if got := d.Sum(); !bytes.Equal(got, want) {
			t.Fatalf("digest in pieces %x, whole %x", got, want)
		}
	}
}

// TestDownDigestCatchesMissingBytes: an edge that lacks bytes, whether
// one flipped, a run cut short or a run replaced by zeros, reports a
// digest that differs from the keeper's.
func TestDownDigestCatchesMissingBytes(t *testing.T) {
	data := make([]byte, 5*foldSize)
	NewKeystream([]byte("seed"), Down, 0).Read(data)
	sum := func(p []byte) []byte {
		var d downDigest
		d.Write(p)
		return d.Sum()
	}
	want := sum(data)
	flipped := bytes.Clone(data)
	flipped[3*foldSize+7] ^= 1
	zeroed := bytes.Clone(data)
	clear(zeroed[foldSize : 2*foldSize])
	for name, p := range map[string][]byte{
		"one bit flipped":       flipped,
		"last byte missing":     data[:len(data)-1],
		"a fold's run zeroed":   zeroed,
		"a run of zeros sent":   make([]byte, len(data)),
		"the fold of the first": data[:foldSize],
	} {
		if bytes.Equal(sum(p), want) {
			t.Errorf("%s: same digest as the bytes sent", name)
		}
	}
}
