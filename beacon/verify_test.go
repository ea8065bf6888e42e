package beacon

import (
	"bytes"
	"encoding/hex"
	"encoding/json"
	"errors"
	"fmt"
	"math/big"
	"os"
	"path/filepath"
	"strings"
	"testing"

	"github.com/drand/drand/v2/common"
	kilic "github.com/kilic/bls12-381"
)

// goldenCase is a real beacon of a real chain, from testdata/README.md.
type goldenCase struct {
	name   string
	info   string
	beacon string
}

func goldenCases() []goldenCase {
	return []goldenCase{
		{"default/2634945", "default_info.json", "default_2634945.json"},
		{"default/367", "default_info.json", "default_367.json"},
		{"quicknet/1000", "quicknet_info.json", "quicknet_1000.json"},
		{"quicknet/10024141", "quicknet_info.json", "quicknet_10024141.json"},
		{"g1test-a/3", "g1test_a_info.json", "g1test_a_3.json"},
		{"g1test-b/2", "g1test_b_info.json", "g1test_b_2.json"},
	}
}

func goldenInfoFiles() []string {
	return []string{"default_info.json", "quicknet_info.json", "g1test_a_info.json", "g1test_b_info.json"}
}

func readGoldenInfo(t testing.TB, file string) Info {
	t.Helper()
	data, err := os.ReadFile(filepath.Join("testdata", file))
	if err != nil {
		t.Fatal(err)
	}
	info, err := ParseInfoJSON(data)
	if err != nil {
		t.Fatalf("%s: %v", file, err)
	}
	return info
}

// goldenBeaconJSON is drand's /public/<round> format.
type goldenBeaconJSON struct {
	Round             uint64 `json:"round"`
	Randomness        string `json:"randomness"`
	Signature         string `json:"signature"`
	PreviousSignature string `json:"previous_signature"`
}

func readGoldenBeacon(t testing.TB, file string) Beacon {
	t.Helper()
	data, err := os.ReadFile(filepath.Join("testdata", file))
	if err != nil {
		t.Fatal(err)
	}
	var j goldenBeaconJSON
	if err := json.Unmarshal(data, &j); err != nil {
		t.Fatalf("%s: %v", file, err)
	}
	b := Beacon{Round: j.Round}
	for _, f := range []struct {
		dst *[]byte
		src string
	}{{&b.Randomness, j.Randomness}, {&b.Signature, j.Signature}, {&b.PreviousSignature, j.PreviousSignature}} {
		if f.src == "" {
			continue
		}
		if *f.dst, err = hex.DecodeString(f.src); err != nil {
			t.Fatalf("%s: %v", file, err)
		}
	}
	return b
}

func goldenVerifier(t testing.TB, file string) *Verifier {
	t.Helper()
	v, err := NewVerifier(readGoldenInfo(t, file))
	if err != nil {
		t.Fatalf("%s: %v", file, err)
	}
	return v
}

func deepCopyBeacon(b Beacon) Beacon {
	b.Signature = bytes.Clone(b.Signature)
	b.PreviousSignature = bytes.Clone(b.PreviousSignature)
	b.Randomness = bytes.Clone(b.Randomness)
	return b
}

// wantInvalid fails unless err wraps ErrInvalid and names the reason.
func wantInvalid(t testing.TB, err error, reason string) {
	t.Helper()
	if !errors.Is(err, ErrInvalid) {
		t.Fatalf("got %v, want ErrInvalid (%s)", err, reason)
	}
	if !strings.Contains(err.Error(), reason) {
		t.Fatalf("got %q, want reason %q", err, reason)
	}
}

