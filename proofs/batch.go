package proofs

import (
	"bytes"
	"cmp"
	"crypto/sha256"
	"errors"
	"fmt"
	"math"
	"math/bits"
	"slices"
	"strings"

	"github.com/ipfs/go-cid"
	"github.com/libp2p/go-libp2p/core/crypto"
	"github.com/libp2p/go-libp2p/core/peer"

	"github.com/aropeer/aropeer/wire"
)

// BatchDomain signs keepers' co-signatures of epoch batches.
var BatchDomain = wire.Domain{Name: "aro-batch-signature", PayloadType: "/aro/batch-signature"}

// MaxBatchSize caps an encoded batch: an epoch's results for some ten
// thousand edges.
const MaxBatchSize = 4 << 20

// MaxBatchSignatureSize caps a sealed batch signature.
const MaxBatchSignatureSize = 1 << 10

// Errors of batch signatures and proofs.
var (
	// ErrOtherBatch means a signature verifies but covers another payload
	// than the batch it is counted for.
	ErrOtherBatch = errors.New("proofs: signature of another batch")
	// ErrDuplicateSigner means a batch carries more than one signature of
	// one key; it is counted once.
	ErrDuplicateSigner = errors.New("proofs: duplicate batch signer")
	// ErrNotInBatch means a receipt CID is not among a batch's leaves.
	ErrNotInBatch = errors.New("proofs: receipt not in batch")
)

// Batch is an epoch's settlement: what the leader keeper proposes and the
// others co-sign when their own stores give the same batch.
type Batch struct {
	Network string `cbor:"net"`
	Epoch   uint64 `cbor:"epoch"`
	// Root is the RFC 6962 root (Tree) over the epoch's receipt CIDs in
	// sorted byte order.
	Root []byte `cbor:"root"`
	// Receipts is the number of leaves under Root, so that an inclusion
	// proof's size is bound by the batch (VerifyInBatch).
	Receipts uint64 `cbor:"receipts"`
	// Results are Aggregate's, sorted by edge.
	Results []EdgeResult `cbor:"results"`
	// Keepers are the keepers' rewards, sorted by keeper.
	Keepers []KeeperReward `cbor:"keepers"`
}

// KeeperReward is what a keeper earns in an epoch for the receipts it
// signed.
type KeeperReward struct {
	Keeper   peer.ID `cbor:"keeper"`
	Receipts uint64  `cbor:"receipts"`
	Reward   uint64  `cbor:"reward"`
}

// BuildBatch builds the batch of epoch: the root over receiptIDs (sorted
// and deduplicated here, not trusted to be), the aggregation results
// sorted by edge, and per keeper with receipts its count times
// rewardPerReceipt (saturating). It is deterministic: the same inputs in
// any order give byte-identical batches. It does not validate; the
// caller's inputs come from its own store and Aggregate, and SignBatch
// validates before signing.
func BuildBatch(network string, epoch uint64, receiptIDs []cid.Cid, results []EdgeResult, receiptsByKeeper map[peer.ID]uint64, rewardPerReceipt uint64) Batch {
	leaves := SortedLeaves(receiptIDs)
	root := NewTree(leaves).Root()

	rs := make([]EdgeResult, len(results))
	for i, r := range results {
		r.Kinds = slices.Clone(r.Kinds)
		rs[i] = r
	}
	// Aggregate gives one result per edge; should there be several, their
	// encodings order them, so the order of the input does not matter.
	slices.SortFunc(rs, func(a, b EdgeResult) int {
		if c := cmp.Compare(a.Edge, b.Edge); c != 0 {
			return c
		}
		ea, _ := wire.Marshal(a)
		eb, _ := wire.Marshal(b)
		return bytes.Compare(ea, eb)
	})

	ks := make([]KeeperReward, 0, len(receiptsByKeeper))
	for k, n := range receiptsByKeeper {
		if n == 0 {
			continue
		}
		ks = append(ks, KeeperReward{Keeper: k, Receipts: n, Reward: satMul(n, rewardPerReceipt)})
	}
	slices.SortFunc(ks, func(a, b KeeperReward) int { return cmp.Compare(a.Keeper, b.Keeper) })

	return Batch{
		Network:  network,
		Epoch:    epoch,
		Root:     root[:],
		Receipts: uint64(len(leaves)),
		Results:  rs,
		Keepers:  ks,
	}
}

