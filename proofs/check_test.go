package proofs

import (
	"bytes"
	"encoding/binary"
	"errors"
	"reflect"
	"strings"
	"testing"

	"github.com/fxamacker/cbor/v2"
	"github.com/ipfs/go-cid"
	"github.com/libp2p/go-libp2p/core/crypto"
	"github.com/libp2p/go-libp2p/core/peer"

	"github.com/aropeer/aropeer/wire"
)

// constReader yields one byte forever: a deterministic key source.
type constReader byte

func (r constReader) Read(p []byte) (int, error) {
	for i := range p {
		p[i] = byte(r)
	}
	return len(p), nil
}

func testKey(t testing.TB, seed byte) crypto.PrivKey {
	t.Helper()
	k, _, err := crypto.GenerateEd25519Key(constReader(seed))
	if err != nil {
		t.Fatal(err)
	}
	return k
}

func testID(t testing.TB, k crypto.PrivKey) peer.ID {
	t.Helper()
	id, err := peer.IDFromPrivateKey(k)
	if err != nil {
		t.Fatal(err)
	}
	return id
}

// Keys of the tests: a keeper, an edge, and a stranger.
const (
	keeperSeed   = 1
	edgeSeed     = 2
	strangerSeed = 3
)

func testChallenge(t testing.TB) Challenge {
	t.Helper()
	return Challenge{
		Network: "devnet",
		Epoch:   7,
		Round:   701,
		Keeper:  testID(t, testKey(t, keeperSeed)),
		Edge:    testID(t, testKey(t, edgeSeed)),
		Kind:    KindStorage,
		Attempt: 1,
		Seed:    bytes.Repeat([]byte{0xab}, SeedSize),
		Piece:   &Piece{CID: pieceCID(t, 9), Size: 1 << 20},
	}
}

func testReceipt(t testing.TB) Receipt {
	t.Helper()
	c := testChallenge(t)
	id, err := c.ID()
	if err != nil {
		t.Fatal(err)
	}
	return Receipt{
		Network:      c.Network,
		Epoch:        c.Epoch,
		Round:        c.Round,
		Keeper:       c.Keeper,
		Edge:         c.Edge,
		Kind:         c.Kind,
		Challenge:    id,
		Attempt:      c.Attempt,
		Result:       Fail,
		Reason:       "leaf 17: Merkle path does not reach the piece commitment",
		Measurements: map[string]int64{"rtt_ms": 42, "leaves": 8},
		Evidence:     bytes.Repeat([]byte{1}, 32),
		Attestation:  []byte("insecure-dev attestation"),
	}
}

// envFields splits a canonical envelope into its four fields.
func envFields(t testing.TB, env []byte) (pub, ptype, payload, sig []byte) {
	t.Helper()
	var fields [4][]byte
	for i := range fields {
		if len(env) == 0 {
			t.Fatalf("envelope ends before field %d", i)
		}
		n, w := binary.Uvarint(env[1:])
		if w <= 0 || uint64(len(env)-1-w) < n {
			t.Fatalf("envelope field %d is malformed", i)
		}
		fields[i] = env[1+w : 1+w+int(n)]
		env = env[1+w+int(n):]
	}
	return fields[0], fields[1], fields[2], fields[3]
}

// buildEnv encodes an envelope the way wire.Seal does.
func buildEnv(pub, ptype, payload, sig []byte) []byte {
	var b []byte
	for i, f := range [][]byte{pub, ptype, payload, sig} {
		key := []byte{1<<3 | 2, 2<<3 | 2, 3<<3 | 2, 5<<3 | 2}[i]
		b = append(b, key)
		b = binary.AppendUvarint(b, uint64(len(f)))
		b = append(b, f...)
	}
	return b
}