func TestVerifyGolden(t *testing.T) {
	for _, c := range goldenCases() {
		t.Run(c.name, func(t *testing.T) {
			v := goldenVerifier(t, c.info)
			b := readGoldenBeacon(t, c.beacon)
			if err := v.Verify(b); err != nil {
				t.Fatal(err)
			}
			bare := b
			bare.Randomness = nil
			if err := v.Verify(bare); err != nil {
				t.Fatalf("without randomness: %v", err)
			}
			if got := Complete(bare).Randomness; !bytes.Equal(got, b.Randomness) {
				t.Fatalf("Complete: randomness %x, want %x", got, b.Randomness)
			}
		})
	}
}

func TestVerifyGoldenFlippedSignatureBit(t *testing.T) {
	for _, c := range goldenCases() {
		t.Run(c.name, func(t *testing.T) {
			t.Parallel()
			v := goldenVerifier(t, c.info)
			b := readGoldenBeacon(t, c.beacon)
			b.Randomness = nil // so that the signature check, not the hash, refuses
			for bit := range len(b.Signature) * 8 {
				m := deepCopyBeacon(b)
				m.Signature[bit/8] ^= 0x80 >> (bit % 8)
				if err := v.Verify(m); !errors.Is(err, ErrInvalid) {
					t.Fatalf("bit %d flipped: got %v, want ErrInvalid", bit, err)
				}
			}
		})
	}
}

func TestVerifyGoldenFlippedPreviousSignatureBit(t *testing.T) {
	for _, c := range goldenCases() {
		b := readGoldenBeacon(t, c.beacon)
		if len(b.PreviousSignature) == 0 {
			continue
		}
		t.Run(c.name, func(t *testing.T) {
			t.Parallel()
			v := goldenVerifier(t, c.info)
			// Each of these costs a full pairing: one bit per byte, at a
			// position that moves with the byte.
			for i := range b.PreviousSignature {
				m := deepCopyBeacon(b)
				m.PreviousSignature[i] ^= 1 << (i % 8)
				wantInvalid(t, v.Verify(m), "bad signature")
			}
		})
	}
}

func TestVerifyGoldenOtherChain(t *testing.T) {
	for _, c := range goldenCases() {
		b := readGoldenBeacon(t, c.beacon)
		for _, file := range goldenInfoFiles() {
			if file == c.info {
				continue
			}
			t.Run(c.name+"/"+file, func(t *testing.T) {
				err := goldenVerifier(t, file).Verify(b)
				if !errors.Is(err, ErrInvalid) {
					t.Fatalf("got %v, want ErrInvalid", err)
				}
			})
		}
	}
}

func TestVerifyGoldenWrongRound(t *testing.T) {
	for _, c := range goldenCases() {
		t.Run(c.name, func(t *testing.T) {
			v := goldenVerifier(t, c.info)
			b := readGoldenBeacon(t, c.beacon)
			for _, r := range []uint64{b.Round - 1, b.Round + 1, b.Round + 1<<32} {
				m := deepCopyBeacon(b)
				m.Round = r
				wantInvalid(t, v.Verify(m), "bad signature")
			}
		})
	}
}

func TestVerifyWrongRandomness(t *testing.T) {
	for _, c := range goldenCases() {
		t.Run(c.name, func(t *testing.T) {
			v := goldenVerifier(t, c.info)
			b := readGoldenBeacon(t, c.beacon)
			for name, mutate := range map[string]func(r []byte) []byte{
				"flipped":   func(r []byte) []byte { r[31] ^= 1; return r },
				"truncated": func(r []byte) []byte { return r[:31] },
				"extended":  func(r []byte) []byte { return append(r, 0) },
				"of-prev":   func([]byte) []byte { return Complete(Beacon{Signature: b.PreviousSignature}).Randomness },
			} {
				m := deepCopyBeacon(b)
				m.Randomness = mutate(m.Randomness)
				if err := v.Verify(m); !errors.Is(err, ErrInvalid) || !strings.Contains(err.Error(), "randomness") {
					t.Fatalf("%s: got %v, want ErrInvalid for randomness", name, err)
				}
			}
		})
	}
}

