package proofs

import (
	"bytes"
	"encoding/binary"
	"errors"
	"math"
	"math/rand/v2"
	"slices"
	"strings"
	"testing"

	"github.com/ipfs/go-cid"
	"github.com/libp2p/go-libp2p/core/crypto"
	"github.com/libp2p/go-libp2p/core/peer"

	"github.com/aropeer/aropeer/wire"
)

// batchCIDs returns n distinct message CIDs, in no particular order.
func batchCIDs(n int) []cid.Cid {
	out := make([]cid.Cid, n)
	var b [8]byte
	for i := range out {
		binary.BigEndian.PutUint64(b[:], uint64(i))
		out[i] = wire.CIDOf(b[:])
	}
	return out
}

// batchResults returns results of epoch for the edges of seeds, as
// Aggregate would give them (sorted by edge).
func batchResults(t testing.TB, epoch uint64, seeds ...byte) []EdgeResult {
	t.Helper()
	out := make([]EdgeResult, 0, len(seeds))
	for i, s := range seeds {
		n := uint64(i + 1)
		out = append(out, EdgeResult{
			Edge:  aggID(t, s),
			Epoch: epoch,
			Kinds: []KindResult{
				{Kind: KindLiveness, Challenges: 3 * n, Passes: 2 * n, Fails: n, Verified: 666_666},
				{Kind: KindStorage, Challenges: n + 1, Passes: n, Timeouts: 1, Verified: 1 << 20},
			},
			UptimePPM:  666_666,
			Reputation: Reputation{Alpha: 2 * PPM, Beta: PPM},
			Score:      666_666,
			Reward:     20 * n,
			Penalty:    5 * n,
		})
	}
	slices.SortFunc(out, func(a, b EdgeResult) int { return strings.Compare(string(a.Edge), string(b.Edge)) })
	return out
}

// Seeds of the batch tests' keepers and edges.
var (
	batchKeeperSeeds = []byte{41, 42, 43, 44}
	batchEdgeSeeds   = []byte{51, 52, 53, 54, 55}
)

func testBatchInputs(t testing.TB, n int) ([]cid.Cid, []EdgeResult, map[peer.ID]uint64) {
	t.Helper()
	ids := batchCIDs(n)
	byKeeper := make(map[peer.ID]uint64)
	for i := range ids {
		byKeeper[aggID(t, batchKeeperSeeds[i%len(batchKeeperSeeds)])]++
	}
	return ids, batchResults(t, 9, batchEdgeSeeds...), byKeeper
}

func testBatch(t testing.TB, n int) Batch {
	t.Helper()
	ids, rs, byKeeper := testBatchInputs(t, n)
	return BuildBatch("devnet", 9, ids, rs, byKeeper, 3)
}

