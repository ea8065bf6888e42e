package beacon

import (
	"bytes"
	"strings"
	"testing"
)

func TestBuiltinChainHashes(t *testing.T) {
	for name, c := range map[string]struct {
		info Info
		hash string
	}{
		"default":  {Default(), "8990e7a9aaed2ffed73dbd7092123d6f289930540d7651336225dc172e51b2ce"},
		"quicknet": {Quicknet(), "52db9ba70e0cc0f6eaf7803dd07447a1f5477735fd3f661792ba94600c84e971"},
	} {
		t.Run(name, func(t *testing.T) {
			got, err := c.info.ComputeHash()
			if err != nil {
				t.Fatal(err)
			}
			if !bytes.Equal(got, c.info.Hash) || c.info.HashString() != c.hash {
				t.Fatalf("computed %x, pinned %s, want %s", got, c.info.HashString(), c.hash)
			}
			if _, err := NewVerifier(c.info); err != nil {
				t.Fatal(err)
			}
			for _, h := range []string{c.hash, strings.ToUpper(c.hash)} {
				l, ok := LookupChain(h)
				if !ok || l.HashString() != c.hash || l.Scheme != c.info.Scheme {
					t.Fatalf("LookupChain(%s) = %+v, %v", h, l, ok)
				}
			}
		})
	}
}

func TestLookupChainUnknown(t *testing.T) {
	dev := DevnetSigner().Info()
	for _, h := range []string{"", "8990e7a9", dev.HashString(), defaultHash + "00"} {
		if _, ok := LookupChain(h); ok {
			t.Errorf("LookupChain(%q) found a chain", h)
		}
	}
}

func TestBuiltinsAreFreshCopies(t *testing.T) {
	a := Quicknet()
	a.PublicKey[0] ^= 0xff
	a.Hash[0] ^= 0xff
	a.GenesisSeed[0] ^= 0xff
	if b := Quicknet(); b.PublicKey[0] == a.PublicKey[0] || b.Hash[0] == a.Hash[0] || b.GenesisSeed[0] == a.GenesisSeed[0] {
		t.Fatal("Quicknet() shares its byte slices between calls")
	}
}
