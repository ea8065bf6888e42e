package beacon

import (
	"bytes"
	"crypto/sha256"
	"crypto/sha512"
	"encoding/hex"
	"encoding/json"
	"math/big"
	"reflect"
	"strings"
	"testing"
	"time"

	"github.com/drand/drand/v2/crypto"
)

// The devnet chain, pinned: every devnet node derives it on its own, so a
// change to the key derivation must show up here first.
const (
	devnetPublicKeyHex = "8cb96eff0544a321f5c0e769cae53a76bd0cdb4b039fda0340a842eb32ea6775d3a1dd5126704fb3c4a95a72b0d1d8c3165675d9f158ef63522e53001e91933cfce691515bba24dbfb412b4d0de9772be90911b81a2a8cfde0dc488d391c89d0"
	devnetHashHex      = "af9f73e6c33cf6b2a2be4c85975261d7d12d6ffabf91da2235fc99a88ee8f47c"
	devnetRound1SigHex = "b19a0a1836bdb11aba1dd9e2f2c876434bd081b3136fb4ca8f5e49a982617daeb2d4d209526ffb3d8d45ef961fb0066b"
	// The standard compressed generator of BLS12-381 G2.
	g2GeneratorHex = "93e02b6052719f607dacd3a088274f65596bd0d09920b61ab5da61bbdc7f5049334cf11213945d57e5ac7d055d042b7e024aa2b2f08f0a91260805272dc51051c6e47ad4fa403b02b4510b647ae3d1770bac0326a805bbefd48056c8c121bdb8"
)

func TestDevnetSigner(t *testing.T) {
	s := DevnetSigner()
	i := s.Info()
	if got := hex.EncodeToString(i.PublicKey); got != devnetPublicKeyHex {
		t.Errorf("public key %s, want %s", got, devnetPublicKeyHex)
	}
	if got := i.HashString(); got != devnetHashHex {
		t.Errorf("chain hash %s, want %s", got, devnetHashHex)
	}
	want := Info{
		Hash:        mustHex(devnetHashHex),
		PublicKey:   mustHex(devnetPublicKeyHex),
		Scheme:      "bls-unchained-g1-rfc9380",
		Period:      time.Second,
		GenesisTime: time.Date(2026, 1, 1, 0, 0, 0, 0, time.UTC).Unix(),
		BeaconID:    "aropeer-devnet",
	}
	seed := sha256.Sum256(want.PublicKey)
	want.GenesisSeed = seed[:]
	if !reflect.DeepEqual(i, want) {
		t.Fatalf("devnet info %+v, want %+v", i, want)
	}
	if h, err := i.ComputeHash(); err != nil || !bytes.Equal(h, i.Hash) {
		t.Fatalf("ComputeHash = %x, %v; want %x", h, err, i.Hash)
	}
	b, err := s.Sign(1)
	if err != nil {
		t.Fatal(err)
	}
	if got := hex.EncodeToString(b.Signature); got != devnetRound1SigHex {
		t.Fatalf("round 1 signature %s, want %s", got, devnetRound1SigHex)
	}
	if !reflect.DeepEqual(DevnetSigner().Info(), i) {
		t.Fatal("DevnetSigner is not deterministic")
	}
}

// TestSignerKeyDerivation recomputes the documented derivation without the
// library: sk = SHA-512(domain || secret) mod r, public key = sk·G2 with
// the big-integer curve arithmetic of verify_test.go.
func TestSignerKeyDerivation(t *testing.T) {
	secret := sha256.Sum256([]byte("aropeer devnet beacon"))
	h := sha512.Sum512(append([]byte("aropeer/beacon/signer-key/v1"), secret[:]...))
	sk := new(big.Int).Mod(new(big.Int).SetBytes(h[:]), blsR())

	g2 := blsG2()
	gen, err := g2.decompress(mustHex(g2GeneratorHex))
	if err != nil {
		t.Fatal(err)
	}
	if got := g2.compress(g2.mul(sk, gen)); hex.EncodeToString(got) != devnetPublicKeyHex {
		t.Fatalf("sk·G2 = %x, want the devnet key %s", got, devnetPublicKeyHex)
	}
	base, err := crypto.NewPedersenBLSUnchainedG1().KeyGroup.Point().Base().MarshalBinary()
	if err != nil || hex.EncodeToString(base) != g2GeneratorHex {
		t.Fatalf("library G2 generator %x, %v", base, err)
	}
}

