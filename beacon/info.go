package beacon

import (
	"bytes"
	"encoding/hex"
	"encoding/json"
	"errors"
	"fmt"
	"io"
	"time"

	"github.com/drand/drand/v2/common"
	"github.com/drand/drand/v2/common/chain"
	"github.com/drand/drand/v2/crypto"
	"github.com/drand/kyber"
)

// maxInfoJSON caps what ParseInfoJSON reads: drand's /info is about 500
// bytes, and the input may come from an untrusted relay.
const maxInfoJSON = 16 << 10

// drandInfoJSON is drand's chain info as its HTTP API serves it (the
// protobuf ChainInfoPacket through hexjson: bytes as lowercase hex).
type drandInfoJSON struct {
	PublicKey   string                `json:"public_key"`
	Period      uint32                `json:"period"`
	GenesisTime int64                 `json:"genesis_time"`
	Hash        string                `json:"hash"`
	GroupHash   string                `json:"groupHash"`
	SchemeID    string                `json:"schemeID"`
	Metadata    drandInfoMetadataJSON `json:"metadata"`
}

type drandInfoMetadataJSON struct {
	BeaconID string `json:"beaconID"`
}

// ParseInfoJSON decodes drand's chain info JSON (what a relay serves at
// /<chainhash>/info) and checks it: the scheme must be one this package
// verifies, the public key a valid point of the scheme's key group, and the
// advertised hash equal to the hash recomputed from the contents. As in
// drand, an empty schemeID means pedersen-bls-chained and an empty beaconID
// means "default".
func ParseInfoJSON(data []byte) (Info, error) {
	if len(data) > maxInfoJSON {
		return Info{}, fmt.Errorf("beacon: chain info is %d bytes, more than the %d allowed", len(data), maxInfoJSON)
	}
	var j drandInfoJSON
	dec := json.NewDecoder(bytes.NewReader(data))
	if err := dec.Decode(&j); err != nil {
		return Info{}, fmt.Errorf("beacon: decode chain info: %w", err)
	}
	if _, err := dec.Token(); err != io.EOF {
		return Info{}, errors.New("beacon: decode chain info: trailing data after the JSON object")
	}
	if j.SchemeID == "" {
		j.SchemeID = crypto.DefaultSchemeID
	}
	if j.Metadata.BeaconID == "" {
		j.Metadata.BeaconID = common.DefaultBeaconID
	}
	if j.Period == 0 {
		return Info{}, errors.New("beacon: chain info: period is zero")
	}
	info := Info{
		Scheme:      j.SchemeID,
		Period:      time.Duration(j.Period) * time.Second,
		GenesisTime: j.GenesisTime,
		BeaconID:    j.Metadata.BeaconID,
	}
	var err error
	if info.PublicKey, err = decodeHexField("public_key", j.PublicKey); err != nil {
		return Info{}, err
	}
	if info.Hash, err = decodeHexField("hash", j.Hash); err != nil {
		return Info{}, err
	}
	if info.GenesisSeed, err = decodeHexField("groupHash", j.GroupHash); err != nil {
		return Info{}, err
	}
	if err := info.check(); err != nil {
		return Info{}, err
	}
	return info, nil
}

// UnmarshalJSON decodes and checks drand's chain info format, as
// ParseInfoJSON does, so that an Info read from a config file or a relay
// is never unchecked. null leaves i unchanged, as encoding/json expects.
func (i *Info) UnmarshalJSON(data []byte) error {
	if string(bytes.TrimSpace(data)) == "null" {
		return nil
	}
	info, err := ParseInfoJSON(data)
	if err != nil {
		return err
	}
	*i = info
	return nil
}

func decodeHexField(name, s string) ([]byte, error) {
	if s == "" {
		return nil, fmt.Errorf("beacon: chain info: %s is missing", name)
	}
	b, err := hex.DecodeString(s)
	if err != nil {
		return nil, fmt.Errorf("beacon: chain info: %s: %w", name, err)
	}
	return b, nil
}

// MarshalJSON encodes i in drand's chain info format, so that drand's
// clients and ParseInfoJSON read it back. It fails on an Info whose Hash
// does not match its contents rather than publish an inconsistent file.
// The zero Info encodes as null, so that a status report holding no chain
// yet still encodes.
func (i Info) MarshalJSON() ([]byte, error) {
	if i.Scheme == "" && len(i.PublicKey) == 0 && len(i.Hash) == 0 {
		return []byte("null"), nil
	}
	hash, err := i.ComputeHash()
	if err != nil {
		return nil, err
	}
	if len(i.Hash) != 0 && !bytes.Equal(hash, i.Hash) {
		return nil, fmt.Errorf("beacon: chain info hash %x does not match its contents (%x)", i.Hash, hash)
	}
	beaconID := i.BeaconID
	if beaconID == "" {
		beaconID = common.DefaultBeaconID
	}
	return json.Marshal(drandInfoJSON{
		PublicKey:   hex.EncodeToString(i.PublicKey),
		Period:      uint32(i.Period / time.Second),
		GenesisTime: i.GenesisTime,
		Hash:        hex.EncodeToString(hash),
		GroupHash:   hex.EncodeToString(i.GenesisSeed),
		SchemeID:    i.Scheme,
		Metadata:    drandInfoMetadataJSON{BeaconID: beaconID},
	})
}