func TestVerifyRefusesMalformed(t *testing.T) {
	quick := goldenVerifier(t, "quicknet_info.json")
	def := goldenVerifier(t, "default_info.json")
	qb := readGoldenBeacon(t, "quicknet_1000.json")
	db := readGoldenBeacon(t, "default_2634945.json")

	infinity := func(n int, first byte) []byte {
		s := make([]byte, n)
		s[0] = first
		return s
	}
	// The default beacon's signature has x = c1·u + c0 with c1 small
	// enough that c1+p still fits in 381 bits: a non-canonical encoding of
	// the same point, which must not give a second randomness.
	nonCanonical := deepCopyBeacon(db)
	nonCanonical.Randomness = nil
	addModulusToFirstCoordinate(t, nonCanonical.Signature)

	cases := []struct {
		name   string
		v      *Verifier
		b      Beacon
		reason string
	}{
		{"round 0", quick, Beacon{Round: 0, Signature: qb.Signature}, "round 0"},
		{"empty signature", quick, Beacon{Round: qb.Round}, "signature is 0 bytes"},
		{"short signature", quick, Beacon{Round: qb.Round, Signature: qb.Signature[:47]}, "signature is 47 bytes"},
		{"long signature", quick, Beacon{Round: qb.Round, Signature: append(bytes.Clone(qb.Signature), 0)}, "signature is 49 bytes"},
		{"G2 signature on G1 chain", quick, Beacon{Round: db.Round, Signature: db.Signature}, "signature is 96 bytes"},
		{"infinity G1", quick, Beacon{Round: qb.Round, Signature: infinity(48, 0xc0)}, "infinity"},
		{"infinity G1 with sign bit", quick, Beacon{Round: qb.Round, Signature: infinity(48, 0xe0)}, "infinity"},
		{"infinity G2", def, Beacon{Round: db.Round, Signature: infinity(96, 0xc0), PreviousSignature: db.PreviousSignature}, "infinity"},
		{"uncompressed flag", quick, Beacon{Round: qb.Round, Signature: append([]byte{qb.Signature[0] &^ 0x80}, qb.Signature[1:]...)}, "canonical point"},
		{"chained without previous", def, Beacon{Round: db.Round, Signature: db.Signature}, "without previous signature"},
		{"oversized previous", def, Beacon{Round: db.Round, Signature: db.Signature, PreviousSignature: append(bytes.Clone(db.PreviousSignature), 0)}, "more than a signature"},
		{"unchained with previous", quick, Beacon{Round: qb.Round, Signature: qb.Signature, PreviousSignature: db.PreviousSignature}, "with a previous signature"},
		{"non-canonical x (G2)", def, nonCanonical, "canonical point"},
	}
	for _, c := range cases {
		t.Run(c.name, func(t *testing.T) {
			wantInvalid(t, c.v.Verify(c.b), c.reason)
		})
	}
}

func TestVerifyRefusesNonCanonicalG1(t *testing.T) {
	s := DevnetSigner()
	v, err := NewVerifier(s.Info())
	if err != nil {
		t.Fatal(err)
	}
	// About a quarter of G1 points have x < 2^381 - p; find one.
	for round := uint64(1); round < 200; round++ {
		b, err := s.Sign(round)
		if err != nil {
			t.Fatal(err)
		}
		x := new(big.Int).SetBytes(append([]byte{b.Signature[0] & 0x1f}, b.Signature[1:]...))
		if new(big.Int).Add(x, blsP()).BitLen() > 381 {
			continue
		}
		m := deepCopyBeacon(b)
		m.Randomness = nil
		addModulusToFirstCoordinate(t, m.Signature)
		wantInvalid(t, v.Verify(m), "canonical point")
		return
	}
	t.Fatal("no signature with a small enough x in 200 rounds")
}

