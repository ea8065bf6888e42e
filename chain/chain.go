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

// Status is where a submitted batch stands. Only StatusApplied exists
// until disputes are settled on chain.
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
	// ErrDisputeRefused means a dispute that proves no equivocation, or
	// one already settled; it changes nothing.
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

// Dispute is evidence of equivocation: two sealed receipt envelopes
// (proofs.SealReceipt) by one keeper for the same attempt of the same
// challenge with different content. Which of the two is A does not
// matter.
type Dispute struct {
	A []byte `cbor:"a"`
	B []byte `cbor:"b"`
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
	// SetStake registers keeper with stake (0 deregisters it from
	// quorums). In a devnet the sequencer's operator calls it.
	SetStake(ctx context.Context, keeper peer.ID, stake uint64) error
	// SubmitDispute checks d: both envelopes open, are signed by the same
	// keeper for the same challenge and attempt, and differ in content.
	// Such an equivocation slashes a fraction of the keeper's stake into
	// its Slashed, once per pair of receipts. It returns the keeper's
	// account after the slash. A dispute that proves no equivocation, or
	// repeats a settled one, is refused with ErrDisputeRefused and
	// changes nothing.
	SubmitDispute(ctx context.Context, d Dispute) (Account, error)
	// Head returns the latest state.
	Head(ctx context.Context) (Head, error)
}
