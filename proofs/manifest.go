package proofs

import (
	"cmp"
	"crypto/sha256"
	"encoding/binary"
	"errors"
	"fmt"
	"math/bits"
	"slices"
	"strings"

	"github.com/ipfs/go-cid"
	"github.com/libp2p/go-libp2p/core/crypto"
	"github.com/libp2p/go-libp2p/core/peer"
	"github.com/multiformats/go-multihash"

	"github.com/aropeer/aropeer/wire"
)

// ManifestDomain signs manifests.
var ManifestDomain = wire.Domain{Name: "aro-manifest", PayloadType: "/aro/manifest"}

// MaxManifestSize caps a sealed manifest: about a thousand pieces.
const MaxManifestSize = 64 << 10

// Attestation kinds an edge can declare in its manifest. InsecureDev is
// for devnets and simulation; networks that do not allow it refuse its
// attestations, not the manifest.
const (
	TEEInsecureDev = "insecure-dev"
	TEESEVSNP      = "sev-snp"
	TEETDX         = "tdx"
	TEENitro       = "nitro"
)

// Bounds on claims. They are far above any real host; they exist so that
// sums over many pieces or edges cannot overflow and absurd claims are
// refused before anyone schedules work for them.
const (
	// MinPieceSize and MaxPieceSize bound a piece's padded size, as
	// Filecoin bounds it (128 bytes up to a 64 GiB sector).
	MinPieceSize = 128
	MaxPieceSize = 64 << 30
	// MaxMbit is 1 Tbit/s each way.
	MaxMbit = 1_000_000
	// MaxMilliTOPS is a million int8 TOPS.
	MaxMilliTOPS = 1_000_000_000
	// maxDeviceLen caps a compute device class name.
	maxDeviceLen = 64
)

// Manifest is an edge's signed statement of the resources it offers. A
// manifest with a higher Seq replaces one with a lower Seq.
type Manifest struct {
	Network string  `cbor:"net"`
	Edge    peer.ID `cbor:"edge"`
	Seq     uint64  `cbor:"seq"` // higher replaces lower
	// Offers are sorted by kind name in byte order, one per kind; liveness
	// is always offered. Normalize sorts them.
	Offers []Offer `cbor:"offers"`
	// TEE is the attestation kind the edge can produce: "" for none, or
	// one of the TEE* constants.
	TEE string `cbor:"tee,omitempty"`
}

// Offer is one resource an edge offers. Only the fields of its kind are
// set.
type Offer struct {
	Kind Kind `cbor:"kind"`
	// storage: pieces the edge holds (Filecoin piece CIDs) with their
	// padded sizes, sorted by CID bytes, faults declared.
	Pieces []Piece `cbor:"pieces,omitempty"`
	// bandwidth: claimed Mbit/s each way.
	UpMbit   uint64 `cbor:"up,omitempty"`
	DownMbit uint64 `cbor:"down,omitempty"`
	// compute: device class and claimed int8 TOPS (milli-TOPS to stay
	// integer).
	Device    string `cbor:"device,omitempty"`
	MilliTOPS uint64 `cbor:"mtops,omitempty"`
}

// Piece is a piece of data an edge holds, named by its Filecoin piece CID.
type Piece struct {
	CID  cid.Cid `cbor:"cid"`
	Size uint64  `cbor:"size"` // padded size in bytes, a power of two
	// Faulty declares the piece lost: it is not challenged and earns
	// nothing, but declaring it costs less than failing its challenges.
	Faulty bool `cbor:"faulty,omitempty"`
	// FaultRound is the round in which the edge declared the fault; the
	// declaration excuses challenges from two rounds later on (FaultFrom),
	// never a round whose randomness the edge could have seen before it.
	// 0 with Faulty means declared at the start: never challenged.
	FaultRound uint64 `cbor:"fault_round,omitempty"`
}

// FaultFrom is the first round a fault declared in round r excuses: the
// declaration must reach the keepers before that round's beacon, so it
// cannot be made after seeing the challenge it would excuse.
func FaultFrom(r uint64) uint64 {
	if r == 0 {
		return 0
	}
	return r + 2
}

