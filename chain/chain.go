// Package chain is settlement: where co-signed epoch batches become
// balances. Settlement is the interface every backend implements, the
// embedded ledger (chain/local) of a devnet now and an EVM contract
// later, so it speaks only of what a contract can hold: accounts, keeper
// stakes, batches by epoch and a head.
package chain

import (
	"context"
	"errors"

	"github.com/libp2p/go-libp2p/core/peer"

	"github.com/aropeer/aropeer/proofs"
)

// Status is where a submitted batch stands. Only StatusApplied exists: a
// dispute slashes a keeper but does not undo the batch its receipts are
// in.
type Status string

// StatusApplied means the batch's rewards and penalties are in the
// balances.
const StatusApplied Status = "applied"

// Roles of accounts.
const (
	RoleKeeper = "keeper"
	RoleEdge   = "edge"
)

// Errors that callers branch on. Backends wrap them with what was wrong.
var (
	// ErrConflict means another batch is already applied for the epoch,
	// or a store holds another genesis than the one given.
	ErrConflict = errors.New("chain: conflicting batch for an applied epoch")
	// ErrNoQuorum means the batch's valid signatures hold less than 2/3
	// of the registered keeper stake.
	ErrNoQuorum = errors.New("chain: batch signed by less than 2/3 of keeper stake")
	// ErrEpochOrder means the batch is for an epoch below the last applied
	// one that has no batch: epochs are applied in increasing order only.
	ErrEpochOrder = errors.New("chain: batch epoch not after the last applied epoch")
	// ErrNotFound means no batch or account of that key.
	ErrNotFound = errors.New("chain: not found")
	// ErrInvalid means a malformed batch, account or stake change, or a
	// batch of another network.
	ErrInvalid = errors.New("chain: invalid transaction")
	// ErrDisputeRefused means a dispute that proves no offence, that
	// comes before its receipts' epoch is settled or after its window
	// closed, or that repeats a settled one; it changes nothing.
	ErrDisputeRefused = errors.New("chain: dispute refused")
)

// Account is a keeper's or an edge's standing.
type Account struct {
	ID   peer.ID `cbor:"id"`
	Role string  `cbor:"role"` // RoleKeeper or RoleEdge
	// Stake is a keeper's registered stake, the weight of its signature
	// in a batch's quorum; edges hold none.
	Stake uint64 `cbor:"stake"`
	// Balance is what the account has earned less its penalties. It is
	// signed because a penalised edge can owe more than it earned; it
	// saturates at the int64 bounds rather than wrapping.
	Balance int64 `cbor:"balance"`
	// Slashed is the total stake taken for misbehaviour.
	Slashed uint64 `cbor:"slashed"`
}

// Staked reports whether a is a keeper with a stake: one whose signature
// counts towards a quorum and who may be drawn to a committee.
func (a Account) Staked() bool { return a.Role == RoleKeeper && a.Stake > 0 }

// Head is the settlement's latest state.
type Head struct {
	Height  uint64 // of the last block; the genesis block is height 0
	Hash    []byte // of the last block
	Network string
}

// BatchRecord is an applied batch.
type BatchRecord struct {
	Signed proofs.SignedBatch `cbor:"signed"`
	Status Status             `cbor:"status"`
	Height uint64             `cbor:"height"` // of the block that applied it
}

// Kinds of dispute.
const (
	// DisputeEquivocation: A and B are two receipts one keeper signed for
	// the same attempt of the same challenge with different content.
	// Which of the two is A does not matter.
	DisputeEquivocation = "equivocation"
	// DisputeEvidence: A is a pass receipt whose evidence does not show
	// that the edge answered Challenge.
	DisputeEvidence = "evidence"
)

// Dispute is proof that a keeper misbehaved, over receipts of applied
// batches: each receipt comes with its inclusion proof in the batch of
// its own epoch, as a contract holds only the batches' roots.
type Dispute struct {
	Kind string `cbor:"kind"` // DisputeEquivocation or DisputeEvidence
	// A and B are sealed receipt envelopes (proofs.SealReceipt); B only
	// for an equivocation.
	A      []byte                 `cbor:"a"`
	B      []byte                 `cbor:"b,omitempty"`
	ProofA *proofs.InclusionProof `cbor:"pa,omitempty"`
	ProofB *proofs.InclusionProof `cbor:"pb,omitempty"`
	// Challenge is the sealed challenge (proofs.SealChallenge) that A
	// answers, for an evidence dispute: the receipt names it only by ID.
	Challenge []byte `cbor:"challenge,omitempty"`
}

// Settlement is a settlement backend.
type Settlement interface {
	// SubmitBatch checks b (valid, of the backend's network, signed by
	// 2/3 of keeper stake, for an epoch after the last applied one) and
	// applies it. It is idempotent per (network, epoch): the same batch
	// again, whatever its signatures, changes nothing and returns the
	// existing record; another batch for an applied epoch is refused with
	// ErrConflict.
	SubmitBatch(ctx context.Context, b proofs.SignedBatch) (BatchRecord, error)
	// Batch returns the batch applied for epoch, or ErrNotFound.
	Batch(ctx context.Context, epoch uint64) (BatchRecord, error)
	// Account returns id's account, or ErrNotFound.
	Account(ctx context.Context, id peer.ID) (Account, error)
	// Accounts returns every account, sorted by ID.
	Accounts(ctx context.Context) ([]Account, error)
	// Keepers returns the accounts of the keepers with a stake, sorted by
	// ID: the registry that committees and quorums are drawn from, a few
	// entries where Accounts has one for every edge.
	Keepers(ctx context.Context) ([]Account, error)
	// SetStake registers keeper with stake (0 deregisters it from
	// quorums). In a devnet the sequencer's operator calls it.
	SetStake(ctx context.Context, keeper peer.ID, stake uint64) error
	// SubmitDispute checks d and slashes a fraction of the offending
	// keeper's stake into its Slashed, once per attempt of a challenge
	// whatever the offence. It returns the keeper's account after the
	// slash. Every receipt of d must be in the applied batch of its epoch
	// (its inclusion proof's leaf is the receipt's CID), within the
	// backend's dispute window of epochs after it. An equivocation needs
	// two receipts by one keeper for the same attempt of the same
	// challenge that differ in content; an evidence dispute needs a pass
	// receipt, the sealed challenge it answers, and evidence that the
	// backend's checker for the receipt's kind rejects. Any other dispute,
	// or one that repeats a settled one, is refused with
	// ErrDisputeRefused and changes nothing.
	SubmitDispute(ctx context.Context, d Dispute) (Account, error)
	// Head returns the latest state.
	Head(ctx context.Context) (Head, error)
}