func TestBatchDeterministic(t *testing.T) {
	ids, rs, byKeeper := testBatchInputs(t, 1000)
	want := BuildBatch("devnet", 9, ids, rs, byKeeper, 3)
	if err := want.Validate(); err != nil {
		t.Fatalf("built batch: %v", err)
	}
	wantEnc := mustMarshal(t, want)
	wantID, err := want.ID()
	if err != nil {
		t.Fatal(err)
	}
	if c := wire.CIDOf(wantEnc); !c.Equals(wantID) {
		t.Fatalf("ID %s is not the CID of the encoding, %s", wantID, c)
	}
	sorted := slices.Clone(ids)
	slices.SortFunc(sorted, func(a, b cid.Cid) int { return bytes.Compare(a.Bytes(), b.Bytes()) })
	if root := NewTree(sorted).Root(); !bytes.Equal(want.Root, root[:]) || want.Receipts != 1000 {
		t.Fatalf("root %x over %d receipts, want %x over 1000", want.Root, want.Receipts, root)
	}
	if len(want.Keepers) != len(batchKeeperSeeds) || want.Keepers[0].Reward != 3*want.Keepers[0].Receipts {
		t.Fatalf("keepers = %+v", want.Keepers)
	}

	rng := rand.New(rand.NewPCG(1, 2))
	for try := range 10 {
		ids2 := slices.Clone(ids)
		rng.Shuffle(len(ids2), func(i, j int) { ids2[i], ids2[j] = ids2[j], ids2[i] })
		if try%2 == 1 {
			ids2 = append(ids2, ids2[:10]...) // duplicates change nothing
		}
		rs2 := slices.Clone(rs)
		rng.Shuffle(len(rs2), func(i, j int) { rs2[i], rs2[j] = rs2[j], rs2[i] })
		byKeeper2 := make(map[peer.ID]uint64)
		for k, v := range byKeeper {
			byKeeper2[k] = v
		}
		byKeeper2[aggID(t, 60)] = 0 // a keeper without receipts is left out
		got := BuildBatch("devnet", 9, ids2, rs2, byKeeper2, 3)
		if enc := mustMarshal(t, got); !bytes.Equal(enc, wantEnc) {
			t.Fatalf("try %d: shuffled inputs gave other bytes", try)
		}
		if id, err := got.ID(); err != nil || !id.Equals(wantID) {
			t.Fatalf("try %d: ID = %s, %v; want %s", try, id, err, wantID)
		}
	}

	// The batch does not share the caller's slices.
	rs[0].Kinds[0].Passes++
	if enc := mustMarshal(t, want); !bytes.Equal(enc, wantEnc) {
		t.Error("batch followed a change to the caller's results")
	}

	// The encoding is canonical: it decodes and names the same batch.
	var dec Batch
	if err := wire.Unmarshal(wantEnc, &dec, MaxBatchSize); err != nil {
		t.Fatalf("decode: %v", err)
	}
	if id, _ := dec.ID(); !id.Equals(wantID) {
		t.Errorf("decoded batch ID %s, want %s", id, wantID)
	}
}

func TestBatchEmpty(t *testing.T) {
	b := BuildBatch("devnet", 9, nil, nil, nil, 3)
	if err := b.Validate(); err != nil {
		t.Fatalf("empty batch: %v", err)
	}
	if b.Receipts != 0 || b.Results == nil || b.Keepers == nil {
		t.Errorf("empty batch = %+v", b)
	}
	if _, err := ProveReceipt(nil, batchCIDs(1)[0]); !errors.Is(err, ErrNotInBatch) {
		t.Errorf("proof in an empty batch: err = %v, want ErrNotInBatch", err)
	}
}

func TestBatchValidate(t *testing.T) {
	tests := []struct {
		name   string
		mutate func(b *Batch)
	}{
		{"empty network", func(b *Batch) { b.Network = "" }},
		{"bad network", func(b *Batch) { b.Network = "dev net" }},
		{"root of 31 bytes", func(b *Batch) { b.Root = b.Root[:31] }},
		{"root of 33 bytes", func(b *Batch) { b.Root = append(slices.Clone(b.Root), 0) }},
		{"no root", func(b *Batch) { b.Root = nil }},
		{"no receipts under a root", func(b *Batch) { b.Receipts, b.Keepers = 0, nil }},
		{"unsorted results", func(b *Batch) { b.Results[0], b.Results[1] = b.Results[1], b.Results[0] }},
		{"duplicate result", func(b *Batch) { b.Results[1] = b.Results[0] }},
		{"result of another epoch", func(b *Batch) { b.Results[2].Epoch++ }},
		{"result without edge", func(b *Batch) { b.Results[0].Edge = "" }},
		{"result with bad edge", func(b *Batch) { b.Results[0].Edge = "x" }},
		{"unsorted kinds", func(b *Batch) {
			k := b.Results[0].Kinds
			k[0], k[1] = k[1], k[0]
		}},
		{"unknown kind", func(b *Batch) { b.Results[0].Kinds[0].Kind = "gpu" }},
		{"challenges not counted", func(b *Batch) { b.Results[0].Kinds[0].Passes++ }},
		{"unsorted keepers", func(b *Batch) { b.Keepers[0], b.Keepers[1] = b.Keepers[1], b.Keepers[0] }},
		{"duplicate keeper", func(b *Batch) { b.Keepers[1].Keeper = b.Keepers[0].Keeper }},
		{"keeper without receipts", func(b *Batch) { b.Keepers[0].Receipts = 0 }},
		{"bad keeper", func(b *Batch) { b.Keepers[0].Keeper = "" }},
		{"more keeper receipts than leaves", func(b *Batch) { b.Keepers[len(b.Keepers)-1].Receipts++ }},
		{"keeper receipts overflow", func(b *Batch) { b.Keepers[0].Receipts = math.MaxUint64 }},
	}
	if err := testBatch(t, 100).Validate(); err != nil {
		t.Fatalf("valid batch: %v", err)
	}
	for _, tc := range tests {
		t.Run(tc.name, func(t *testing.T) {
			b := testBatch(t, 100)
			tc.mutate(&b)
			if err := b.Validate(); !errors.Is(err, ErrInvalid) {
				t.Fatalf("err = %v, want ErrInvalid", err)
			}
			if _, err := SignBatch(testKey(t, batchKeeperSeeds[0]), b); !errors.Is(err, ErrInvalid) {
				t.Errorf("SignBatch: err = %v, want ErrInvalid", err)
			}
		})
	}
}