// addModulusToFirstCoordinate rewrites a compressed point's leading field
// element x as x+p, keeping the flags.
func addModulusToFirstCoordinate(t *testing.T, sig []byte) {
	t.Helper()
	flags := sig[0] & 0xe0
	x := new(big.Int).SetBytes(append([]byte{sig[0] & 0x1f}, sig[1:48]...))
	x.Add(x, blsP())
	if x.BitLen() > 381 {
		t.Fatalf("x+p does not fit in 381 bits")
	}
	x.FillBytes(sig[:48])
	sig[0] |= flags
}

// TestVerifyRefusesTorsionMalleation adds a non-zero point whose order
// divides the cofactor to real signatures. The result is on the curve,
// encodes differently, hence would give a different randomness for the
// same round, and passes the pairing check when the subgroup check is
// skipped (TestTorsionMalleationPassesPairing); it must be refused.
func TestVerifyRefusesTorsionMalleation(t *testing.T) {
	dev := DevnetSigner()
	devBeacon, err := dev.Sign(42)
	if err != nil {
		t.Fatal(err)
	}
	cases := []struct {
		name string
		info Info
		b    Beacon
		g2   bool
	}{
		{"quicknet/1000", readGoldenInfo(t, "quicknet_info.json"), readGoldenBeacon(t, "quicknet_1000.json"), false},
		{"g1test-a/3", readGoldenInfo(t, "g1test_a_info.json"), readGoldenBeacon(t, "g1test_a_3.json"), false},
		{"devnet/42", dev.Info(), devBeacon, false},
		{"default/2634945", readGoldenInfo(t, "default_info.json"), readGoldenBeacon(t, "default_2634945.json"), true},
	}
	for _, c := range cases {
		t.Run(c.name, func(t *testing.T) {
			v, err := NewVerifier(c.info)
			if err != nil {
				t.Fatal(err)
			}
			curve := blsG1()
			if c.g2 {
				curve = blsG2()
			}
			s, err := curve.decompress(c.b.Signature)
			if err != nil {
				t.Fatal(err)
			}
			// Check the test's own arithmetic: the signature round-trips and
			// lies in the order-r subgroup.
			if got := curve.compress(s); !bytes.Equal(got, c.b.Signature) {
				t.Fatalf("helper round trip: %x, want %x", got, c.b.Signature)
			}
			if !curve.mul(blsR(), s).inf {
				t.Fatal("helper: signature is not of order r")
			}
			tor := curve.torsionPoint(t)
			mal := curve.add(s, tor)
			m := deepCopyBeacon(c.b)
			m.Signature = curve.compress(mal)
			m.Randomness = nil
			if bytes.Equal(m.Signature, c.b.Signature) {
				t.Fatal("malleated signature encodes as the original")
			}
			if !curve.onCurve(mal) || curve.mul(blsR(), mal).inf {
				t.Fatal("helper: malleated point should be on the curve and outside the subgroup")
			}
			wantInvalid(t, v.Verify(m), "prime-order subgroup")
		})
	}
}

// TestTorsionMalleationPassesPairing shows why the subgroup check is
// load-bearing: loaded without it (kilic's FromBytes checks only that the
// point is on the curve), a malleated G1 signature passes the same pairing
// product as the genuine one. If this ever fails, the library has changed
// and TestVerifyRefusesTorsionMalleation may no longer test an attack.
func TestTorsionMalleationPassesPairing(t *testing.T) {
	v := goldenVerifier(t, "quicknet_info.json")
	b := readGoldenBeacon(t, "quicknet_1000.json")
	curve := blsG1()
	s, err := curve.decompress(b.Signature)
	if err != nil {
		t.Fatal(err)
	}
	mal := curve.add(s, curve.torsionPoint(t))
	g1, g2 := kilic.NewG1(), kilic.NewG2()
	pk, err := g2.FromCompressed(v.info.PublicKey)
	if err != nil {
		t.Fatal(err)
	}
	hm, err := g1.HashToCurve(v.scheme.DigestBeacon(&common.Beacon{Round: b.Round}), []byte("BLS_SIG_BLS12381G1_XMD:SHA-256_SSWU_RO_NUL_"))
	if err != nil {
		t.Fatal(err)
	}
	for _, c := range []struct {
		name     string
		p        curvePoint
		subgroup bool
	}{{"genuine", s, true}, {"malleated", mal, false}} {
		raw := make([]byte, 96)
		c.p.x.c0.FillBytes(raw[:48])
		c.p.y.c0.FillBytes(raw[48:])
		sig, err := g1.FromBytes(raw)
		if err != nil {
			t.Fatalf("%s: %v", c.name, err)
		}
		if g1.InCorrectSubgroup(sig) != c.subgroup {
			t.Fatalf("%s: in subgroup = %v, want %v", c.name, !c.subgroup, c.subgroup)
		}
		e := kilic.NewEngine()
		e.AddPair(hm, pk)
		e.AddPairInv(sig, g2.One())
		if !e.Check() {
			t.Fatalf("%s: pairing product does not check", c.name)
		}
	}
}

