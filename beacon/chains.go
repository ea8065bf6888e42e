package beacon

import (
	"encoding/hex"
	"strings"
	"time"
)

// The League of Entropy chains, as their relays serve them at /info. The
// values are constants and every call builds a fresh Info from them, so
// no caller can alter what another one pins.
const (
	defaultPublicKey = "868f005eb8e6e4ca0a47c8a77ceaa5309a47978a7c71bc5cce96366b5d7a569937c529eeda66c7293784a9402801af31"
	defaultHash      = "8990e7a9aaed2ffed73dbd7092123d6f289930540d7651336225dc172e51b2ce"
	defaultGroupHash = "176f93498eac9ca337150b46d21dd58673ea4e3581185f869672e59fa4cb390a"

	quicknetPublicKey = "83cf0f2896adee7eb8b5f01fcad3912212c437e0073e911fb90022d3e760183c8c4b450b6a0a6c3ac6a5776a2d1064510d1fec758c921cc22b0e17e63aaf4bcb5ed66304de9cf809bd274ca73bab4af5a6e9c76a4bc09e76eae8991ef5ece45a"
	quicknetHash      = "52db9ba70e0cc0f6eaf7803dd07447a1f5477735fd3f661792ba94600c84e971"
	quicknetGroupHash = "f477d5c89f21a17c863a7f937c6a6d15859414d2be09cd448d4279af331c5d3e"
)

// Default returns the League of Entropy "default" chain: chained BLS
// (pedersen-bls-chained), one round every 30 s since 2020-07-22.
func Default() Info {
	return Info{
		Hash:        mustHex(defaultHash),
		PublicKey:   mustHex(defaultPublicKey),
		Scheme:      "pedersen-bls-chained",
		Period:      30 * time.Second,
		GenesisTime: 1595431050,
		GenesisSeed: mustHex(defaultGroupHash),
		BeaconID:    "default",
	}
}

// Quicknet returns the League of Entropy "quicknet" chain: unchained BLS
// with signatures on G1 (bls-unchained-g1-rfc9380), one round every 3 s
// since 2023-08-23.
func Quicknet() Info {
	return Info{
		Hash:        mustHex(quicknetHash),
		PublicKey:   mustHex(quicknetPublicKey),
		Scheme:      "bls-unchained-g1-rfc9380",
		Period:      3 * time.Second,
		GenesisTime: 1692803367,
		GenesisSeed: mustHex(quicknetGroupHash),
		BeaconID:    "quicknet",
	}
}

// LookupChain returns the built-in chain whose hash is the given hex string
// (either case).
func LookupChain(hash string) (Info, bool) {
	switch strings.ToLower(hash) {
	case defaultHash:
		return Default(), true
	case quicknetHash:
		return Quicknet(), true
	}
	return Info{}, false
}

// mustHex decodes a hex constant of this package; a test covers every
// call, so the panic cannot fire at run time.
func mustHex(s string) []byte {
	b, err := hex.DecodeString(s)
	if err != nil {
		panic("beacon: bad hex constant: " + err.Error())
	}
	return b
}