// ExcusedIn reports whether the piece is not challenged in round.
func (p Piece) ExcusedIn(round uint64) bool {
	return p.Faulty && round >= FaultFrom(p.FaultRound)
}

// Eligible returns the offer's pieces that may be challenged in round, in
// their order: those not excused by a declared fault.
func (o Offer) Eligible(round uint64) []Piece {
	out := make([]Piece, 0, len(o.Pieces))
	for _, p := range o.Pieces {
		if !p.ExcusedIn(round) {
			out = append(out, p)
		}
	}
	return out
}

// PickPiece is the piece a storage challenge of seed names among the
// offer's pieces eligible in round: every peer picks the same one.
func PickPiece(seed []byte, o Offer, round uint64) (Piece, bool) {
	eligible := o.Eligible(round)
	if len(eligible) == 0 {
		return Piece{}, false
	}
	h := sha256.Sum256(append([]byte("aro/storage/piece"), seed...))
	i := binary.BigEndian.Uint64(h[:8]) % uint64(len(eligible))
	return Piece{CID: eligible[i].CID, Size: eligible[i].Size}, true
}

// Offer returns the offer of kind k, if the manifest has one. (The method
// is not called Offers, as the field is.)
func (m Manifest) Offer(k Kind) (Offer, bool) {
	for _, o := range m.Offers {
		if o.Kind == k {
			return o, true
		}
	}
	return Offer{}, false
}

// Normalize sorts the offers by kind and each offer's pieces by CID, the
// order Validate requires. It does not remove duplicates.
func (m *Manifest) Normalize() {
	slices.SortFunc(m.Offers, func(a, b Offer) int { return cmp.Compare(a.Kind, b.Kind) })
	for _, o := range m.Offers {
		slices.SortFunc(o.Pieces, func(a, b Piece) int { return strings.Compare(a.CID.KeyString(), b.CID.KeyString()) })
	}
}

// Validate checks that the manifest is one an honest edge could sign: a
// network, a valid edge ID, offers sorted and unique with liveness among
// them, only known kinds, each offer holding only its kind's fields, and
// claims within bounds. Errors match ErrInvalid.
func (m Manifest) Validate() error {
	if err := checkNetwork(m.Network); err != nil {
		return invalid("manifest", err)
	}
	if err := checkPeer("edge", m.Edge); err != nil {
		return invalid("manifest", err)
	}
	switch m.TEE {
	case "", TEEInsecureDev, TEESEVSNP, TEETDX, TEENitro:
	default:
		return invalid("manifest", fmt.Errorf("unknown TEE kind %q", m.TEE))
	}
	live := false
	for i, o := range m.Offers {
		if i > 0 && o.Kind <= m.Offers[i-1].Kind {
			return invalid("manifest", fmt.Errorf("offer %d (%q) after %q: offers must be sorted by kind, one per kind", i, o.Kind, m.Offers[i-1].Kind))
		}
		if err := o.validate(); err != nil {
			return invalid("manifest", fmt.Errorf("offer %q: %w", o.Kind, err))
		}
		live = live || o.Kind == KindLiveness
	}
	if !live {
		return invalid("manifest", fmt.Errorf("no %s offer", KindLiveness))
	}
	return nil
}