func TestNewVerifierRefuses(t *testing.T) {
	q := Quicknet()
	withHash := func(i Info) Info {
		h, err := i.ComputeHash()
		if err == nil {
			i.Hash = h
		}
		return i
	}
	identityG2 := make([]byte, 96)
	identityG2[0] = 0xc0

	cases := []struct {
		name   string
		info   Info
		reason string
	}{
		{"hash mismatch", func() Info { i := Quicknet(); i.Hash[0] ^= 1; return i }(), "does not match"},
		{"no hash", func() Info { i := Quicknet(); i.Hash = nil; return i }(), "does not match"},
		{"unchained G2 scheme", func() Info { i := Default(); i.Scheme = "pedersen-bls-unchained"; return i }(), "unsupported"},
		{"bn254 scheme", func() Info { i := q; i.Scheme = "bls-bn254-unchained-on-g1"; return i }(), "unsupported"},
		{"empty scheme", func() Info { i := Default(); i.Scheme = ""; return i }(), "unsupported"},
		{"key of the other group", func() Info { i := Quicknet(); i.Scheme = "pedersen-bls-chained"; return i }(), "public key is 96 bytes"},
		{"identity key", withHash(Info{PublicKey: identityG2, Scheme: q.Scheme, Period: q.Period, GenesisTime: q.GenesisTime, GenesisSeed: q.GenesisSeed, BeaconID: "x"}), "identity"},
		{"key off the curve", func() Info { i := Quicknet(); i.PublicKey[20] ^= 1; return i }(), "public key"},
		{"scheme not covered by the hash", func() Info { i := Quicknet(); i.Scheme = "bls-unchained-on-g1"; return i }(), "that chain uses"},
		{"zero period", func() Info { i := Quicknet(); i.Period = 0; return i }(), "period"},
		{"sub-second period", func() Info { i := Quicknet(); i.Period = 1500e6; return i }(), "period"},
		{"no group hash", func() Info { i := Quicknet(); i.GenesisSeed = nil; return i }(), "group hash"},
	}
	for _, c := range cases {
		t.Run(c.name, func(t *testing.T) {
			_, err := NewVerifier(c.info)
			if err == nil || !strings.Contains(err.Error(), c.reason) {
				t.Fatalf("got %v, want an error about %q", err, c.reason)
			}
		})
	}
}

func TestVerifierInfoIsACopy(t *testing.T) {
	v, err := NewVerifier(Quicknet())
	if err != nil {
		t.Fatal(err)
	}
	i := v.Info()
	i.PublicKey[0] ^= 0xff
	i.Hash[0] ^= 0xff
	if got := v.Info(); !bytes.Equal(got.PublicKey, Quicknet().PublicKey) || !bytes.Equal(got.Hash, Quicknet().Hash) {
		t.Fatal("mutating Info() changed the verifier's info")
	}
	if err := v.Verify(readGoldenBeacon(t, "quicknet_1000.json")); err != nil {
		t.Fatal(err)
	}
}

