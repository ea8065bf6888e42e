package storage

import (
	"errors"
	"testing"

	"github.com/ipfs/go-cid"
	"github.com/multiformats/go-multihash"
)

func TestPieceCIDRoundTrip(t *testing.T) {
	// A piece CID Lotus computed (random.txt, 1024 bytes).
	const lotus = "baga6ea4seaqjvo24o24lunggsgxp2ykw2nl6ub5oshkgyccaiscbiu7dixiwiga"
	c, err := cid.Decode(lotus)
	if err != nil {
		t.Fatal(err)
	}
	root, err := RootOf(c)
	if err != nil {
		t.Fatal(err)
	}
	if got := PieceCID(root); !got.Equals(c) || got.String() != lotus {
		t.Fatalf("PieceCID(RootOf(%s)) = %s", lotus, got)
	}
	if p := c.Prefix(); p.Codec != codecUnsealed || p.MhType != multihash.SHA2_256_TRUNC254_PADDED {
		t.Fatalf("Lotus's CID has codec 0x%x multihash 0x%x", p.Codec, p.MhType)
	}
}

func TestRootOfRefuses(t *testing.T) {
	var root [32]byte
	root[0] = 1
	mh := func(code uint64, digest []byte) multihash.Multihash {
		m, err := multihash.Encode(digest, code)
		if err != nil {
			t.Fatal(err)
		}
		return m
	}
	topBits := root
	topBits[31] = 0x80
	for name, c := range map[string]cid.Cid{
		"undefined":        cid.Undef,
		"dag-cbor":         cid.NewCidV1(cid.DagCBOR, mh(multihashTrunc, root[:])),
		"sealed":           cid.NewCidV1(cid.FilCommitmentSealed, mh(multihashTrunc, root[:])),
		"sha2-256":         cid.NewCidV1(codecUnsealed, mh(multihash.SHA2_256, root[:])),
		"short digest":     cid.NewCidV1(codecUnsealed, mh(multihashTrunc, root[:31])),
		"untruncated root": cid.NewCidV1(codecUnsealed, mh(multihashTrunc, topBits[:])),
		"CIDv0":            cid.NewCidV0(mh(multihash.SHA2_256, root[:])),
	} {
		if _, err := RootOf(c); !errors.Is(err, ErrNotPieceCID) {
			t.Errorf("%s: RootOf(%s) = %v, want ErrNotPieceCID", name, c, err)
		}
	}
}
