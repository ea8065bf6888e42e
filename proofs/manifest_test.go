package proofs

import (
	"bytes"
	"errors"
	"reflect"
	"strings"
	"testing"

	"github.com/ipfs/go-cid"
	"github.com/multiformats/go-multihash"

	"github.com/aropeer/aropeer/wire"
)

// pieceCID returns a Filecoin piece CID whose digest is 32 bytes of b.
func pieceCID(t testing.TB, b byte) cid.Cid {
	t.Helper()
	mh, err := multihash.Encode(bytes.Repeat([]byte{b}, 32), multihash.SHA2_256_TRUNC254_PADDED)
	if err != nil {
		t.Fatal(err)
	}
	return cid.NewCidV1(cid.FilCommitmentUnsealed, mh)
}

func testManifest(t testing.TB) Manifest {
	t.Helper()
	known, err := cid.Decode("baga6ea4seaqao7s73y24kcutaosvacpdjgfe5pw76ooefnyqw4ynr3d2y6x2mpq")
	if err != nil {
		t.Fatal(err)
	}
	m := Manifest{
		Network: "devnet",
		Edge:    testID(t, testKey(t, edgeSeed)),
		Seq:     3,
		Offers: []Offer{
			{Kind: KindBandwidth, UpMbit: 100, DownMbit: 1000},
			{Kind: KindCompute, Device: "nvidia-rtx-4090", MilliTOPS: 660_000},
			{Kind: KindLiveness},
			{Kind: KindStorage, Pieces: []Piece{
				{CID: pieceCID(t, 1), Size: 32 << 30},
				{CID: known, Size: 2048},
				{CID: pieceCID(t, 2), Size: 128, Faulty: true},
			}},
		},
		TEE: TEESEVSNP,
	}
	m.Normalize()
	return m
}

func TestManifestRoundTrip(t *testing.T) {
	m := testManifest(t)
	env, id, err := SealManifest(testKey(t, edgeSeed), m)
	if err != nil {
		t.Fatal(err)
	}
	got, gotID, err := OpenManifest(env)
	if err != nil {
		t.Fatal(err)
	}
	if !reflect.DeepEqual(got, m) {
		t.Fatalf("opened %+v, sealed %+v", got, m)
	}
	if _, want, _ := wire.MarshalCID(m); gotID != id || id != want {
		t.Fatalf("CIDs: open %s, seal %s, payload %s", gotID, id, want)
	}
	// The smallest manifest: liveness only.
	bare := Manifest{Network: "devnet", Edge: m.Edge, Offers: []Offer{{Kind: KindLiveness}}}
	env, _, err = SealManifest(testKey(t, edgeSeed), bare)
	if err != nil {
		t.Fatal(err)
	}
	if got, _, err := OpenManifest(env); err != nil || !reflect.DeepEqual(got, bare) {
		t.Fatalf("OpenManifest = %+v, %v; want %+v", got, err, bare)
	}
}

func TestManifestOffer(t *testing.T) {
	m := testManifest(t)
	for _, k := range Kinds() {
		o, ok := m.Offer(k)
		if !ok || o.Kind != k {
			t.Errorf("Offer(%s) = %+v, %v", k, o, ok)
		}
	}
	m.Offers = m.Offers[2:] // liveness and storage
	if o, ok := m.Offer(KindCompute); ok {
		t.Errorf("Offer(compute) = %+v on a manifest without it", o)
	}
}

func TestManifestNormalize(t *testing.T) {
	m := testManifest(t)
	sorted := testManifest(t)
	// Reverse everything, then sort again.
	for i, j := 0, len(m.Offers)-1; i < j; i, j = i+1, j-1 {
		m.Offers[i], m.Offers[j] = m.Offers[j], m.Offers[i]
	}
	p := m.Offers[0].Pieces
	p[0], p[2] = p[2], p[0]
	if err := m.Validate(); err == nil {
		t.Fatal("unsorted manifest validates")
	}
	m.Normalize()
	if !reflect.DeepEqual(m, sorted) {
		t.Fatalf("Normalize gave %+v, want %+v", m, sorted)
	}
}

