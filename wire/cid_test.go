package wire

import (
	"bytes"
	"crypto/sha256"
	"strings"
	"testing"

	"github.com/ipfs/go-cid"
	"github.com/multiformats/go-multihash"
)

func TestCIDOfKnownValue(t *testing.T) {
	b, err := Marshal(map[string]string{"hello": "world"})
	if err != nil {
		t.Fatal(err)
	}
	if want := []byte("\xa1\x65hello\x65world"); !bytes.Equal(b, want) {
		t.Fatalf("Marshal = %x, want %x", b, want)
	}
	c := CIDOf(b)

	// Computed outside Go (Python hashlib and base32) from the bytes above.
	const golden = "bafyreidykglsfhoixmivffc5uwhcgshx4j465xwqntbmu43nb2dzqwfvae"
	if c.String() != golden {
		t.Errorf("CIDOf = %s, want %s", c, golden)
	}

	// And by hand: version 1, codec 0x71, sha2-256 (0x12), 32 bytes, digest.
	sum := sha256.Sum256(b)
	want := append([]byte{0x01, 0x71, 0x12, 0x20}, sum[:]...)
	if !bytes.Equal(c.Bytes(), want) {
		t.Errorf("CIDOf bytes = %x, want %x", c.Bytes(), want)
	}
	mh, err := multihash.Sum(b, multihash.SHA2_256, -1)
	if err != nil {
		t.Fatal(err)
	}
	if !c.Equals(cid.NewCidV1(cid.DagCBOR, mh)) {
		t.Errorf("CIDOf differs from go-multihash's")
	}
	if !strings.HasPrefix(c.String(), "bafyrei") {
		t.Errorf("CIDOf = %s, want a bafyrei... CID", c)
	}
	p := c.Prefix()
	if p.Version != 1 || p.Codec != cid.DagCBOR || p.MhType != multihash.SHA2_256 || p.MhLength != 32 {
		t.Errorf("prefix = %+v", p)
	}
}

func TestMarshalCID(t *testing.T) {
	m := sample(t)
	b, c, err := MarshalCID(m)
	if err != nil {
		t.Fatal(err)
	}
	if !c.Equals(CIDOf(b)) {
		t.Errorf("MarshalCID's CID does not name its bytes")
	}
	m.Round++
	_, c2, err := MarshalCID(m)
	if err != nil {
		t.Fatal(err)
	}
	if c.Equals(c2) {
		t.Errorf("different messages share CID %s", c)
	}
	if _, _, err := MarshalCID(make(chan int)); err == nil {
		t.Error("MarshalCID of a channel succeeded")
	}
}