// SortedLeaves returns a sorted copy of ids without duplicates: the
// leaves of a batch's tree, in the order ReceiptStore.CIDs gives them.
func SortedLeaves(ids []cid.Cid) []cid.Cid {
	leaves := slices.Clone(ids)
	// KeyString is the CID's bytes without a copy.
	slices.SortFunc(leaves, func(a, b cid.Cid) int { return strings.Compare(a.KeyString(), b.KeyString()) })
	return slices.CompactFunc(leaves, func(a, b cid.Cid) bool { return a.KeyString() == b.KeyString() })
}

// Validate checks the fields of a batch on their own: a network, a root
// of SHA-256 size (the empty tree's for no receipts), results of the
// batch's epoch sorted by edge with one result per valid edge and kinds
// sorted and known, and keepers sorted, one per valid ID, each with
// receipts and all together no more receipts than the batch holds.
// Whether the batch is right is for each co-signer to recompute. Errors
// match ErrInvalid.
func (b Batch) Validate() error {
	if err := checkNetwork(b.Network); err != nil {
		return invalid("batch", err)
	}
	if len(b.Root) != sha256.Size {
		return invalid("batch", fmt.Errorf("root of %d bytes, want %d", len(b.Root), sha256.Size))
	}
	if empty := sha256.Sum256(nil); b.Receipts == 0 && !bytes.Equal(b.Root, empty[:]) {
		return invalid("batch", errors.New("no receipts under a root other than the empty tree's"))
	}
	for i, r := range b.Results {
		if err := checkPeer("edge", r.Edge); err != nil {
			return invalid("batch", fmt.Errorf("result %d: %w", i, err))
		}
		if i > 0 && r.Edge <= b.Results[i-1].Edge {
			return invalid("batch", fmt.Errorf("result %d (%s) after %s: results must be sorted by edge, one per edge", i, r.Edge, b.Results[i-1].Edge))
		}
		if r.Epoch != b.Epoch {
			return invalid("batch", fmt.Errorf("result %d (%s) of epoch %d in the batch of epoch %d", i, r.Edge, r.Epoch, b.Epoch))
		}
		for j, kr := range r.Kinds {
			if !knownKind(kr.Kind) {
				return invalid("batch", fmt.Errorf("result %d (%s): unknown kind %q", i, r.Edge, kr.Kind))
			}
			if j > 0 && kr.Kind <= r.Kinds[j-1].Kind {
				return invalid("batch", fmt.Errorf("result %d (%s): kind %q after %q: kinds must be sorted, one per kind", i, r.Edge, kr.Kind, r.Kinds[j-1].Kind))
			}
			decided, c1 := bits.Add64(kr.Passes, kr.Fails, 0)
			all, c2 := bits.Add64(decided, kr.Timeouts, 0)
			if c1|c2 != 0 || all != kr.Challenges {
				return invalid("batch", fmt.Errorf("result %d (%s) %s: %d challenges are not %d passes, %d fails and %d timeouts", i, r.Edge, kr.Kind, kr.Challenges, kr.Passes, kr.Fails, kr.Timeouts))
			}
		}
	}
	var counted uint64
	for i, k := range b.Keepers {
		if err := checkPeer("keeper", k.Keeper); err != nil {
			return invalid("batch", fmt.Errorf("keeper %d: %w", i, err))
		}
		if i > 0 && k.Keeper <= b.Keepers[i-1].Keeper {
			return invalid("batch", fmt.Errorf("keeper %d (%s) after %s: keepers must be sorted, one entry each", i, k.Keeper, b.Keepers[i-1].Keeper))
		}
		if k.Receipts == 0 {
			return invalid("batch", fmt.Errorf("keeper %s without receipts", k.Keeper))
		}
		counted = satAdd(counted, k.Receipts)
	}
	if counted > b.Receipts {
		return invalid("batch", fmt.Errorf("keepers signed %d receipts, the batch holds %d", counted, b.Receipts))
	}
	return nil
}