func TestChallengeRoundTrip(t *testing.T) {
	c := testChallenge(t)
	env, id, err := SealChallenge(testKey(t, keeperSeed), c)
	if err != nil {
		t.Fatal(err)
	}
	got, gotID, err := OpenChallenge(env)
	if err != nil {
		t.Fatal(err)
	}
	if !reflect.DeepEqual(got, c) {
		t.Fatalf("opened %+v, sealed %+v", got, c)
	}
	_, want, _ := wire.MarshalCID(c)
	if gotID != id || id != want {
		t.Fatalf("CIDs: open %s, seal %s, payload %s", gotID, id, want)
	}
	// The payload CID names this attempt; ID names the challenge.
	if cid0, _ := c.ID(); cid0 == id {
		t.Fatal("a retry's payload CID equals the challenge ID")
	}
}

func TestReceiptRoundTrip(t *testing.T) {
	full := testReceipt(t)
	bare := testReceipt(t)
	bare.Result, bare.Reason, bare.Measurements, bare.Evidence, bare.Attestation = Pass, "", nil, nil, nil
	for name, r := range map[string]Receipt{"full": full, "bare": bare} {
		t.Run(name, func(t *testing.T) {
			env, id, err := SealReceipt(testKey(t, keeperSeed), r)
			if err != nil {
				t.Fatal(err)
			}
			got, gotID, err := OpenReceipt(env)
			if err != nil {
				t.Fatal(err)
			}
			if !reflect.DeepEqual(got, r) {
				t.Fatalf("opened %+v, sealed %+v", got, r)
			}
			if gotID != id {
				t.Fatalf("open CID %s, seal CID %s", gotID, id)
			}
		})
	}
}

func TestChallengeValidate(t *testing.T) {
	tests := []struct {
		name string
		edit func(*Challenge)
		ok   bool
	}{
		{"valid", func(*Challenge) {}, true},
		{"dotted network", func(c *Challenge) { c.Network = "aro.test-net_1" }, true},
		{"no network", func(c *Challenge) { c.Network = "" }, false},
		{"network with slash", func(c *Challenge) { c.Network = "a/b" }, false},
		{"network too long", func(c *Challenge) { c.Network = strings.Repeat("n", MaxNetworkLen+1) }, false},
		{"round 0", func(c *Challenge) { c.Round = 0 }, false},
		{"no keeper", func(c *Challenge) { c.Keeper = "" }, false},
		{"garbage keeper", func(c *Challenge) { c.Keeper = "not a multihash" }, false},
		{"no edge", func(c *Challenge) { c.Edge = "" }, false},
		{"keeper is edge", func(c *Challenge) { c.Edge = c.Keeper }, false},
		{"unknown kind", func(c *Challenge) { c.Kind = "gpu" }, false},
		{"no kind", func(c *Challenge) { c.Kind = "" }, false},
		{"short seed", func(c *Challenge) { c.Seed = c.Seed[:31] }, false},
		{"long seed", func(c *Challenge) { c.Seed = append(c.Seed, 0) }, false},
		{"no seed", func(c *Challenge) { c.Seed = nil }, false},
		{"storage without a piece", func(c *Challenge) { c.Piece = nil }, false},
		{"liveness naming a piece", func(c *Challenge) { c.Kind = KindLiveness }, false},
		{"liveness", func(c *Challenge) { c.Kind, c.Piece = KindLiveness, nil }, true},
		{"faulty piece", func(c *Challenge) { c.Piece.Faulty = true }, false},
		{"piece of odd size", func(c *Challenge) { c.Piece.Size = 1000 }, false},
		{"piece not a piece CID", func(c *Challenge) { c.Piece.CID = wireCID(t) }, false},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			c := testChallenge(t)
			tt.edit(&c)
			err := c.Validate()
			if tt.ok != (err == nil) {
				t.Fatalf("Validate = %v, want ok=%v", err, tt.ok)
			}
			if err != nil && !errors.Is(err, ErrInvalid) {
				t.Fatalf("Validate = %v, want ErrInvalid", err)
			}
		})
	}
}