// validate checks one offer on its own.
func (o Offer) validate() error {
	if !knownKind(o.Kind) {
		return errors.New("unknown kind")
	}
	groups := []struct {
		kind Kind
		set  bool
	}{
		{KindStorage, len(o.Pieces) > 0},
		{KindBandwidth, o.UpMbit > 0 || o.DownMbit > 0},
		{KindCompute, o.Device != "" || o.MilliTOPS > 0},
	}
	for _, g := range groups {
		if g.set && g.kind != o.Kind {
			return fmt.Errorf("sets %s fields", g.kind)
		}
	}
	switch o.Kind {
	case KindStorage:
		if len(o.Pieces) == 0 {
			return errors.New("no pieces")
		}
		return checkPieces(o.Pieces)
	case KindBandwidth:
		if o.UpMbit == 0 && o.DownMbit == 0 {
			return errors.New("claims 0 Mbit/s both ways")
		}
		if o.UpMbit > MaxMbit || o.DownMbit > MaxMbit {
			return fmt.Errorf("claims %d/%d Mbit/s up/down, over %d", o.UpMbit, o.DownMbit, MaxMbit)
		}
	case KindCompute:
		if o.Device == "" || o.MilliTOPS == 0 {
			return errors.New("needs both a device class and a TOPS claim")
		}
		if len(o.Device) > maxDeviceLen || !printable(o.Device) {
			return fmt.Errorf("device class %q: want up to %d printable ASCII characters", o.Device, maxDeviceLen)
		}
		if o.MilliTOPS > MaxMilliTOPS {
			return fmt.Errorf("claims %d milli-TOPS, over %d", o.MilliTOPS, MaxMilliTOPS)
		}
	}
	return nil
}

// checkPieces checks that pieces are Filecoin piece CIDs of possible
// padded sizes, sorted and unique, so no piece is claimed twice.
func checkPieces(pieces []Piece) error {
	for i, p := range pieces {
		if !p.CID.Defined() {
			return fmt.Errorf("piece %d: undefined CID", i)
		}
		pre := p.CID.Prefix()
		if pre.Version != 1 || pre.Codec != cid.FilCommitmentUnsealed ||
			pre.MhType != multihash.SHA2_256_TRUNC254_PADDED || pre.MhLength != 32 {
			return fmt.Errorf("piece %d: %s is not a Filecoin piece CID (fil-commitment-unsealed, sha2-256-trunc254-padded)", i, p.CID)
		}
		if p.Size < MinPieceSize || p.Size > MaxPieceSize || bits.OnesCount64(p.Size) != 1 {
			return fmt.Errorf("piece %s: padded size %d: want a power of two from %d to %d", p.CID, p.Size, MinPieceSize, MaxPieceSize)
		}
		if i > 0 && strings.Compare(pieces[i-1].CID.KeyString(), p.CID.KeyString()) >= 0 {
			return fmt.Errorf("piece %s: pieces must be sorted by CID bytes, each once", p.CID)
		}
		if p.FaultRound != 0 && !p.Faulty {
			return fmt.Errorf("piece %s: a fault round without a fault", p.CID)
		}
	}
	return nil
}

// checkPiece checks the one piece a storage challenge names.
func checkPiece(p *Piece) error {
	if p.Faulty || p.FaultRound != 0 {
		return fmt.Errorf("challenged piece %s declared faulty", p.CID)
	}
	return checkPieces([]Piece{*p})
}

// SealManifest validates m, checks that key is m.Edge's, and signs it.
func SealManifest(key crypto.PrivKey, m Manifest) (env []byte, id cid.Cid, err error) {
	if err := m.Validate(); err != nil {
		return nil, cid.Undef, err
	}
	if err := checkKey(key, m.Edge); err != nil {
		return nil, cid.Undef, fmt.Errorf("proofs: seal manifest: %w", err)
	}
	env, id, err = wire.SealMessage(key, ManifestDomain, m)
	if err != nil {
		return nil, cid.Undef, fmt.Errorf("proofs: seal manifest: %w", err)
	}
	return env, id, nil
}

// OpenManifest opens a sealed manifest: size cap, signature, canonical
// decoding, Validate, and a signer that is the manifest's edge. It returns
// the manifest and the CID of its payload.
func OpenManifest(env []byte) (Manifest, cid.Cid, error) {
	var m Manifest
	signer, id, err := wire.OpenMessage(env, ManifestDomain, MaxManifestSize, &m)
	if err != nil {
		return Manifest{}, cid.Undef, fmt.Errorf("proofs: open manifest: %w", err)
	}
	if err := m.Validate(); err != nil {
		return Manifest{}, cid.Undef, err
	}
	if signer != m.Edge {
		return Manifest{}, cid.Undef, fmt.Errorf("proofs: open manifest: signed by %s for edge %s: %w", signer, m.Edge, ErrWrongSigner)
	}
	return m, id, nil
}