func TestManifestValidate(t *testing.T) {
	// Offers of testManifest, by index after sorting.
	const (
		bw, comp, live, stor = 0, 1, 2, 3
	)
	dagCBOR := testReceiptCID(t)
	tests := []struct {
		name string
		edit func(*Manifest)
		ok   bool
	}{
		{"valid", func(*Manifest) {}, true},
		{"no TEE", func(m *Manifest) { m.TEE = "" }, true},
		{"insecure-dev TEE", func(m *Manifest) { m.TEE = TEEInsecureDev }, true},
		{"upload only", func(m *Manifest) { m.Offers[bw].DownMbit = 0 }, true},
		{"largest piece", func(m *Manifest) { m.Offers[stor].Pieces[0].Size = MaxPieceSize }, true},
		{"unknown TEE", func(m *Manifest) { m.TEE = "sgx" }, false},
		{"no network", func(m *Manifest) { m.Network = "" }, false},
		{"network with space", func(m *Manifest) { m.Network = "dev net" }, false},
		{"no edge", func(m *Manifest) { m.Edge = "" }, false},
		{"garbage edge", func(m *Manifest) { m.Edge = "edge" }, false},
		{"no offers", func(m *Manifest) { m.Offers = nil }, false},
		{"no liveness", func(m *Manifest) { m.Offers = append(m.Offers[:live], m.Offers[stor]) }, false},
		{"unsorted offers", func(m *Manifest) { m.Offers[bw], m.Offers[comp] = m.Offers[comp], m.Offers[bw] }, false},
		{"duplicate kind", func(m *Manifest) { m.Offers[comp] = m.Offers[bw] }, false},
		{"unknown kind", func(m *Manifest) { m.Offers = append(m.Offers, Offer{Kind: "zz"}) }, false},
		{"liveness with a claim", func(m *Manifest) { m.Offers[live].UpMbit = 1 }, false},
		{"bandwidth 0 both ways", func(m *Manifest) { m.Offers[bw].UpMbit, m.Offers[bw].DownMbit = 0, 0 }, false},
		{"bandwidth too high", func(m *Manifest) { m.Offers[bw].UpMbit = MaxMbit + 1 }, false},
		{"bandwidth with a device", func(m *Manifest) { m.Offers[bw].Device = "cpu" }, false},
		{"compute without device", func(m *Manifest) { m.Offers[comp].Device = "" }, false},
		{"compute without TOPS", func(m *Manifest) { m.Offers[comp].MilliTOPS = 0 }, false},
		{"compute TOPS too high", func(m *Manifest) { m.Offers[comp].MilliTOPS = MaxMilliTOPS + 1 }, false},
		{"device with newline", func(m *Manifest) { m.Offers[comp].Device = "gpu\n" }, false},
		{"device too long", func(m *Manifest) { m.Offers[comp].Device = strings.Repeat("g", 65) }, false},
		{"compute with pieces", func(m *Manifest) { m.Offers[comp].Pieces = m.Offers[stor].Pieces }, false},
		{"storage without pieces", func(m *Manifest) { m.Offers[stor].Pieces = nil }, false},
		{"storage with bandwidth", func(m *Manifest) { m.Offers[stor].DownMbit = 10 }, false},
		{"duplicate piece", func(m *Manifest) { m.Offers[stor].Pieces[1] = m.Offers[stor].Pieces[0] }, false},
		{"unsorted pieces", func(m *Manifest) {
			p := m.Offers[stor].Pieces
			p[0], p[1] = p[1], p[0]
		}, false},
		{"undefined piece CID", func(m *Manifest) { m.Offers[stor].Pieces[0].CID = cid.Undef }, false},
		{"dag-cbor piece CID", func(m *Manifest) { m.Offers[stor].Pieces[0].CID = dagCBOR }, false},
		{"piece size not a power of two", func(m *Manifest) { m.Offers[stor].Pieces[0].Size = 1000 }, false},
		{"piece too small", func(m *Manifest) { m.Offers[stor].Pieces[0].Size = 64 }, false},
		{"piece too large", func(m *Manifest) { m.Offers[stor].Pieces[0].Size = MaxPieceSize * 2 }, false},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			m := testManifest(t)
			tt.edit(&m)
			err := m.Validate()
			if tt.ok != (err == nil) {
				t.Fatalf("Validate = %v, want ok=%v", err, tt.ok)
			}
			if err != nil && !errors.Is(err, ErrInvalid) {
				t.Fatalf("Validate = %v, want ErrInvalid", err)
			}
		})
	}
}