func TestReceiptValidate(t *testing.T) {
	dagPB := cid.NewCidV0(testReceiptCID(t).Hash())
	tests := []struct {
		name string
		edit func(*Receipt)
		ok   bool
	}{
		{"valid", func(*Receipt) {}, true},
		{"pass with reason", func(r *Receipt) { r.Result, r.Reason = Pass, "fast" }, true},
		{"timeout", func(r *Receipt) { r.Result, r.Reason = Timeout, "no answer in 2s" }, true},
		{"16 measurements", func(r *Receipt) { r.Measurements = measurements(16) }, true},
		{"no network", func(r *Receipt) { r.Network = "" }, false},
		{"round 0", func(r *Receipt) { r.Round = 0 }, false},
		{"no keeper", func(r *Receipt) { r.Keeper = "" }, false},
		{"keeper is edge", func(r *Receipt) { r.Keeper = r.Edge }, false},
		{"unknown kind", func(r *Receipt) { r.Kind = "Storage" }, false},
		{"no challenge", func(r *Receipt) { r.Challenge = cid.Undef }, false},
		{"challenge not dag-cbor", func(r *Receipt) { r.Challenge = dagPB }, false},
		{"no result", func(r *Receipt) { r.Result = "" }, false},
		{"unknown result", func(r *Receipt) { r.Result = "maybe" }, false},
		{"fail without reason", func(r *Receipt) { r.Reason = "" }, false},
		{"timeout without reason", func(r *Receipt) { r.Result, r.Reason = Timeout, "" }, false},
		{"long reason", func(r *Receipt) { r.Reason = strings.Repeat("x", MaxReasonLen+1) }, false},
		{"17 measurements", func(r *Receipt) { r.Measurements = measurements(17) }, false},
		{"empty key", func(r *Receipt) { r.Measurements = map[string]int64{"": 1} }, false},
		{"long key", func(r *Receipt) { r.Measurements = map[string]int64{strings.Repeat("k", MaxMeasurementKeyLen+1): 1} }, false},
		{"odd key", func(r *Receipt) { r.Measurements = map[string]int64{"RTT ms": 1} }, false},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			r := testReceipt(t)
			tt.edit(&r)
			err := r.Validate()
			if tt.ok != (err == nil) {
				t.Fatalf("Validate = %v, want ok=%v", err, tt.ok)
			}
			if err != nil && !errors.Is(err, ErrInvalid) {
				t.Fatalf("Validate = %v, want ErrInvalid", err)
			}
		})
	}
}

func testReceiptCID(t testing.TB) cid.Cid {
	t.Helper()
	_, id, err := wire.MarshalCID(testReceipt(t))
	if err != nil {
		t.Fatal(err)
	}
	return id
}

func measurements(n int) map[string]int64 {
	m := make(map[string]int64, n)
	for i := range n {
		m["m_"+string(rune('a'+i))] = int64(i)
	}
	return m
}

func TestSealRefuses(t *testing.T) {
	stranger := testKey(t, strangerSeed)
	if _, _, err := SealChallenge(stranger, testChallenge(t)); !errors.Is(err, ErrWrongSigner) {
		t.Errorf("SealChallenge with another key: %v, want ErrWrongSigner", err)
	}
	if _, _, err := SealReceipt(stranger, testReceipt(t)); !errors.Is(err, ErrWrongSigner) {
		t.Errorf("SealReceipt with another key: %v, want ErrWrongSigner", err)
	}
	c := testChallenge(t)
	c.Seed = nil
	if _, _, err := SealChallenge(testKey(t, keeperSeed), c); !errors.Is(err, ErrInvalid) {
		t.Errorf("SealChallenge of an invalid challenge: %v, want ErrInvalid", err)
	}
	r := testReceipt(t)
	r.Result = ""
	if _, _, err := SealReceipt(testKey(t, keeperSeed), r); !errors.Is(err, ErrInvalid) {
		t.Errorf("SealReceipt of an invalid receipt: %v, want ErrInvalid", err)
	}
}

// sealRaw signs payload under d, bypassing the checks of the Seal functions.
func sealRaw(t testing.TB, key crypto.PrivKey, d wire.Domain, payload []byte) []byte {
	t.Helper()
	env, err := wire.Seal(key, d, payload)
	if err != nil {
		t.Fatal(err)
	}
	return env
}

func mustMarshal(t testing.TB, v any) []byte {
	t.Helper()
	b, err := wire.Marshal(v)
	if err != nil {
		t.Fatal(err)
	}
	return b
}