func TestSignerBeaconsVerify(t *testing.T) {
	s := DevnetSigner()
	v, err := NewVerifier(s.Info())
	if err != nil {
		t.Fatal(err)
	}
	for _, round := range []uint64{1, 2, 3, 100, 1 << 32, 1<<64 - 1} {
		b, err := s.Sign(round)
		if err != nil {
			t.Fatal(err)
		}
		if b.Round != round || len(b.Signature) != 48 || len(b.PreviousSignature) != 0 {
			t.Fatalf("round %d: %+v", round, b)
		}
		if r := sha256.Sum256(b.Signature); !bytes.Equal(b.Randomness, r[:]) {
			t.Fatalf("round %d: randomness is not SHA-256(signature)", round)
		}
		if err := v.Verify(b); err != nil {
			t.Fatalf("round %d: %v", round, err)
		}
		again, err := s.Sign(round)
		if err != nil || !reflect.DeepEqual(again, b) {
			t.Fatalf("round %d: signing twice gave %+v, %v", round, again, err)
		}
		wrong := b
		wrong.Round = round - 1
		if round == 1 {
			wrong.Round = 2
		}
		wantInvalid(t, v.Verify(wrong), "bad signature")
	}
	if _, err := s.Sign(0); err == nil {
		t.Fatal("signed round 0")
	}
}

func TestSignerOtherKeyRefused(t *testing.T) {
	dev := DevnetSigner()
	devInfo := dev.Info()
	other, err := NewSigner(bytes.Repeat([]byte{7}, 32), devInfo.Period, devInfo.GenesisTime, devInfo.BeaconID)
	if err != nil {
		t.Fatal(err)
	}
	if bytes.Equal(other.Info().PublicKey, devInfo.PublicKey) || bytes.Equal(other.Info().Hash, devInfo.Hash) {
		t.Fatal("another secret gave the same key or chain")
	}
	devV, err := NewVerifier(devInfo)
	if err != nil {
		t.Fatal(err)
	}
	b, err := other.Sign(5)
	if err != nil {
		t.Fatal(err)
	}
	wantInvalid(t, devV.Verify(b), "bad signature")
	// Same scheme and signature size as quicknet, yet not quicknet's.
	wantInvalid(t, goldenVerifier(t, "quicknet_info.json").Verify(b), "bad signature")
	// And quicknet's beacons are not the devnet's.
	wantInvalid(t, devV.Verify(readGoldenBeacon(t, "quicknet_1000.json")), "bad signature")
}

func TestSignerSecretMatters(t *testing.T) {
	base := bytes.Repeat([]byte{1}, 40)
	a, err := NewSigner(base, time.Second, 0, "x")
	if err != nil {
		t.Fatal(err)
	}
	for i := range base {
		m := bytes.Clone(base)
		m[i] ^= 1
		b, err := NewSigner(m, time.Second, 0, "x")
		if err != nil {
			t.Fatal(err)
		}
		if bytes.Equal(a.Info().PublicKey, b.Info().PublicKey) {
			t.Fatalf("byte %d of the secret does not change the key", i)
		}
	}
}

func TestNewSignerRefuses(t *testing.T) {
	secret := make([]byte, 32)
	cases := []struct {
		name     string
		secret   []byte
		period   time.Duration
		beaconID string
		reason   string
	}{
		{"short secret", secret[:31], time.Second, "x", "at least 32"},
		{"no beacon ID", secret, time.Second, "", "beacon ID"},
		{"zero period", secret, 0, "x", "period"},
		{"sub-second period", secret, 500 * time.Millisecond, "x", "period"},
	}
	for _, c := range cases {
		t.Run(c.name, func(t *testing.T) {
			_, err := NewSigner(c.secret, c.period, 1, c.beaconID)
			if err == nil || !strings.Contains(err.Error(), c.reason) {
				t.Fatalf("got %v, want an error about %q", err, c.reason)
			}
		})
	}
}

func TestSignerInfoJSONRoundTrip(t *testing.T) {
	i := DevnetSigner().Info()
	out, err := json.Marshal(i)
	if err != nil {
		t.Fatal(err)
	}
	got, err := ParseInfoJSON(out)
	if err != nil {
		t.Fatal(err)
	}
	if !reflect.DeepEqual(got, i) {
		t.Fatalf("%+v, want %+v", got, i)
	}
}
