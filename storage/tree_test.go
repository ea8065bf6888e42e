package storage

import (
	"bytes"
	"encoding/binary"
	"errors"
	"hash/crc32"
	"testing"
)

func TestTreeRoundTrip(t *testing.T) {
	for _, n := range []int{65, 5000, 70000, 3<<20 + 5} {
		payload := randomPayload(uint64(n), n)
		tree := commitBytes(t, payload)
		b, err := tree.MarshalBinary()
		if err != nil {
			t.Fatal(err)
		}
		var got Tree
		if err := got.UnmarshalBinary(b); err != nil {
			t.Fatalf("%d bytes: %v", n, err)
		}
		if got.Root() != tree.Root() || got.Payload != tree.Payload || got.Padded != tree.Padded || got.CacheHeight != tree.CacheHeight {
			t.Fatalf("%d bytes: round trip changed the tree", n)
		}
		for l := range tree.levels {
			if !bytes.Equal(got.levels[l], tree.levels[l]) {
				t.Fatalf("%d bytes: level %d differs after the round trip", n, l+tree.CacheHeight)
			}
		}
		// The cache is 1/64 of the padded piece on disk, 1/32 in memory.
		if n > 1<<20 && len(b) > int(tree.Padded/64)+treeHeader+4 {
			t.Fatalf("%d bytes: tree file of %d bytes", n, len(b))
		}
	}
}

func TestTreeUnmarshalRejects(t *testing.T) {
	tree := commitBytes(t, randomPayload(1, 70000))
	good, _ := tree.MarshalBinary()
	withCRC := func(b []byte) []byte {
		body := b[:len(b)-4]
		return binary.BigEndian.AppendUint32(bytes.Clone(body), crc32.Checksum(body, castagnoli))
	}
	edit := func(f func(b []byte) []byte) []byte { return f(bytes.Clone(good)) }
	for name, b := range map[string][]byte{
		"empty":             nil,
		"truncated":         good[:len(good)-1],
		"extended":          append(bytes.Clone(good), 0),
		"bad magic":         edit(func(b []byte) []byte { b[0] = 'x'; return withCRC(b) }),
		"bad version":       edit(func(b []byte) []byte { b[8] = 2; return withCRC(b) }),
		"flipped node":      edit(func(b []byte) []byte { b[treeHeader+100] ^= 1; return b }),
		"node, crc redone":  edit(func(b []byte) []byte { b[treeHeader+100] ^= 1; return withCRC(b) }),
		"root, crc redone":  edit(func(b []byte) []byte { b[treeHeader-1] ^= 1; return withCRC(b) }),
		"payload too small": edit(func(b []byte) []byte { binary.BigEndian.PutUint64(b[9:], 64); return withCRC(b) }),
		"payload huge":      edit(func(b []byte) []byte { binary.BigEndian.PutUint64(b[9:], 1<<63); return withCRC(b) }),
		"payload mismatch":  edit(func(b []byte) []byte { binary.BigEndian.PutUint64(b[9:], 140000); return withCRC(b) }),
		"padded mismatch":   edit(func(b []byte) []byte { binary.BigEndian.PutUint64(b[17:], 1<<18); return withCRC(b) }),
		"cache height":      edit(func(b []byte) []byte { b[25] = 5; return withCRC(b) }),
	} {
		var got Tree
		if err := got.UnmarshalBinary(b); !errors.Is(err, ErrBadTree) {
			t.Errorf("%s: %v; want ErrBadTree", name, err)
		}
		if got.levels != nil {
			t.Errorf("%s: the failed Unmarshal changed the tree", name)
		}
	}
}

// FuzzTreeUnmarshal: cache files are read back from disk, where anything
// can have happened to them; no input may panic or be accepted as an
// inconsistent tree.
func FuzzTreeUnmarshal(f *testing.F) {
	for _, n := range []int{65, 300, 5000} {
		tree := commitBytes(f, randomPayload(uint64(n), n))
		b, _ := tree.MarshalBinary()
		f.Add(b)
	}
	f.Add([]byte("aroptree\x01"))
	f.Fuzz(func(t *testing.T, b []byte) {
		var tree Tree
		if err := tree.UnmarshalBinary(b); err != nil {
			return
		}
		again, err := tree.MarshalBinary()
		if err != nil || !bytes.Equal(again, b) {
			t.Fatalf("accepted %x, re-encodes to %x (%v)", b, again, err)
		}
	})
}