func FuzzVerify(f *testing.F) {
	for _, c := range goldenCases() {
		b := readGoldenBeacon(f, c.beacon)
		f.Add(b.Round, b.Signature, b.PreviousSignature, b.Randomness)
	}
	f.Add(uint64(0), []byte{}, []byte{}, []byte{})
	f.Add(uint64(1), make([]byte, 48), []byte(nil), []byte(nil))
	verifiers := []*Verifier{
		goldenVerifier(f, "default_info.json"),
		goldenVerifier(f, "quicknet_info.json"),
		goldenVerifier(f, "g1test_a_info.json"),
	}
	f.Fuzz(func(t *testing.T, round uint64, sig, prev, rnd []byte) {
		for _, v := range verifiers {
			err := v.Verify(Beacon{Round: round, Signature: sig, PreviousSignature: prev, Randomness: rnd})
			if err != nil && !errors.Is(err, ErrInvalid) {
				t.Fatalf("error %v does not wrap ErrInvalid", err)
			}
		}
	})
}

// BLS12-381 arithmetic in math/big, independent of the library under test,
// to build malleated signatures. Fp2 = Fp[u]/(u²+1); G1 points have c1 = 0.

func blsP() *big.Int {
	p, _ := new(big.Int).SetString("1a0111ea397fe69a4b1ba7b6434bacd764774b84f38512bf6730d2a0f6b0f6241eabfffeb153ffffb9feffffffffaaab", 16)
	return p
}

func blsR() *big.Int {
	r, _ := new(big.Int).SetString("73eda753299d7d483339d80809a1d80553bda402fffe5bfeffffffff00000001", 16)
	return r
}

type fp2 struct{ c0, c1 *big.Int }

type fp2Field struct{ p *big.Int }

func (f fp2Field) el(c0, c1 int64) fp2 { return fp2{big.NewInt(c0), big.NewInt(c1)} }
func (f fp2Field) mod(a *big.Int) *big.Int {
	return a.Mod(a, f.p)
}
func (f fp2Field) add(a, b fp2) fp2 {
	return fp2{f.mod(new(big.Int).Add(a.c0, b.c0)), f.mod(new(big.Int).Add(a.c1, b.c1))}
}
func (f fp2Field) sub(a, b fp2) fp2 {
	return fp2{f.mod(new(big.Int).Sub(a.c0, b.c0)), f.mod(new(big.Int).Sub(a.c1, b.c1))}
}
func (f fp2Field) neg(a fp2) fp2 { return f.sub(f.el(0, 0), a) }
func (f fp2Field) mul(a, b fp2) fp2 {
	re := new(big.Int).Sub(new(big.Int).Mul(a.c0, b.c0), new(big.Int).Mul(a.c1, b.c1))
	im := new(big.Int).Add(new(big.Int).Mul(a.c0, b.c1), new(big.Int).Mul(a.c1, b.c0))
	return fp2{f.mod(re), f.mod(im)}
}
func (f fp2Field) inv(a fp2) fp2 {
	n := f.mod(new(big.Int).Add(new(big.Int).Mul(a.c0, a.c0), new(big.Int).Mul(a.c1, a.c1)))
	n.ModInverse(n, f.p)
	return fp2{f.mod(new(big.Int).Mul(a.c0, n)), f.mod(new(big.Int).Neg(new(big.Int).Mul(a.c1, n)))}
}
func (f fp2Field) eq(a, b fp2) bool { return a.c0.Cmp(b.c0) == 0 && a.c1.Cmp(b.c1) == 0 }
func (f fp2Field) isZero(a fp2) bool {
	return a.c0.Sign() == 0 && a.c1.Sign() == 0
}