func TestProveReceiptBatch10k(t *testing.T) {
	const n = 10_000
	ids, rs, byKeeper := testBatchInputs(t, n)
	b := BuildBatch("devnet", 9, ids, rs, byKeeper, 3)

	// ProveReceipt builds the tree each call (O(n)), so every receipt is
	// proved from the tree it builds, and ProveReceipt itself is checked
	// to give those same proofs on a spread of receipts.
	leaves := SortedLeaves(ids)
	tr := NewTree(leaves)
	if r := tr.Root(); !bytes.Equal(r[:], b.Root) {
		t.Fatal("tree of the sorted leaves has another root than the batch")
	}
	for i, c := range leaves {
		p, err := tr.Proof(i)
		if err != nil {
			t.Fatal(err)
		}
		if !p.Leaf.Equals(c) {
			t.Fatalf("proof %d is of %s, want %s", i, p.Leaf, c)
		}
		if err := VerifyInBatch(b, p); err != nil {
			t.Fatalf("receipt %d: %v", i, err)
		}
	}
	for i := 0; i < n; i += 97 {
		id := ids[i] // the input order, not the sorted one
		p, err := ProveReceipt(ids, id)
		if err != nil {
			t.Fatalf("ProveReceipt(%s): %v", id, err)
		}
		q, _ := tr.Proof(int(p.Index))
		if !p.Leaf.Equals(id) || p.Size != n || !slices.EqualFunc(p.Path, q.Path, bytes.Equal) {
			t.Fatalf("ProveReceipt(%s) = leaf %s index %d size %d, not the tree's proof", id, p.Leaf, p.Index, p.Size)
		}
		if err := VerifyInBatch(b, p); err != nil {
			t.Fatalf("receipt %s: %v", id, err)
		}
	}

	// A receipt outside the batch has no proof, and borrowing a member's
	// proof does not make one.
	outside := batchCIDs(n + 1)[n]
	if _, err := ProveReceipt(ids, outside); !errors.Is(err, ErrNotInBatch) {
		t.Errorf("ProveReceipt of a receipt outside: err = %v, want ErrNotInBatch", err)
	}
	for _, i := range []int{0, 1, n / 2, n - 1} {
		p, _ := tr.Proof(i)
		p.Leaf = outside
		if err := VerifyInBatch(b, p); !errors.Is(err, ErrBadProof) {
			t.Errorf("outside receipt on leaf %d's path: err = %v, want ErrBadProof", i, err)
		}
	}
	// A proof of another batch of the epoch does not verify in this one.
	p, err := ProveReceipt(ids[:n-1], ids[0])
	if err != nil {
		t.Fatal(err)
	}
	if err := VerifyInBatch(b, p); !errors.Is(err, ErrBadProof) {
		t.Errorf("proof from a batch without one receipt: err = %v, want ErrBadProof", err)
	}
	// A batch with a malformed root refuses every proof.
	bad := b
	bad.Root = b.Root[:16]
	if err := VerifyInBatch(bad, p); !errors.Is(err, ErrBadProof) {
		t.Errorf("batch with a short root: err = %v, want ErrBadProof", err)
	}
}