// ID is the CID of the batch's canonical encoding: what every co-signer
// signs (BatchSignature).
func (b Batch) ID() (cid.Cid, error) {
	_, id, err := wire.MarshalCID(b)
	if err != nil {
		return cid.Undef, fmt.Errorf("proofs: batch id: %w", err)
	}
	return id, nil
}

// SignedBatch is a batch with its co-signatures.
type SignedBatch struct {
	Batch      Batch
	Signatures [][]byte // envelopes of BatchDomain, as SignBatch seals them
}

// BatchSignature is what a keeper co-signs: an epoch's batch named by its
// ID, which the keeper recomputed from its own stores. It names the batch
// rather than carrying it, so that a keeper's signature is a few hundred
// bytes where a batch of thousands of edges is hundreds of kilobytes, and
// a signed batch holds its batch once.
type BatchSignature struct {
	Network string  `cbor:"net"`
	Epoch   uint64  `cbor:"epoch"`
	Batch   cid.Cid `cbor:"batch"`
}

// SignBatch validates b and returns key's envelope over its
// BatchSignature: one keeper's co-signature. Whether the key holds stake
// is Quorum's question.
func SignBatch(key crypto.PrivKey, b Batch) ([]byte, error) {
	want, err := b.signature()
	if err != nil {
		return nil, err
	}
	env, _, err := wire.SealMessage(key, BatchDomain, want)
	if err != nil {
		return nil, fmt.Errorf("proofs: sign batch: %w", err)
	}
	return env, nil
}

// signature is what a co-signer of b signs, for a valid batch whose
// encoding is within MaxBatchSize.
func (b Batch) signature() (BatchSignature, error) {
	if err := b.Validate(); err != nil {
		return BatchSignature{}, err
	}
	payload, id, err := wire.MarshalCID(b)
	if err != nil {
		return BatchSignature{}, fmt.Errorf("proofs: batch id: %w", err)
	}
	if len(payload) > MaxBatchSize {
		return BatchSignature{}, invalid("batch", fmt.Errorf("%d bytes encoded, over %d", len(payload), MaxBatchSize))
	}
	return BatchSignature{Network: b.Network, Epoch: b.Epoch, Batch: id}, nil
}

// OpenBatchSignature opens a keeper's co-signature and returns what it
// signs and its signer.
func OpenBatchSignature(env []byte) (BatchSignature, peer.ID, error) {
	var s BatchSignature
	signer, _, err := wire.OpenMessage(env, BatchDomain, MaxBatchSignatureSize, &s)
	if err != nil {
		return BatchSignature{}, "", fmt.Errorf("proofs: batch signature: %w", err)
	}
	if err := s.Validate(); err != nil {
		return BatchSignature{}, "", err
	}
	return s, signer, nil
}

// Validate checks that s names a network and a batch.
func (s BatchSignature) Validate() error {
	if s.Network == "" || !s.Batch.Defined() {
		return invalid("batch signature", errors.New("no network or no batch"))
	}
	return nil
}