// sqrt returns a square root of a, or false.
func (f fp2Field) sqrt(a fp2) (fp2, bool) {
	if a.c1.Sign() == 0 {
		if s := new(big.Int).ModSqrt(a.c0, f.p); s != nil {
			return fp2{s, big.NewInt(0)}, true
		}
		// -1 is a non-residue (p = 3 mod 4), so -a0 is a square.
		s := new(big.Int).ModSqrt(f.mod(new(big.Int).Neg(a.c0)), f.p)
		return fp2{big.NewInt(0), s}, true
	}
	n := f.mod(new(big.Int).Add(new(big.Int).Mul(a.c0, a.c0), new(big.Int).Mul(a.c1, a.c1)))
	s := new(big.Int).ModSqrt(n, f.p)
	if s == nil {
		return fp2{}, false
	}
	half := new(big.Int).ModInverse(big.NewInt(2), f.p)
	for _, sign := range []int{1, -1} {
		t := new(big.Int).Add(a.c0, new(big.Int).Mul(big.NewInt(int64(sign)), s))
		t = f.mod(t.Mul(t, half))
		x0 := new(big.Int).ModSqrt(t, f.p)
		if x0 == nil || x0.Sign() == 0 {
			continue
		}
		x1 := new(big.Int).Mul(a.c1, new(big.Int).ModInverse(new(big.Int).Lsh(x0, 1), f.p))
		r := fp2{x0, f.mod(x1)}
		if f.eq(f.mul(r, r), a) {
			return r, true
		}
	}
	return fp2{}, false
}

// lexLargest is the zcash sign flag: y > -y, comparing c1 first.
func (f fp2Field) lexLargest(y fp2) bool {
	half := new(big.Int).Rsh(f.p, 1)
	if y.c1.Sign() != 0 {
		return y.c1.Cmp(half) > 0
	}
	return y.c0.Cmp(half) > 0
}

type curvePoint struct {
	x, y fp2
	inf  bool
}

// blsCurve is y² = x³ + b over Fp (G1, b = 4) or Fp2 (G2, b = 4+4u).
type blsCurve struct {
	f  fp2Field
	b  fp2
	g2 bool
}

func blsG1() blsCurve {
	f := fp2Field{blsP()}
	return blsCurve{f: f, b: f.el(4, 0)}
}

func blsG2() blsCurve {
	f := fp2Field{blsP()}
	return blsCurve{f: f, b: f.el(4, 4), g2: true}
}

func (c blsCurve) rhs(x fp2) fp2 { return c.f.add(c.f.mul(c.f.mul(x, x), x), c.b) }

func (c blsCurve) onCurve(p curvePoint) bool {
	return p.inf || c.f.eq(c.f.mul(p.y, p.y), c.rhs(p.x))
}

func (c blsCurve) add(p, q curvePoint) curvePoint {
	f := c.f
	switch {
	case p.inf:
		return q
	case q.inf:
		return p
	}
	var l fp2
	if f.eq(p.x, q.x) {
		if !f.eq(p.y, q.y) || f.isZero(p.y) {
			return curvePoint{inf: true}
		}
		x2 := f.mul(p.x, p.x)
		l = f.mul(f.add(f.add(x2, x2), x2), f.inv(f.add(p.y, p.y)))
	} else {
		l = f.mul(f.sub(q.y, p.y), f.inv(f.sub(q.x, p.x)))
	}
	x3 := f.sub(f.sub(f.mul(l, l), p.x), q.x)
	y3 := f.sub(f.mul(l, f.sub(p.x, x3)), p.y)
	return curvePoint{x: x3, y: y3}
}

func (c blsCurve) mul(k *big.Int, p curvePoint) curvePoint {
	acc := curvePoint{inf: true}
	for i := k.BitLen() - 1; i >= 0; i-- {
		acc = c.add(acc, acc)
		if k.Bit(i) == 1 {
			acc = c.add(acc, p)
		}
	}
	return acc
}

func (c blsCurve) size() int {
	if c.g2 {
		return 96
	}
	return 48
}