// TestProveReceiptWrongSize shows why the batch carries its leaf count: a
// proof whose size is changed still verifies against the root as a raw
// RFC 6962 proof, and VerifyInBatch refuses it.
func TestProveReceiptWrongSize(t *testing.T) {
	const n = 10_000
	ids := batchCIDs(n)
	b := BuildBatch("devnet", 9, ids, nil, nil, 0)
	tr := NewTree(SortedLeaves(ids))
	root := [32]byte(b.Root)
	found := 0
	for _, i := range []int{0, 1, 4095, 8191} {
		p, err := tr.Proof(i)
		if err != nil {
			t.Fatal(err)
		}
		for _, size := range []uint64{n - 1, n + 1, 8193, 16384} {
			q := p
			q.Size = size
			if q.Verify(root) != nil {
				continue // this size changes the path's shape
			}
			found++
			if err := VerifyInBatch(b, q); !errors.Is(err, ErrBadProof) {
				t.Errorf("leaf %d as size %d: VerifyInBatch err = %v, want ErrBadProof", i, size, err)
			}
		}
	}
	if found == 0 {
		t.Fatal("no wrong size verified as a raw proof: the test shows nothing")
	}
	t.Logf("%d proofs with a wrong size verified as raw RFC 6962 proofs; VerifyInBatch refused them all", found)
	// And a batch that lies about its count refuses the true proofs.
	p, _ := tr.Proof(0)
	lying := b
	lying.Receipts = n + 1
	if err := p.Verify(root); err != nil {
		t.Fatal(err)
	}
	if err := VerifyInBatch(lying, p); !errors.Is(err, ErrBadProof) {
		t.Errorf("batch with a wrong count: err = %v, want ErrBadProof", err)
	}
}

// batchKeepers returns the keys and IDs of the test keepers.
func batchKeepers(t testing.TB) ([]crypto.PrivKey, []peer.ID) {
	t.Helper()
	keys := make([]crypto.PrivKey, len(batchKeeperSeeds))
	ids := make([]peer.ID, len(keys))
	for i, s := range batchKeeperSeeds {
		keys[i] = testKey(t, s)
		ids[i] = testID(t, keys[i])
	}
	return keys, ids
}

func signAll(t testing.TB, b Batch, keys ...crypto.PrivKey) [][]byte {
	t.Helper()
	out := make([][]byte, len(keys))
	for i, k := range keys {
		env, err := SignBatch(k, b)
		if err != nil {
			t.Fatal(err)
		}
		out[i] = env
	}
	return out
}