func TestManifestSealOpenRefuses(t *testing.T) {
	edge, stranger := testKey(t, edgeSeed), testKey(t, strangerSeed)
	m := testManifest(t)
	if _, _, err := SealManifest(stranger, m); !errors.Is(err, ErrWrongSigner) {
		t.Errorf("SealManifest with another key: %v, want ErrWrongSigner", err)
	}
	bad := testManifest(t)
	bad.Offers = bad.Offers[:1]
	if _, _, err := SealManifest(edge, bad); !errors.Is(err, ErrInvalid) {
		t.Errorf("SealManifest without liveness: %v, want ErrInvalid", err)
	}

	payload := mustMarshal(t, m)
	tests := []struct {
		name string
		env  []byte
		want error
	}{
		{"by a stranger", sealRaw(t, stranger, ManifestDomain, payload), ErrWrongSigner},
		{"as a receipt", sealRaw(t, edge, ReceiptDomain, payload), wire.ErrWrongPayloadType},
		{"in another domain", sealRaw(t, edge, wire.Domain{Name: "aro-receipt", PayloadType: ManifestDomain.PayloadType}, payload), wire.ErrBadSignature},
		{"over cap", make([]byte, MaxManifestSize+1), wire.ErrTooLarge},
		{"non-canonical", sealRaw(t, edge, ManifestDomain, nonCanonical(t, m)), wire.ErrNonCanonical},
		{"invalid", sealRaw(t, edge, ManifestDomain, mustMarshal(t, bad)), ErrInvalid},
		{"receipt payload", sealRaw(t, edge, ManifestDomain, mustMarshal(t, testReceipt(t))), nil},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			_, _, err := OpenManifest(tt.env)
			if err == nil {
				t.Fatal("opened")
			}
			if tt.want != nil && !errors.Is(err, tt.want) {
				t.Fatalf("err = %v, want %v", err, tt.want)
			}
		})
	}
}

// TestPieceEligibility: a declared fault excuses its piece from two
// rounds after the declaration on, never the rounds before; a fault
// declared at the start excuses it always; PickPiece picks only among
// eligible pieces, the same one for the same seed.
func TestPieceEligibility(t *testing.T) {
	o := Offer{Kind: KindStorage, Pieces: []Piece{
		{CID: pieceCID(t, 1), Size: 1 << 20},
		{CID: pieceCID(t, 2), Size: 1 << 20, Faulty: true, FaultRound: 100},
		{CID: pieceCID(t, 3), Size: 1 << 20, Faulty: true},
	}}
	for round, want := range map[uint64]int{99: 2, 100: 2, 101: 2, 102: 1, 500: 1} {
		if got := len(o.Eligible(round)); got != want {
			t.Errorf("round %d: %d eligible pieces, want %d", round, got, want)
		}
	}
	seen := map[cid.Cid]bool{}
	for i := range 200 {
		seed := bytes.Repeat([]byte{byte(i)}, SeedSize)
		p, ok := PickPiece(seed, o, 101)
		if !ok || p.Faulty || p.FaultRound != 0 {
			t.Fatalf("round 101, seed %d: picked %+v, %v", i, p, ok)
		}
		if p.CID.Equals(pieceCID(t, 3)) {
			t.Fatal("picked a piece declared faulty from the start")
		}
		seen[p.CID] = true
		if again, _ := PickPiece(seed, o, 101); !again.CID.Equals(p.CID) {
			t.Fatal("the same seed picks another piece")
		}
		if p, _ := PickPiece(seed, o, 102); !p.CID.Equals(pieceCID(t, 1)) {
			t.Fatalf("round 102 picked %s, excused by then", p.CID)
		}
	}
	if len(seen) != 2 {
		t.Errorf("before the fault takes effect, %d pieces picked over 200 seeds, want both eligible ones", len(seen))
	}
	none := Offer{Kind: KindStorage, Pieces: []Piece{{CID: pieceCID(t, 3), Size: 1 << 20, Faulty: true}}}
	if _, ok := PickPiece(bytes.Repeat([]byte{1}, SeedSize), none, 5); ok {
		t.Error("picked a piece from an offer whose pieces are all faulty")
	}
}
