package wire

import (
	"crypto/sha256"

	"github.com/ipfs/go-cid"
	"github.com/multiformats/go-multihash"
)

// CIDOf names canonical CBOR bytes: CIDv1, codec dag-cbor, multihash
// sha2-256 of the bytes. It does not check that b is canonical; Marshal and
// Unmarshal ensure that.
func CIDOf(b []byte) cid.Cid {
	sum := sha256.Sum256(b)
	// A sha2-256 multihash is <code 0x12><length 0x20><digest>; both
	// prefixes fit in one varint byte, so it is built here rather than
	// through multihash.Encode, whose error could never happen.
	mh := make([]byte, 0, 2+sha256.Size)
	mh = append(mh, multihash.SHA2_256, sha256.Size)
	mh = append(mh, sum[:]...)
	return cid.NewCidV1(cid.DagCBOR, mh)
}

// MarshalCID returns the canonical CBOR encoding of v and its CID.
func MarshalCID(v any) ([]byte, cid.Cid, error) {
	b, err := Marshal(v)
	if err != nil {
		return nil, cid.Undef, err
	}
	return b, CIDOf(b), nil
}