func TestBatchSignersQuorum(t *testing.T) {
	b := testBatch(t, 1000)
	keys, ids := batchKeepers(t)
	stakes := make(map[peer.ID]uint64)
	for _, id := range ids {
		stakes[id] = 100
	}
	sortedIDs := slices.Sorted(slices.Values(ids))

	other := b
	other.Root = bytes.Repeat([]byte{7}, 32) // another root
	forged := signAll(t, b, keys[3])[0]
	forged = slices.Clone(forged)
	forged[len(forged)-1] ^= 1 // the last byte is the signature's

	tests := []struct {
		name    string
		sigs    [][]byte
		signers []peer.ID
		errIs   []error
		quorum  bool
	}{
		{"4 of 4", signAll(t, b, keys...), sortedIDs, nil, true},
		{"3 of 4", signAll(t, b, keys[:3]...), slices.Sorted(slices.Values(ids[:3])), nil, true},
		{"2 of 4", signAll(t, b, keys[:2]...), slices.Sorted(slices.Values(ids[:2])), nil, false},
		{"none", nil, []peer.ID{}, nil, false},
		{"2 and a forged one", append(signAll(t, b, keys[:2]...), forged),
			slices.Sorted(slices.Values(ids[:2])), []error{wire.ErrBadSignature}, false},
		{"2 and one of another root", append(signAll(t, b, keys[:2]...), signAll(t, other, keys[2])...),
			slices.Sorted(slices.Values(ids[:2])), []error{ErrOtherBatch}, false},
		{"2 and one twice", append(signAll(t, b, keys[:2]...), signAll(t, b, keys[1])...),
			slices.Sorted(slices.Values(ids[:2])), []error{ErrDuplicateSigner}, false},
		{"3, forged, other, twice", append(signAll(t, b, keys[0], keys[1], keys[2], keys[0]), forged, signAll(t, other, keys[3])[0]),
			slices.Sorted(slices.Values(ids[:3])), []error{wire.ErrBadSignature, ErrOtherBatch, ErrDuplicateSigner}, true},
		{"a stranger and 2", append(signAll(t, b, testKey(t, 80)), signAll(t, b, keys[:2]...)...),
			slices.Sorted(slices.Values([]peer.ID{aggID(t, 80), ids[0], ids[1]})), nil, false},
		{"not an envelope", append(signAll(t, b, keys[:3]...), []byte("junk")),
			slices.Sorted(slices.Values(ids[:3])), []error{wire.ErrBadEnvelope}, true},
	}
	for _, tc := range tests {
		t.Run(tc.name, func(t *testing.T) {
			signers, err := SignedBatch{Batch: b, Signatures: tc.sigs}.Signers()
			if !slices.Equal(signers, tc.signers) {
				t.Errorf("signers = %v, want %v", signers, tc.signers)
			}
			if len(tc.errIs) == 0 && err != nil {
				t.Errorf("err = %v, want none", err)
			}
			for _, want := range tc.errIs {
				if !errors.Is(err, want) {
					t.Errorf("err = %v, want it to match %v", err, want)
				}
			}
			signed, total, ok := Quorum(signers, stakes)
			if ok != tc.quorum || total != 400 {
				t.Errorf("Quorum = %d of %d, %v; want quorum %v", signed, total, ok, tc.quorum)
			}
		})
	}

	// Signatures do not carry over to a batch that differs in any field.
	sigs := signAll(t, b, keys...)
	changed := b
	changed.Keepers = slices.Clone(b.Keepers)
	changed.Keepers[0].Reward++
	signers, err := SignedBatch{Batch: changed, Signatures: sigs}.Signers()
	if len(signers) != 0 || !errors.Is(err, ErrOtherBatch) {
		t.Errorf("signatures of the batch counted for a changed one: %v, %v", signers, err)
	}
	// An invalid batch has no signers.
	invalidBatch := b
	invalidBatch.Network = ""
	if signers, err := (SignedBatch{Batch: invalidBatch, Signatures: sigs}).Signers(); len(signers) != 0 || !errors.Is(err, ErrInvalid) {
		t.Errorf("invalid batch: signers %v, err %v", signers, err)
	}
	// A signature does not grow with its batch.
	if n := len(sigs[0]); n > MaxBatchSignatureSize {
		t.Errorf("a signature of a batch of 1,000 edges is %d bytes, over %d", n, MaxBatchSignatureSize)
	}
	// A receipt's signature over the same bytes is not a batch signature.
	id, err := b.ID()
	if err != nil {
		t.Fatal(err)
	}
	payload := mustMarshal(t, BatchSignature{Network: b.Network, Epoch: b.Epoch, Batch: id})
	asReceipt := sealRaw(t, keys[0], ReceiptDomain, payload)
	if signers, err := (SignedBatch{Batch: b, Signatures: [][]byte{asReceipt}}).Signers(); len(signers) != 0 || !errors.Is(err, wire.ErrWrongPayloadType) {
		t.Errorf("receipt-domain signature: signers %v, err %v", signers, err)
	}
}