// nonCanonical encodes v as CBOR with struct fields in declaration order,
// which is not the canonical (length-first) key order.
func nonCanonical(t testing.TB, v any) []byte {
	t.Helper()
	b, err := cbor.Marshal(v)
	if err != nil {
		t.Fatal(err)
	}
	if bytes.Equal(b, mustMarshal(t, v)) {
		t.Fatal("test encoding is canonical")
	}
	return b
}

func TestOpenRefuses(t *testing.T) {
	keeper, stranger := testKey(t, keeperSeed), testKey(t, strangerSeed)
	c, r := testChallenge(t), testReceipt(t)
	cBytes, rBytes := mustMarshal(t, c), mustMarshal(t, r)
	invalidR := r
	invalidR.Reason = ""
	invalidC := c
	invalidC.Kind = "gpu"
	big := r
	big.Attestation = make([]byte, MaxReceiptSize)
	openC := func(env []byte) error { _, _, err := OpenChallenge(env); return err }
	openR := func(env []byte) error { _, _, err := OpenReceipt(env); return err }
	tests := []struct {
		name string
		open func([]byte) error
		env  []byte
		want error
	}{
		{"receipt as challenge", openC, sealRaw(t, keeper, ChallengeDomain, rBytes), nil},
		{"challenge as receipt", openR, sealRaw(t, keeper, ReceiptDomain, cBytes), nil},
		{"receipt opened as challenge", openC, sealRaw(t, keeper, ReceiptDomain, rBytes), wire.ErrWrongPayloadType},
		{"challenge opened as receipt", openR, sealRaw(t, keeper, ChallengeDomain, cBytes), wire.ErrWrongPayloadType},
		{"receipt signed in another domain", openR,
			sealRaw(t, keeper, wire.Domain{Name: "aro-challenge", PayloadType: ReceiptDomain.PayloadType}, rBytes), wire.ErrBadSignature},
		{"challenge by a stranger", openC, sealRaw(t, stranger, ChallengeDomain, cBytes), ErrWrongSigner},
		{"receipt by a stranger", openR, sealRaw(t, stranger, ReceiptDomain, rBytes), ErrWrongSigner},
		{"challenge over cap", openC, make([]byte, MaxChallengeSize+1), wire.ErrTooLarge},
		{"receipt over cap", openR, sealRaw(t, keeper, ReceiptDomain, mustMarshal(t, big)), wire.ErrTooLarge},
		{"non-canonical challenge", openC, sealRaw(t, keeper, ChallengeDomain, nonCanonical(t, c)), wire.ErrNonCanonical},
		{"non-canonical receipt", openR, sealRaw(t, keeper, ReceiptDomain, nonCanonical(t, r)), wire.ErrNonCanonical},
		{"invalid challenge", openC, sealRaw(t, keeper, ChallengeDomain, mustMarshal(t, invalidC)), ErrInvalid},
		{"invalid receipt", openR, sealRaw(t, keeper, ReceiptDomain, mustMarshal(t, invalidR)), ErrInvalid},
		{"truncated receipt", openR, sealRaw(t, keeper, ReceiptDomain, rBytes)[:100], wire.ErrBadEnvelope},
		{"empty", openR, nil, wire.ErrBadEnvelope},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			err := tt.open(tt.env)
			if err == nil {
				t.Fatal("opened")
			}
			if tt.want != nil && !errors.Is(err, tt.want) {
				t.Fatalf("err = %v, want %v", err, tt.want)
			}
			if !strings.HasPrefix(err.Error(), "proofs: ") {
				t.Fatalf("err = %q, want a proofs: prefix", err)
			}
		})
	}
}