// ComputeHash returns the chain hash of i's contents with drand's own
// algorithm (chain.Info.Hash): SHA-256 of the period in seconds (uint32),
// the genesis time (int64), the public key, the group hash and, for any
// beacon ID but "default", the beacon ID.
func (i Info) ComputeHash() ([]byte, error) {
	sch, err := schemeByID(i.Scheme)
	if err != nil {
		return nil, err
	}
	if i.Period <= 0 || i.Period%time.Second != 0 || i.Period/time.Second > 1<<32-1 {
		// drand hashes the period as whole seconds in a uint32.
		return nil, fmt.Errorf("beacon: chain info: period %v is not a positive whole number of seconds", i.Period)
	}
	if len(i.GenesisSeed) == 0 {
		return nil, errors.New("beacon: chain info: group hash (genesis seed) is missing")
	}
	pub, err := decodePublicKey(sch, i.PublicKey)
	if err != nil {
		return nil, err
	}
	ci := chain.Info{
		PublicKey:   pub,
		ID:          i.BeaconID,
		Period:      i.Period,
		Scheme:      sch.Name,
		GenesisTime: i.GenesisTime,
		GenesisSeed: i.GenesisSeed,
	}
	return ci.Hash(), nil
}

// HashString returns the pinned chain hash, Hash, in hex: the form drand's
// relays use in their URLs.
func (i Info) HashString() string {
	return hex.EncodeToString(i.Hash)
}

// check reports whether i is complete and its Hash matches its contents.
func (i Info) check() error {
	hash, err := i.ComputeHash()
	if err != nil {
		return err
	}
	if !bytes.Equal(hash, i.Hash) {
		return fmt.Errorf("beacon: chain info hash %x does not match its contents (%x)", i.Hash, hash)
	}
	// drand's chain hash does not cover the scheme, so a relay could serve
	// a known chain's info under another scheme with a matching hash. For
	// the built-in chains, what we know wins.
	if known, ok := LookupChain(i.HashString()); ok && known.Scheme != i.Scheme {
		return fmt.Errorf("beacon: chain info for %s names scheme %q, but that chain uses %q",
			i.HashString(), i.Scheme, known.Scheme)
	}
	return nil
}

// clone returns a deep copy, so that an Info handed out cannot change one
// kept inside.
func (i Info) clone() Info {
	i.Hash = bytes.Clone(i.Hash)
	i.PublicKey = bytes.Clone(i.PublicKey)
	i.GenesisSeed = bytes.Clone(i.GenesisSeed)
	return i
}

// schemeByID returns drand's scheme for the IDs this package verifies.
// pedersen-bls-unchained (no live League of Entropy chain) and the BN254
// scheme are refused.
func schemeByID(id string) (*crypto.Scheme, error) {
	switch id {
	case crypto.DefaultSchemeID, crypto.SigsOnG1ID, crypto.ShortSigSchemeID:
		return crypto.SchemeFromName(id)
	}
	return nil, fmt.Errorf("beacon: unsupported drand scheme %q (supported: %s, %s, %s)",
		id, crypto.DefaultSchemeID, crypto.SigsOnG1ID, crypto.ShortSigSchemeID)
}

// decodePublicKey decodes a compressed group public key. The decoder
// refuses non-canonical encodings and points outside the prime-order
// subgroup; the identity is refused here because with an identity key the
// identity signature verifies for every round.
func decodePublicKey(sch *crypto.Scheme, b []byte) (kyber.Point, error) {
	if n := sch.KeyGroup.PointLen(); len(b) != n {
		return nil, fmt.Errorf("beacon: public key is %d bytes, want %d for %s", len(b), n, sch.Name)
	}
	pub := sch.KeyGroup.Point()
	if err := pub.UnmarshalBinary(b); err != nil {
		return nil, fmt.Errorf("beacon: public key: %w", err)
	}
	if pub.Equal(sch.KeyGroup.Point().Null()) {
		return nil, errors.New("beacon: public key is the identity point")
	}
	return pub, nil
}