func TestQuorum(t *testing.T) {
	a, b, c, d := aggID(t, 91), aggID(t, 92), aggID(t, 93), aggID(t, 94)
	stranger := aggID(t, 95)
	tests := []struct {
		name          string
		signers       []peer.ID
		stakes        map[peer.ID]uint64
		signed, total uint64
		ok            bool
	}{
		{"exactly 2/3", []peer.ID{a, b}, map[peer.ID]uint64{a: 3, b: 3, c: 3}, 6, 9, true},
		{"one under 2/3", []peer.ID{a, b}, map[peer.ID]uint64{a: 3, b: 2, c: 3}, 5, 8, false},
		{"2/3 rounds down, not up", []peer.ID{a, b}, map[peer.ID]uint64{a: 1, b: 1, c: 1, d: 0}, 2, 3, true},
		{"just under 2/3 of 10", []peer.ID{a}, map[peer.ID]uint64{a: 6, b: 4}, 6, 10, false},
		{"just over 2/3 of 10", []peer.ID{a}, map[peer.ID]uint64{a: 7, b: 3}, 7, 10, true},
		{"duplicate signer counted once", []peer.ID{a, a, a}, map[peer.ID]uint64{a: 5, b: 5}, 5, 10, false},
		{"unknown signer has no stake", []peer.ID{a, stranger}, map[peer.ID]uint64{a: 5, b: 5}, 5, 10, false},
		{"zero-stake signers", []peer.ID{d}, map[peer.ID]uint64{a: 5, d: 0}, 0, 5, false},
		{"no stake at all", []peer.ID{a}, map[peer.ID]uint64{}, 0, 0, false},
		{"no signers", nil, map[peer.ID]uint64{a: 1}, 0, 1, false},
		{"all", []peer.ID{a}, map[peer.ID]uint64{a: 1}, 1, 1, true},
		{"exactly 2/3 past 64 bits", []peer.ID{a}, map[peer.ID]uint64{a: 1 << 63, b: 1 << 62}, 1 << 63, 3 << 62, true},
		{"under 2/3 past 64 bits", []peer.ID{a}, map[peer.ID]uint64{a: 1<<63 - 1, b: 1 << 62}, 1<<63 - 1, 3<<62 - 1, false},
		{"total of MaxUint64", []peer.ID{a}, map[peer.ID]uint64{a: math.MaxUint64}, math.MaxUint64, math.MaxUint64, true},
		{"total overflows", []peer.ID{a, b}, map[peer.ID]uint64{a: math.MaxUint64, b: 1}, math.MaxUint64, math.MaxUint64, false},
	}
	for _, tc := range tests {
		t.Run(tc.name, func(t *testing.T) {
			signed, total, ok := Quorum(tc.signers, tc.stakes)
			if signed != tc.signed || total != tc.total || ok != tc.ok {
				t.Errorf("Quorum = %d, %d, %v; want %d, %d, %v", signed, total, ok, tc.signed, tc.total, tc.ok)
			}
		})
	}
}

func BenchmarkBuildBatch100k(b *testing.B) {
	const n = 100_000
	ids, rs, byKeeper := testBatchInputs(b, n)
	rand.New(rand.NewPCG(3, 4)).Shuffle(n, func(i, j int) { ids[i], ids[j] = ids[j], ids[i] })
	for b.Loop() {
		bt := BuildBatch("devnet", 9, ids, rs, byKeeper, 3)
		if _, err := bt.ID(); err != nil {
			b.Fatal(err)
		}
	}
	b.ReportMetric(b.Elapsed().Seconds()*1e3/float64(b.N), "ms/batch")
}

func BenchmarkVerifyInBatch(b *testing.B) {
	const n = 100_000
	ids, rs, byKeeper := testBatchInputs(b, n)
	bt := BuildBatch("devnet", 9, ids, rs, byKeeper, 3)
	tr := NewTree(SortedLeaves(ids))
	ps := make([]InclusionProof, 1024)
	for i := range ps {
		p, err := tr.Proof(i * (n / len(ps)))
		if err != nil {
			b.Fatal(err)
		}
		ps[i] = p
	}
	i := 0
	for b.Loop() {
		if err := VerifyInBatch(bt, ps[i%len(ps)]); err != nil {
			b.Fatal(err)
		}
		i++
	}
	perSecond(b, b.N, "proofs/s")
}