// TestReceiptReplay shows that a receipt cannot be moved to another round,
// epoch, edge, network, kind, challenge or attempt: each is inside the
// signed payload, so splicing an edited payload under the original
// signature fails, and a receipt re-signed by another key is not the
// keeper's.
func TestReceiptReplay(t *testing.T) {
	keeper := testKey(t, keeperSeed)
	env, _, err := SealReceipt(keeper, testReceipt(t))
	if err != nil {
		t.Fatal(err)
	}
	pub, ptype, payload, sig := envFields(t, env)
	if !bytes.Equal(buildEnv(pub, ptype, payload, sig), env) {
		t.Fatal("test envelope codec does not rebuild the sealed envelope")
	}
	other := testChallenge(t)
	other.Round++
	otherID, err := other.ID()
	if err != nil {
		t.Fatal(err)
	}
	edits := map[string]func(*Receipt){
		"round":     func(r *Receipt) { r.Round++ },
		"epoch":     func(r *Receipt) { r.Epoch++ },
		"edge":      func(r *Receipt) { r.Edge = testID(t, testKey(t, strangerSeed)) },
		"network":   func(r *Receipt) { r.Network = "mainnet" },
		"kind":      func(r *Receipt) { r.Kind = KindCompute },
		"challenge": func(r *Receipt) { r.Challenge = otherID },
		"attempt":   func(r *Receipt) { r.Attempt++ },
		"result":    func(r *Receipt) { r.Result, r.Reason = Pass, "" },
	}
	for name, edit := range edits {
		t.Run(name, func(t *testing.T) {
			var r Receipt
			if err := wire.Unmarshal(payload, &r, MaxReceiptSize); err != nil {
				t.Fatal(err)
			}
			edit(&r)
			if err := r.Validate(); err != nil {
				t.Fatalf("edited receipt is invalid on its own (%v): the test would prove nothing", err)
			}
			forged := buildEnv(pub, ptype, mustMarshal(t, r), sig)
			if _, _, err := OpenReceipt(forged); !errors.Is(err, wire.ErrBadSignature) {
				t.Fatalf("spliced receipt: err = %v, want ErrBadSignature", err)
			}
			// Signed afresh by anyone but its keeper, it is refused too.
			resigned := sealRaw(t, testKey(t, strangerSeed), ReceiptDomain, mustMarshal(t, r))
			if _, _, err := OpenReceipt(resigned); !errors.Is(err, ErrWrongSigner) {
				t.Fatalf("re-signed receipt: err = %v, want ErrWrongSigner", err)
			}
		})
	}
}

// wireCID is a dag-cbor CID, not a piece CID.
func wireCID(t testing.TB) cid.Cid {
	t.Helper()
	return wire.CIDOf([]byte("not a piece"))
}

// TestKeptChallenge: a challenge this node kept decodes under its ID,
// whatever its attempt, and not under another's.
func TestKeptChallenge(t *testing.T) {
	c := testChallenge(t) // attempt 1: its ID is its first attempt's
	env, _, err := SealChallenge(testKey(t, keeperSeed), c)
	if err != nil {
		t.Fatal(err)
	}
	id, err := c.ID()
	if err != nil {
		t.Fatal(err)
	}
	if got, err := KeptChallenge(env, id); err != nil || !reflect.DeepEqual(got, c) {
		t.Errorf("KeptChallenge = %+v, %v; want %+v", got, err, c)
	}
	other := c
	other.Round++
	otherID, err := other.ID()
	if err != nil {
		t.Fatal(err)
	}
	if _, err := KeptChallenge(env, otherID); err == nil {
		t.Error("a challenge decoded under another challenge's ID")
	}
	if _, err := KeptChallenge([]byte("garbage"), id); err == nil {
		t.Error("garbage decoded")
	}
}

// TestChallengeIDOf: from its payload, a challenge's ID is the one ID
// computes, for a first attempt and a retry alike.
func TestChallengeIDOf(t *testing.T) {
	for _, attempt := range []uint32{0, 2} {
		c := testChallenge(t)
		c.Attempt = attempt
		payload, err := wire.Marshal(c)
		if err != nil {
			t.Fatal(err)
		}
		want, err := c.ID()
		if err != nil {
			t.Fatal(err)
		}
		if got, err := c.IDOf(payload); err != nil || got != want {
			t.Errorf("attempt %d: IDOf = %s, %v; want %s", attempt, got, err, want)
		}
	}
}
