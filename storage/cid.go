package storage

import (
	"errors"
	"fmt"

	"github.com/ipfs/go-cid"
	"github.com/multiformats/go-multihash"
)

// The multicodec codes of a Filecoin piece CID, as go-fil-commcid names
// them (FilCommitmentUnsealed, SHA2_256_TRUNC254_PADDED).
const (
	codecUnsealed   = 0xf101 // fil-commitment-unsealed
	multihashTrunc  = 0x1012 // sha2-256-trunc254-padded
	multihashPrefix = 3 + 1  // varint 0x1012 (3 bytes) and length 32 (1 byte)
)

// ErrNotPieceCID is wrapped by RootOf's errors.
var ErrNotPieceCID = errors.New("storage: not a piece CID")

// PieceCID returns the Filecoin piece CID of a commitment: CIDv1, codec
// fil-commitment-unsealed, multihash sha2-256-trunc254-padded.
func PieceCID(root [32]byte) cid.Cid {
	mh := make([]byte, 0, multihashPrefix+len(root))
	mh = append(mh, 0x92, 0x20, 0x20) // varint of 0x1012 then length 32
	mh = append(mh, root[:]...)
	return cid.NewCidV1(codecUnsealed, mh)
}

// RootOf returns the commitment a piece CID names. It refuses CIDs of
// other codecs or multihashes, and digests that are not 254-bit.
func RootOf(piece cid.Cid) ([32]byte, error) {
	if !piece.Defined() {
		return [32]byte{}, fmt.Errorf("%w: undefined CID", ErrNotPieceCID)
	}
	p := piece.Prefix()
	if p.Version != 1 || p.Codec != codecUnsealed {
		return [32]byte{}, fmt.Errorf("%w: %s is CIDv%d with codec 0x%x, want CIDv1 fil-commitment-unsealed", ErrNotPieceCID, piece, p.Version, p.Codec)
	}
	dec, err := multihash.Decode(piece.Hash())
	if err != nil {
		return [32]byte{}, fmt.Errorf("%w: %s: %w", ErrNotPieceCID, piece, err)
	}
	if dec.Code != multihashTrunc || len(dec.Digest) != 32 {
		return [32]byte{}, fmt.Errorf("%w: %s has multihash 0x%x of %d bytes, want sha2-256-trunc254-padded of 32", ErrNotPieceCID, piece, dec.Code, len(dec.Digest))
	}
	if dec.Digest[31]&0xc0 != 0 {
		return [32]byte{}, fmt.Errorf("%w: %s: digest is not truncated to 254 bits", ErrNotPieceCID, piece)
	}
	return [32]byte(dec.Digest), nil
}
