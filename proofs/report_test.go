package proofs

import (
	"bytes"
	"crypto/sha256"
	"encoding/binary"
	"errors"
	"reflect"
	"slices"
	"testing"

	"github.com/ipfs/go-cid"
	"github.com/libp2p/go-libp2p/core/crypto"
	"github.com/multiformats/go-multihash"

	"github.com/aropeer/aropeer/wire"
)

func testReport(t testing.TB) Report {
	t.Helper()
	m := testManifest(t)
	r := Report{Network: m.Network, Epoch: 7, Edge: m.Edge}
	for i, o := range m.Offers {
		r.Claims = append(r.Claims, Claim{Offer: o, Answered: uint64(10 + i)})
	}
	return r
}

func TestReportRoundTrip(t *testing.T) {
	r := testReport(t)
	env, id, err := SealReport(testKey(t, edgeSeed), r)
	if err != nil {
		t.Fatal(err)
	}
	got, gotID, err := OpenReport(env)
	if err != nil {
		t.Fatal(err)
	}
	if !reflect.DeepEqual(got, r) {
		t.Fatalf("opened %+v, sealed %+v", got, r)
	}
	if _, want, _ := wire.MarshalCID(r); gotID != id || id != want {
		t.Fatalf("CIDs: open %s, seal %s, payload %s", gotID, id, want)
	}
	if c, ok := got.Claim(KindCompute); !ok || c.Offer.MilliTOPS != 660_000 {
		t.Fatalf("Claim(compute) = %+v, %v", c, ok)
	}
}

func TestReportValidate(t *testing.T) {
	tests := []struct {
		name   string
		modify func(*Report)
		ok     bool
	}{
		{"valid", func(*Report) {}, true},
		{"liveness only", func(r *Report) { r.Claims = []Claim{{Offer: Offer{Kind: KindLiveness}}} }, true},
		{"no network", func(r *Report) { r.Network = "" }, false},
		{"bad network", func(r *Report) { r.Network = "dev net" }, false},
		{"no edge", func(r *Report) { r.Edge = "" }, false},
		{"no claims", func(r *Report) { r.Claims = nil }, false},
		{"no liveness", func(r *Report) {
			r.Claims = slices.DeleteFunc(r.Claims, func(c Claim) bool { return c.Offer.Kind == KindLiveness })
		}, false},
		{"unsorted", func(r *Report) { r.Claims[0], r.Claims[1] = r.Claims[1], r.Claims[0] }, false},
		{"duplicate kind", func(r *Report) { r.Claims = append(r.Claims, r.Claims[len(r.Claims)-1]) }, false},
		{"unknown kind", func(r *Report) { r.Claims = append(r.Claims, Claim{Offer: Offer{Kind: "zzz"}}) }, false},
		{"bandwidth over bound", func(r *Report) { r.Claims[0].Offer.UpMbit = MaxMbit + 1 }, false},
		{"fields of another kind", func(r *Report) { r.Claims[0].Offer.MilliTOPS = 1 }, false},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			r := testReport(t)
			tt.modify(&r)
			err := r.Validate()
			if (err == nil) != tt.ok {
				t.Fatalf("Validate() = %v, want ok %v", err, tt.ok)
			}
			if err != nil && !errors.Is(err, ErrInvalid) {
				t.Fatalf("Validate() = %v, want ErrInvalid", err)
			}
			if _, _, err := SealReport(testKey(t, edgeSeed), r); (err == nil) != tt.ok {
				t.Fatalf("SealReport() = %v, want ok %v", err, tt.ok)
			}
		})
	}
}

// bigStorageReport returns a valid report whose storage claim has n pieces.
func bigStorageReport(t testing.TB, n int) Report {
	t.Helper()
	r := testReport(t)
	pieces := make([]Piece, n)
	for i := range pieces {
		d := sha256.Sum256(binary.BigEndian.AppendUint64(nil, uint64(i)))
		mh, err := multihash.Encode(d[:], multihash.SHA2_256_TRUNC254_PADDED)
		if err != nil {
			t.Fatal(err)
		}
		pieces[i] = Piece{CID: cid.NewCidV1(cid.FilCommitmentUnsealed, mh), Size: 1 << 20}
	}
	slices.SortFunc(pieces, func(a, b Piece) int { return bytes.Compare(a.CID.Bytes(), b.CID.Bytes()) })
	for i := range r.Claims {
		if r.Claims[i].Offer.Kind == KindStorage {
			r.Claims[i].Offer.Pieces = pieces
		}
	}
	if err := r.Validate(); err != nil {
		t.Fatal(err)
	}
	return r
}

func TestOpenReportRefuses(t *testing.T) {
	edge, stranger := testKey(t, edgeSeed), testKey(t, strangerSeed)
	r := testReport(t)
	sealWith := func(key crypto.PrivKey, d wire.Domain, v any) []byte {
		t.Helper()
		env, _, err := wire.SealMessage(key, d, v)
		if err != nil {
			t.Fatal(err)
		}
		return env
	}
	invalidReport := r
	invalidReport.Claims = nil
	tests := []struct {
		name string
		env  []byte
		want error
	}{
		{"wrong signer", sealWith(stranger, ReportDomain, r), ErrWrongSigner},
		{"over cap", sealWith(edge, ReportDomain, bigStorageReport(t, 2000)), wire.ErrTooLarge},
		{"manifest domain", sealWith(edge, ManifestDomain, r), wire.ErrWrongPayloadType},
		{"invalid", sealWith(edge, ReportDomain, invalidReport), ErrInvalid},
		{"a manifest", sealWith(edge, ReportDomain, testManifest(t)), nil},
		{"empty", nil, nil},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			got, id, err := OpenReport(tt.env)
			if err == nil {
				t.Fatalf("OpenReport() = %+v, %s, nil; want an error", got, id)
			}
			if tt.want != nil && !errors.Is(err, tt.want) {
				t.Fatalf("OpenReport() = %v, want %v", err, tt.want)
			}
			if id.Defined() || !reflect.DeepEqual(got, Report{}) {
				t.Fatalf("OpenReport() returned %+v, %s with error %v", got, id, err)
			}
		})
	}
	// A report well under the cap but with many pieces opens.
	env, _, err := SealReport(edge, bigStorageReport(t, 500))
	if err != nil {
		t.Fatal(err)
	}
	if len(env) > MaxReportSize {
		t.Fatalf("500 pieces seal to %d bytes, over %d", len(env), MaxReportSize)
	}
	if _, _, err := OpenReport(env); err != nil {
		t.Fatal(err)
	}
	if _, _, err := SealReport(stranger, r); !errors.Is(err, ErrWrongSigner) {
		t.Fatalf("SealReport(stranger) = %v, want ErrWrongSigner", err)
	}
}