func (c blsCurve) decompress(b []byte) (curvePoint, error) {
	if len(b) != c.size() || b[0]&0x80 == 0 || b[0]&0x40 != 0 {
		return curvePoint{}, fmt.Errorf("not a compressed finite point")
	}
	raw := append([]byte{b[0] & 0x1f}, b[1:]...)
	x := fp2{new(big.Int).SetBytes(raw), big.NewInt(0)}
	if c.g2 {
		x = fp2{new(big.Int).SetBytes(raw[48:]), new(big.Int).SetBytes(raw[:48])}
	}
	y, ok := c.f.sqrt(c.rhs(x))
	if !ok || (!c.g2 && y.c1.Sign() != 0) {
		return curvePoint{}, fmt.Errorf("x is not on the curve")
	}
	if c.f.lexLargest(y) != (b[0]&0x20 != 0) {
		y = c.f.neg(y)
	}
	return curvePoint{x: x, y: y}, nil
}

func (c blsCurve) compress(p curvePoint) []byte {
	out := make([]byte, c.size())
	if c.g2 {
		p.x.c1.FillBytes(out[:48])
		p.x.c0.FillBytes(out[48:])
	} else {
		p.x.c0.FillBytes(out)
	}
	out[0] |= 0x80
	if c.f.lexLargest(p.y) {
		out[0] |= 0x20
	}
	return out
}

// torsionPoint returns r·P for some curve point P: a non-zero point whose
// order divides the cofactor.
func (c blsCurve) torsionPoint(t *testing.T) curvePoint {
	t.Helper()
	for i := int64(1); i < 100; i++ {
		x := c.f.el(i, 0)
		if c.g2 {
			x = c.f.el(i, 1)
		}
		y, ok := c.f.sqrt(c.rhs(x))
		if !ok || (!c.g2 && y.c1.Sign() != 0) {
			continue
		}
		tp := c.mul(blsR(), curvePoint{x: x, y: y})
		if !tp.inf {
			return tp
		}
	}
	t.Fatal("no torsion point found")
	return curvePoint{}
}

// TestVerifyRemembersOnlyWhatVerified: a beacon that verified is answered
// for from memory, by any verifier of its chain; the round with any other
// signature is still refused; the memory is bounded.
func TestVerifyRemembersOnlyWhatVerified(t *testing.T) {
	for _, c := range goldenCases() {
		t.Run(c.name, func(t *testing.T) {
			b := readGoldenBeacon(t, c.beacon)
			if err := goldenVerifier(t, c.info).Verify(b); err != nil {
				t.Fatal(err)
			}
			v := goldenVerifier(t, c.info)
			key := beaconKey{chain: string(v.info.Hash), round: b.Round}
			if !verifiedBeacons.seen(key, signatureDigest(b)) {
				t.Fatal("a beacon that verified is not remembered")
			}
			m := deepCopyBeacon(b)
			m.Randomness = nil
			m.Signature[len(m.Signature)-1] ^= 1
			if err := v.Verify(m); !errors.Is(err, ErrInvalid) {
				t.Fatalf("another signature for a remembered round: %v, want ErrInvalid", err)
			}
			if len(b.PreviousSignature) > 0 {
				m = deepCopyBeacon(b)
				m.PreviousSignature[0] ^= 1
				if err := v.Verify(m); !errors.Is(err, ErrInvalid) {
					t.Fatalf("another previous signature for a remembered round: %v, want ErrInvalid", err)
				}
			}
			if err := v.Verify(b); err != nil {
				t.Fatalf("the remembered beacon again: %v", err)
			}
		})
	}
	memo := &beaconMemo{rounds: make(map[beaconKey][32]byte)}
	for r := range uint64(2 * verifiedMemo) {
		memo.remember(beaconKey{chain: "c", round: r}, [32]byte{1})
	}
	if len(memo.rounds) != verifiedMemo || memo.seen(beaconKey{chain: "c", round: 0}, [32]byte{1}) || !memo.seen(beaconKey{chain: "c", round: 2*verifiedMemo - 1}, [32]byte{1}) {
		t.Fatalf("%d rounds remembered; want the latest %d", len(memo.rounds), verifiedMemo)
	}
}