// Signers opens every signature and returns, sorted, the keys of those
// that sign s.Batch, each once. Signatures that do not open, that sign
// another batch (ErrOtherBatch) or that repeat a signer
// (ErrDuplicateSigner) are not counted and are reported together in the
// error, with their indices; the signers returned stand even then. An
// invalid batch has no signers.
func (s SignedBatch) Signers() ([]peer.ID, error) {
	want, err := s.Batch.signature()
	if err != nil {
		return nil, err
	}
	seen := make(map[peer.ID]bool, len(s.Signatures))
	var errs []error
	for i, env := range s.Signatures {
		got, signer, err := OpenBatchSignature(env)
		switch {
		case err != nil:
			errs = append(errs, fmt.Errorf("proofs: batch signature %d: %w", i, err))
		case got != want:
			errs = append(errs, fmt.Errorf("proofs: batch signature %d by %s: %w", i, signer, ErrOtherBatch))
		case seen[signer]:
			errs = append(errs, fmt.Errorf("proofs: batch signature %d by %s: %w", i, signer, ErrDuplicateSigner))
		default:
			seen[signer] = true
		}
	}
	signers := make([]peer.ID, 0, len(seen))
	for id := range seen {
		signers = append(signers, id)
	}
	slices.Sort(signers)
	return signers, errors.Join(errs...)
}

// Quorum reports whether signers hold at least 2/3 of the total stake:
// signed*3 >= total*2, exactly, in 128-bit integers. Each signer counts
// once; signers missing from stakes have none. No stake at all is no
// quorum, nor is a total that overflows uint64 (reported as MaxUint64),
// which no honest stake table reaches.
func Quorum(signers []peer.ID, stakes map[peer.ID]uint64) (signed, total uint64, ok bool) {
	overflow := false
	for _, s := range stakes {
		var carry uint64
		if total, carry = bits.Add64(total, s, 0); carry != 0 {
			total, overflow = math.MaxUint64, true
			break
		}
	}
	counted := make(map[peer.ID]bool, len(signers))
	for _, id := range signers {
		if counted[id] {
			continue
		}
		counted[id] = true
		signed = satAdd(signed, stakes[id])
	}
	if total == 0 || overflow {
		return signed, total, false
	}
	sh, sl := bits.Mul64(signed, 3)
	th, tl := bits.Mul64(total, 2)
	return signed, total, sh > th || sh == th && sl >= tl
}

// ProveReceipt gives the inclusion proof of receipt id in the batch built
// from receiptIDs (in any order, as BuildBatch takes them). It builds the
// epoch's tree, so it costs about as much as BuildBatch's root; an error
// wrapping ErrNotInBatch means id is not among receiptIDs.
func ProveReceipt(receiptIDs []cid.Cid, id cid.Cid) (InclusionProof, error) {
	leaves := SortedLeaves(receiptIDs)
	i, found := slices.BinarySearchFunc(leaves, id, func(a, b cid.Cid) int { return strings.Compare(a.KeyString(), b.KeyString()) })
	if !found {
		return InclusionProof{}, fmt.Errorf("proofs: prove receipt %s among %d: %w", id, len(leaves), ErrNotInBatch)
	}
	return NewTree(leaves).Proof(i)
}

// VerifyInBatch checks that p proves a receipt of b: a proof of a tree of
// exactly b.Receipts leaves that leads to b.Root. Binding the size matters:
// a path can lead to the same root under another size, which would let a
// proof claim another index than its leaf holds. Errors wrap ErrBadProof.
func VerifyInBatch(b Batch, p InclusionProof) error {
	if len(b.Root) != sha256.Size {
		return fmt.Errorf("%w: batch root of %d bytes, want %d", ErrBadProof, len(b.Root), sha256.Size)
	}
	if p.Size != b.Receipts {
		return fmt.Errorf("%w: proof for a tree of %d leaves, the batch has %d", ErrBadProof, p.Size, b.Receipts)
	}
	return p.Verify([32]byte(b.Root))
}

// satMul returns a*b, saturating at MaxUint64.
func satMul(a, b uint64) uint64 {
	hi, lo := bits.Mul64(a, b)
	if hi != 0 {
		return math.MaxUint64
	}
	return lo
}
