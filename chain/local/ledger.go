// Package local is the embedded settlement of a devnet: a ledger in the
// node's pebble store that applies co-signed batches as a contract would,
// and records each applied transaction as a block in a hash chain, so
// that any node can download the blocks and replay them to the same
// state.
package local

import (
	"bytes"
	"cmp"
	"context"
	"crypto/sha256"
	"encoding/binary"
	"errors"
	"fmt"
	"maps"
	"math"
	"math/bits"
	"slices"
	"strconv"
	"sync"

	"github.com/ipfs/go-cid"
	"github.com/libp2p/go-libp2p/core/peer"

	"github.com/aropeer/aropeer/chain"
	"github.com/aropeer/aropeer/proofs"
	"github.com/aropeer/aropeer/store"
	"github.com/aropeer/aropeer/wire"
)

// Namespace is the store namespace of the ledger.
const Namespace = "ledger"

// maxRecordSize caps a stored block or batch record: a block's batches,
// each up to proofs.MaxBatchSize with its keepers' signatures.
const maxRecordSize = 1 << 30

// Keys in the namespace. Heights and epochs are big-endian so that
// iteration is in order.
var (
	keyMeta       = []byte("m")
	prefixAccount = []byte("a/")
	prefixBatch   = []byte("b/")
	prefixBlock   = []byte("k/")
	prefixDispute = []byte("d/") // + the disputed attempt's key
)

// DefaultSlashPPM is the fraction of its stake, in parts per million, a
// disputed keeper loses when a genesis sets none: half.
const DefaultSlashPPM = 500_000

// DefaultDisputeEpochs is how many epochs after its own a receipt can be
// disputed when a genesis sets no window.
const DefaultDisputeEpochs = 4

// maxPPM is one whole, in parts per million.
const maxPPM = 1_000_000

// Tx is one applied transaction: exactly one field is set.
type Tx struct {
	Genesis *Genesis            `cbor:"genesis,omitempty"`
	Stake   *StakeChange        `cbor:"stake,omitempty"`
	Batch   *proofs.SignedBatch `cbor:"batch,omitempty"`
	Dispute *chain.Dispute      `cbor:"dispute,omitempty"`
}

// Genesis is the first transaction: the network and its opening accounts.
type Genesis struct {
	Network  string          `cbor:"net"`
	Accounts []chain.Account `cbor:"accounts"` // sorted by ID
	// SlashPPM is the fraction of its stake, in parts per million, a
	// disputed keeper loses; 0 means DefaultSlashPPM.
	SlashPPM uint64 `cbor:"slash,omitempty"`
	// DisputeEpochs is the dispute window: a receipt of epoch e can be
	// disputed until a batch of an epoch after e+DisputeEpochs is
	// applied. 0 means DefaultDisputeEpochs.
	DisputeEpochs uint64 `cbor:"window,omitempty"`
}

// StakeChange sets a keeper's stake.
type StakeChange struct {
	Keeper peer.ID `cbor:"keeper"`
	Stake  uint64  `cbor:"stake"`
}

// Block is one applied transaction in the hash chain: Hash is
// SHA-256(Prev || wire.Marshal(Tx)), and Prev is the previous block's
// Hash (empty for the genesis block, at height 0).
type Block struct {
	Height uint64 `cbor:"height"`
	Prev   []byte `cbor:"prev"`
	Tx     Tx     `cbor:"tx"`
	Hash   []byte `cbor:"hash"`
}

// blockHash is the hash of tx after prev.
func blockHash(prev []byte, tx Tx) ([]byte, error) {
	enc, err := wire.Marshal(tx)
	if err != nil {
		return nil, fmt.Errorf("chain/local: encode transaction: %w", err)
	}
	h := sha256.New()
	h.Write(prev)
	h.Write(enc)
	return h.Sum(nil), nil
}

// meta is the stored head.
type meta struct {
	Network   string `cbor:"net"`
	Height    uint64 `cbor:"height"`
	Hash      []byte `cbor:"hash"`
	LastEpoch uint64 `cbor:"last"`
	HasEpoch  bool   `cbor:"has"`             // whether any batch was applied
	SlashPPM  uint64 `cbor:"slash,omitempty"` // of the genesis; 0 for the default
	// DisputeEpochs is the genesis's; 0 for the default.
	DisputeEpochs uint64 `cbor:"window,omitempty"`
}

// state is what the blocks add up to. apply moves it by one transaction;
// the live ledger and Replay share it, so they cannot disagree.
type state struct {
	meta
	accounts map[peer.ID]chain.Account
	batches  map[uint64]chain.BatchRecord
	disputes map[string]bool // keys of the attempts slashed for
	// checkers check the evidence of pass receipts by kind. They are code,
	// not state: every node must run the same ones to agree on disputes.
	checkers map[proofs.Kind]proofs.EvidenceChecker
}

func newState(checkers map[proofs.Kind]proofs.EvidenceChecker) *state {
	return &state{accounts: map[peer.ID]chain.Account{}, batches: map[uint64]chain.BatchRecord{}, disputes: map[string]bool{}, checkers: checkers}
}

// change is what one transaction wrote, to persist.
type change struct {
	accounts []peer.ID
	batch    *chain.BatchRecord
	dispute  string // key of the attempt slashed for, if any
}

// apply applies tx as block number height onto st. It returns the record
// of an identical batch already applied with noop set, changing nothing.
func (st *state) apply(height uint64, tx Tx) (ch change, rec chain.BatchRecord, noop bool, err error) {
	n := 0
	for _, set := range []bool{tx.Genesis != nil, tx.Stake != nil, tx.Batch != nil, tx.Dispute != nil} {
		if set {
			n++
		}
	}
	if n != 1 {
		return change{}, rec, false, fmt.Errorf("%w: a transaction of %d kinds, want exactly one", chain.ErrInvalid, n)
	}
	switch {
	case tx.Genesis != nil:
		if height != 0 {
			return change{}, rec, false, fmt.Errorf("%w: genesis at height %d", chain.ErrInvalid, height)
		}
		return st.applyGenesis(*tx.Genesis)
	case height == 0:
		return change{}, rec, false, fmt.Errorf("%w: block 0 is not a genesis", chain.ErrInvalid)
	case tx.Stake != nil:
		return st.applyStake(*tx.Stake)
	case tx.Dispute != nil:
		ch, err := st.applyDispute(*tx.Dispute)
		return ch, rec, false, err
	default:
		return st.applyBatch(height, *tx.Batch)
	}
}

func (st *state) applyGenesis(g Genesis) (change, chain.BatchRecord, bool, error) {
	if g.Network == "" {
		return change{}, chain.BatchRecord{}, false, fmt.Errorf("%w: genesis without a network", chain.ErrInvalid)
	}
	if g.SlashPPM > maxPPM {
		return change{}, chain.BatchRecord{}, false, fmt.Errorf("%w: genesis slash of %d ppm, over %d", chain.ErrInvalid, g.SlashPPM, maxPPM)
	}
	st.Network, st.SlashPPM, st.DisputeEpochs = g.Network, g.SlashPPM, g.DisputeEpochs
	var ch change
	for i, a := range g.Accounts {
		if err := checkAccount(a); err != nil {
			return change{}, chain.BatchRecord{}, false, fmt.Errorf("%w: genesis account %d: %w", chain.ErrInvalid, i, err)
		}
		if i > 0 && a.ID <= g.Accounts[i-1].ID {
			return change{}, chain.BatchRecord{}, false, fmt.Errorf("%w: genesis account %d (%s) after %s: accounts must be sorted, one each", chain.ErrInvalid, i, a.ID, g.Accounts[i-1].ID)
		}
		st.accounts[a.ID] = a
		ch.accounts = append(ch.accounts, a.ID)
	}
	return ch, chain.BatchRecord{}, false, nil
}

func checkAccount(a chain.Account) error {
	if _, err := peer.IDFromBytes([]byte(a.ID)); err != nil {
		return fmt.Errorf("id: %w", err)
	}
	switch a.Role {
	case chain.RoleKeeper:
	case chain.RoleEdge:
		if a.Stake != 0 {
			return fmt.Errorf("edge %s with stake %d: only keepers stake", a.ID, a.Stake)
		}
	default:
		return fmt.Errorf("%s: role %q, want %q or %q", a.ID, a.Role, chain.RoleKeeper, chain.RoleEdge)
	}
	return nil
}

func (st *state) applyStake(s StakeChange) (change, chain.BatchRecord, bool, error) {
	if _, err := peer.IDFromBytes([]byte(s.Keeper)); err != nil {
		return change{}, chain.BatchRecord{}, false, fmt.Errorf("%w: stake of keeper %q: %w", chain.ErrInvalid, s.Keeper, err)
	}
	a, ok := st.accounts[s.Keeper]
	if !ok {
		a = chain.Account{ID: s.Keeper, Role: chain.RoleKeeper}
	}
	if a.Role != chain.RoleKeeper {
		return change{}, chain.BatchRecord{}, false, fmt.Errorf("%w: stake of %s, an account of role %q: only keepers stake", chain.ErrInvalid, s.Keeper, a.Role)
	}
	a.Stake = s.Stake
	st.accounts[s.Keeper] = a
	return change{accounts: []peer.ID{s.Keeper}}, chain.BatchRecord{}, false, nil
}

func (st *state) applyBatch(height uint64, sb proofs.SignedBatch) (change, chain.BatchRecord, bool, error) {
	b := sb.Batch
	if err := b.Validate(); err != nil {
		return change{}, chain.BatchRecord{}, false, fmt.Errorf("%w: %w", chain.ErrInvalid, err)
	}
	if b.Network != st.Network {
		return change{}, chain.BatchRecord{}, false, fmt.Errorf("%w: batch of network %q on the ledger of %q", chain.ErrInvalid, b.Network, st.Network)
	}
	if st.HasEpoch && b.Epoch <= st.LastEpoch {
		prev, ok := st.batches[b.Epoch]
		if !ok {
			return change{}, chain.BatchRecord{}, false, fmt.Errorf("%w: batch of epoch %d after epoch %d", chain.ErrEpochOrder, b.Epoch, st.LastEpoch)
		}
		same, err := sameBatch(prev.Signed.Batch, b)
		if err != nil {
			return change{}, chain.BatchRecord{}, false, err
		}
		if !same {
			return change{}, chain.BatchRecord{}, false, fmt.Errorf("%w: epoch %d of %s already applied at height %d with another batch", chain.ErrConflict, b.Epoch, b.Network, prev.Height)
		}
		return change{}, prev, true, nil
	}

	signers, sigErr := sb.Signers()
	stakes := make(map[peer.ID]uint64)
	for id, a := range st.accounts {
		if a.Staked() {
			stakes[id] = a.Stake
		}
	}
	signed, total, ok := proofs.Quorum(signers, stakes)
	if !ok {
		err := fmt.Errorf("%w: epoch %d signed by %d keepers holding %d of %d stake, need 2/3", chain.ErrNoQuorum, b.Epoch, len(signers), signed, total)
		if sigErr != nil {
			err = fmt.Errorf("%w (signatures not counted: %w)", err, sigErr)
		}
		return change{}, chain.BatchRecord{}, false, err
	}

	var ch change
	for _, r := range b.Results {
		a, ok := st.accounts[r.Edge]
		if !ok {
			a = chain.Account{ID: r.Edge, Role: chain.RoleEdge}
		}
		a.Balance = subSat(addSat(a.Balance, r.Reward), r.Penalty)
		st.accounts[r.Edge] = a
		ch.accounts = append(ch.accounts, r.Edge)
	}
	for _, k := range b.Keepers {
		a, ok := st.accounts[k.Keeper]
		if !ok {
			a = chain.Account{ID: k.Keeper, Role: chain.RoleKeeper}
		}
		a.Balance = addSat(a.Balance, k.Reward)
		st.accounts[k.Keeper] = a
		ch.accounts = append(ch.accounts, k.Keeper)
	}
	rec := chain.BatchRecord{Signed: sb, Status: chain.StatusApplied, Height: height}
	st.batches[b.Epoch] = rec
	st.LastEpoch, st.HasEpoch = b.Epoch, true
	ch.batch = &rec
	return ch, rec, false, nil
}

// applyDispute slashes the keeper d proves misbehaved: see
// chain.Settlement.SubmitDispute. The checks run cheapest first, the
// evidence checker last.
func (st *state) applyDispute(d chain.Dispute) (change, error) {
	if d.Kind != chain.DisputeEquivocation && d.Kind != chain.DisputeEvidence {
		return change{}, refused("dispute of kind %q, want %q or %q", d.Kind, chain.DisputeEquivocation, chain.DisputeEvidence)
	}
	ra, ca, err := proofs.OpenReceipt(d.A)
	if err != nil {
		return change{}, refused("receipt A: %w", err)
	}
	if ra.Network != st.Network {
		return change{}, refused("receipt A of network %q on the ledger of %q", ra.Network, st.Network)
	}
	var check func() error // the evidence check, if any
	if d.Kind == chain.DisputeEquivocation {
		if d.Challenge != nil {
			return change{}, refused("an equivocation dispute carries no challenge")
		}
		rb, cb, err := proofs.OpenReceipt(d.B)
		if err != nil {
			return change{}, refused("receipt B: %w", err)
		}
		if err := equivocation(ra, ca, rb, cb); err != nil {
			return change{}, err
		}
		if err := st.included("A", ra, ca, d.ProofA); err != nil {
			return change{}, err
		}
		if err := st.included("B", rb, cb, d.ProofB); err != nil {
			return change{}, err
		}
	} else {
		if d.B != nil || d.ProofB != nil {
			return change{}, refused("an evidence dispute carries one receipt, A")
		}
		if check, err = st.evidence(d.Challenge, ra); err != nil {
			return change{}, err
		}
		if err := st.included("A", ra, ca, d.ProofA); err != nil {
			return change{}, err
		}
	}

	// One slash per attempt, whatever the offence and however many
	// receipts the keeper signed for it.
	key := disputeKey(ra.Keeper, ra.Challenge, ra.Attempt)
	if st.disputes[key] {
		return change{}, refused("keeper %s already slashed for attempt %d of challenge %s", ra.Keeper, ra.Attempt, ra.Challenge)
	}
	a, ok := st.accounts[ra.Keeper]
	if !ok || a.Role != chain.RoleKeeper {
		return change{}, refused("%s is not a keeper of this ledger", ra.Keeper)
	}
	if a.Stake == 0 {
		return change{}, refused("keeper %s holds no stake to slash", ra.Keeper)
	}
	if check != nil {
		if err := check(); err != nil {
			return change{}, err
		}
	}
	ppm := st.SlashPPM
	if ppm == 0 {
		ppm = DefaultSlashPPM
	}
	hi, lo := bits.Mul64(a.Stake, ppm)
	amount, _ := bits.Div64(hi, lo, maxPPM) // hi < maxPPM, as ppm <= maxPPM
	a.Stake -= amount
	a.Slashed = satAddU(a.Slashed, amount)
	st.accounts[a.ID] = a
	st.disputes[key] = true
	return change{accounts: []peer.ID{a.ID}, dispute: key}, nil
}

// refused is a dispute refusal saying why.
func refused(format string, args ...any) error {
	return fmt.Errorf("%w: "+format, append([]any{chain.ErrDisputeRefused}, args...)...)
}

// equivocation checks that receipts a and b, named ca and cb, are one
// keeper's different verdicts on one attempt of one challenge.
func equivocation(ra proofs.Receipt, ca cid.Cid, rb proofs.Receipt, cb cid.Cid) error {
	switch {
	case ca == cb:
		return refused("receipts A and B are the same receipt %s: no equivocation", ca)
	case ra.Keeper != rb.Keeper:
		return refused("receipt A by keeper %s, B by %s: not one keeper's equivocation", ra.Keeper, rb.Keeper)
	case ra.Challenge != rb.Challenge:
		return refused("receipt A for challenge %s, B for %s: not one challenge", ra.Challenge, rb.Challenge)
	case ra.Attempt != rb.Attempt:
		return refused("receipt A for attempt %d, B for %d: not one attempt", ra.Attempt, rb.Attempt)
	}
	return nil
}

// evidence checks that r is a pass receipt of the sealed challenge env of
// a kind this ledger can check, and returns the check of its evidence:
// it must fail for the dispute to stand.
func (st *state) evidence(env []byte, r proofs.Receipt) (func() error, error) {
	if r.Result != proofs.Pass {
		return nil, refused("receipt A is a %s: only a pass claims evidence of an answer", r.Result)
	}
	c, _, err := proofs.OpenChallenge(env)
	if err != nil {
		return nil, refused("challenge: %w", err)
	}
	id, err := c.ID()
	if err != nil {
		return nil, refused("challenge: %w", err)
	}
	if id != r.Challenge {
		return nil, refused("challenge %s is not receipt A's challenge %s", id, r.Challenge)
	}
	// The ID covers these, but the receipt may still misstate them.
	if field := differs(c, r); field != "" {
		return nil, refused("challenge %s and receipt A name another %s", id, field)
	}
	checker, ok := st.checkers[r.Kind]
	if !ok {
		return nil, refused("evidence of kind %s cannot be checked by this ledger", r.Kind)
	}
	// The ID names every attempt of the challenge; the receipt says which
	// one it judged.
	c.Attempt = r.Attempt
	return func() error {
		if err := checker.CheckEvidence(c, r); err == nil {
			return refused("evidence of receipt A for attempt %d of challenge %s verifies: its pass stands", r.Attempt, id)
		}
		return nil
	}, nil
}

// differs names the first field a receipt shares with its challenge in
// which r and c differ, or "".
func differs(c proofs.Challenge, r proofs.Receipt) string {
	switch {
	case c.Network != r.Network:
		return "network"
	case c.Epoch != r.Epoch:
		return "epoch"
	case c.Round != r.Round:
		return "round"
	case c.Keeper != r.Keeper:
		return "keeper"
	case c.Edge != r.Edge:
		return "edge"
	case c.Kind != r.Kind:
		return "kind"
	}
	return ""
}

// included checks that receipt name (r, of CID id) is a leaf of the batch
// applied for its epoch by proof p, and that the epoch's dispute window
// is open.
func (st *state) included(name string, r proofs.Receipt, id cid.Cid, p *proofs.InclusionProof) error {
	rec, ok := st.batches[r.Epoch]
	if !ok {
		return refused("receipt %s of epoch %d: no batch applied for the epoch, which is not settled yet", name, r.Epoch)
	}
	window := st.DisputeEpochs
	if window == 0 {
		window = DefaultDisputeEpochs
	}
	if st.LastEpoch > satAddU(r.Epoch, window) {
		return refused("receipt %s: dispute window of %d epochs for epoch %d closed at epoch %d", name, window, r.Epoch, st.LastEpoch)
	}
	switch {
	case p == nil:
		return refused("receipt %s without an inclusion proof in the batch of epoch %d", name, r.Epoch)
	case !p.Leaf.Equals(id):
		return refused("inclusion proof of receipt %s is of leaf %s, not of the receipt %s", name, p.Leaf, id)
	}
	if err := proofs.VerifyInBatch(rec.Signed.Batch, *p); err != nil {
		return refused("receipt %s not in the batch of epoch %d: %w", name, r.Epoch, err)
	}
	return nil
}

// disputeKey names one attempt of one challenge by one keeper: however
// many conflicting receipts it signed for it, a keeper is slashed once
// for it.
func disputeKey(keeper peer.ID, challenge cid.Cid, attempt uint32) string {
	return string(keeper) + challenge.KeyString() + strconv.FormatUint(uint64(attempt), 10)
}

func satAddU(a, b uint64) uint64 {
	s, carry := bits.Add64(a, b, 0)
	if carry != 0 {
		return math.MaxUint64
	}
	return s
}

// sameBatch reports whether a and b are the same batch: signatures aside,
// as the idempotence of SubmitBatch is per batch.
func sameBatch(a, b proofs.Batch) (bool, error) {
	ea, err := wire.Marshal(a)
	if err != nil {
		return false, fmt.Errorf("chain/local: encode batch: %w", err)
	}
	eb, err := wire.Marshal(b)
	if err != nil {
		return false, fmt.Errorf("chain/local: encode batch: %w", err)
	}
	return bytes.Equal(ea, eb), nil
}

func addSat(b int64, u uint64) int64 {
	if u > math.MaxInt64 || b > math.MaxInt64-int64(u) {
		return math.MaxInt64
	}
	return b + int64(u)
}

func subSat(b int64, u uint64) int64 {
	if u > math.MaxInt64 || b < math.MinInt64+int64(u) {
		return math.MinInt64
	}
	return b - int64(u)
}

func (st *state) clone() *state {
	c := &state{meta: st.meta, accounts: maps.Clone(st.accounts), batches: maps.Clone(st.batches), disputes: maps.Clone(st.disputes), checkers: st.checkers}
	c.Hash = slices.Clone(st.Hash)
	return c
}

func (st *state) sortedAccounts() []chain.Account {
	out := slices.Collect(maps.Values(st.accounts))
	slices.SortFunc(out, func(a, b chain.Account) int { return cmp.Compare(a.ID, b.ID) })
	return out
}

func (st *state) head() chain.Head {
	return chain.Head{Height: st.Height, Hash: slices.Clone(st.Hash), Network: st.Network}
}

// Ledger is chain.Settlement in a store. It keeps its state in memory,
// loaded on Open, and writes every transaction, state and block together,
// in one synced store batch. It is safe for concurrent use.
type Ledger struct {
	ns store.Namespace

	mu sync.Mutex
	st *state
}

var _ chain.Settlement = (*Ledger)(nil)

// Option configures Open and Replay: the genesis they expect or write,
// and the ledger's evidence checkers.
type Option func(*options)

type options struct {
	slashPPM  uint64
	slashSet  bool
	window    uint64
	windowSet bool
	checkers  []proofs.EvidenceChecker
}

// WithSlashPPM sets the fraction of its stake, in parts per million (1 to
// 1000000), a disputed keeper loses; DefaultSlashPPM without it. It is
// part of the genesis: a db holding a ledger of another fraction is
// refused with chain.ErrConflict.
func WithSlashPPM(ppm uint64) Option {
	return func(o *options) { o.slashPPM, o.slashSet = ppm, true }
}

// WithDisputeEpochs sets the dispute window: how many epochs (at least 1)
// after its own a receipt can be disputed; DefaultDisputeEpochs without
// it. It is part of the genesis: a db holding a ledger of another window
// is refused with chain.ErrConflict.
func WithDisputeEpochs(n uint64) Option {
	return func(o *options) { o.window, o.windowSet = n, true }
}

// WithEvidence gives the ledger the checkers of the evidence of pass
// receipts, one per kind; without a checker for its kind, a receipt's
// evidence cannot be disputed. Checkers are code, not part of the
// genesis: every node must run the same ones, or their ledgers and
// replays disagree on disputes.
func WithEvidence(checkers ...proofs.EvidenceChecker) Option {
	return func(o *options) { o.checkers = append(o.checkers, checkers...) }
}

// newOptions applies opts, checks them and returns them with the
// checkers by kind. The defaults are written as zeros in a genesis.
func newOptions(opts []Option) (options, map[proofs.Kind]proofs.EvidenceChecker, error) {
	var o options
	for _, opt := range opts {
		opt(&o)
	}
	if o.slashSet && (o.slashPPM == 0 || o.slashPPM > maxPPM) {
		return o, nil, fmt.Errorf("%w: slash of %d ppm, want 1 to %d", chain.ErrInvalid, o.slashPPM, maxPPM)
	}
	if o.slashPPM == DefaultSlashPPM {
		o.slashPPM = 0 // the default is written as none, as before slashing existed
	}
	if o.windowSet && o.window == 0 {
		return o, nil, fmt.Errorf("%w: dispute window of 0 epochs, want at least 1", chain.ErrInvalid)
	}
	if o.window == DefaultDisputeEpochs {
		o.window = 0
	}
	checkers := make(map[proofs.Kind]proofs.EvidenceChecker, len(o.checkers))
	for _, c := range o.checkers {
		if c == nil {
			return o, nil, fmt.Errorf("%w: nil evidence checker", chain.ErrInvalid)
		}
		if _, dup := checkers[c.Kind()]; dup {
			return o, nil, fmt.Errorf("%w: two evidence checkers of kind %s", chain.ErrInvalid, c.Kind())
		}
		checkers[c.Kind()] = c
	}
	return o, checkers, nil
}

// conflict reports how a ledger of head m differs from the genesis
// options o ask for, or "".
func (o options) conflict(m meta) string {
	switch {
	case o.slashSet && m.SlashPPM != o.slashPPM:
		return "another slash fraction"
	case o.windowSet && m.DisputeEpochs != o.window:
		return "another dispute window"
	}
	return ""
}

// Open opens the ledger of network in db, writing its genesis block with
// genesis's accounts and opts if db holds none. A db that holds a ledger
// must hold that of network, of the slash fraction and dispute window if
// WithSlashPPM and WithDisputeEpochs are given and, if genesis is not
// nil, of the same genesis (chain.ErrConflict otherwise).
func Open(db *store.DB, network string, genesis []chain.Account, opts ...Option) (*Ledger, error) {
	o, checkers, err := newOptions(opts)
	if err != nil {
		return nil, fmt.Errorf("chain/local: open %s: %w", network, err)
	}
	l := &Ledger{ns: db.Namespace(Namespace)}
	g := Genesis{Network: network, Accounts: slices.Clone(genesis), SlashPPM: o.slashPPM, DisputeEpochs: o.window}
	slices.SortFunc(g.Accounts, func(a, b chain.Account) int { return cmp.Compare(a.ID, b.ID) })

	raw, err := l.ns.Get(keyMeta)
	switch {
	case errors.Is(err, store.ErrNotFound):
		l.st = newState(checkers)
		if _, _, err := l.commit(Tx{Genesis: &g}); err != nil {
			return nil, fmt.Errorf("chain/local: open %s: %w", network, err)
		}
		return l, nil
	case err != nil:
		return nil, fmt.Errorf("chain/local: open %s: %w", network, err)
	}

	st := newState(checkers)
	if err := wire.Unmarshal(raw, &st.meta, maxRecordSize); err != nil {
		return nil, fmt.Errorf("chain/local: open %s: head: %w", network, err)
	}
	if st.Network != network {
		return nil, fmt.Errorf("chain/local: open %s: %w: the store holds the ledger of network %q", network, chain.ErrConflict, st.Network)
	}
	if c := o.conflict(st.meta); c != "" {
		return nil, fmt.Errorf("chain/local: open %s: %w: the store holds a ledger of %s", network, chain.ErrConflict, c)
	}
	if genesis != nil {
		b0, err := l.block(0)
		if err != nil {
			return nil, fmt.Errorf("chain/local: open %s: %w", network, err)
		}
		if same, err := sameTx(b0.Tx, Tx{Genesis: &g}); err != nil || !same {
			return nil, fmt.Errorf("chain/local: open %s: %w: the store holds another genesis (err %v)", network, chain.ErrConflict, err)
		}
	}
	err = l.ns.Iterate(prefixAccount, func(_, v []byte) error {
		var a chain.Account
		if err := wire.Unmarshal(v, &a, maxRecordSize); err != nil {
			return err
		}
		st.accounts[a.ID] = a
		return nil
	})
	if err != nil {
		return nil, fmt.Errorf("chain/local: open %s: accounts: %w", network, err)
	}
	err = l.ns.Iterate(prefixBatch, func(_, v []byte) error {
		var r chain.BatchRecord
		if err := wire.Unmarshal(v, &r, maxRecordSize); err != nil {
			return err
		}
		st.batches[r.Signed.Batch.Epoch] = r
		return nil
	})
	if err != nil {
		return nil, fmt.Errorf("chain/local: open %s: batches: %w", network, err)
	}
	err = l.ns.Iterate(prefixDispute, func(k, _ []byte) error {
		st.disputes[string(k[len(prefixDispute):])] = true
		return nil
	})
	if err != nil {
		return nil, fmt.Errorf("chain/local: open %s: disputes: %w", network, err)
	}
	l.st = st
	return l, nil
}

func sameTx(a, b Tx) (bool, error) {
	ea, err := wire.Marshal(a)
	if err != nil {
		return false, err
	}
	eb, err := wire.Marshal(b)
	if err != nil {
		return false, err
	}
	return bytes.Equal(ea, eb), nil
}

// commit applies tx as the next block and writes it with the state it
// changed in one synced batch; the in-memory state moves only once the
// write is durable. The caller holds l.mu (or owns l, in Open).
func (l *Ledger) commit(tx Tx) (chain.BatchRecord, bool, error) {
	height := uint64(0)
	var prev []byte
	if l.st.Hash != nil {
		height, prev = l.st.Height+1, l.st.Hash
	}
	next := l.st.clone()
	ch, rec, noop, err := next.apply(height, tx)
	if err != nil || noop {
		return rec, noop, err
	}
	hash, err := blockHash(prev, tx)
	if err != nil {
		return rec, false, err
	}
	next.Height, next.Hash = height, hash

	wb := l.ns.Batch()
	blk, err := wire.Marshal(Block{Height: height, Prev: prev, Tx: tx, Hash: hash})
	if err != nil {
		return rec, false, fmt.Errorf("chain/local: encode block %d: %w", height, err)
	}
	wb.Set(heightKey(prefixBlock, height), blk)
	for _, id := range ch.accounts {
		v, err := wire.Marshal(next.accounts[id])
		if err != nil {
			return rec, false, fmt.Errorf("chain/local: encode account %s: %w", id, err)
		}
		wb.Set(append(slices.Clone(prefixAccount), id...), v)
	}
	if ch.batch != nil {
		v, err := wire.Marshal(*ch.batch)
		if err != nil {
			return rec, false, fmt.Errorf("chain/local: encode batch record: %w", err)
		}
		wb.Set(heightKey(prefixBatch, ch.batch.Signed.Batch.Epoch), v)
	}
	if ch.dispute != "" {
		wb.Set(append(slices.Clone(prefixDispute), ch.dispute...), []byte{1})
	}
	m, err := wire.Marshal(next.meta)
	if err != nil {
		return rec, false, fmt.Errorf("chain/local: encode head: %w", err)
	}
	wb.Set(keyMeta, m)
	if err := wb.Commit(); err != nil {
		return rec, false, fmt.Errorf("chain/local: write block %d: %w", height, err)
	}
	l.st = next
	return rec, false, nil
}

func heightKey(prefix []byte, n uint64) []byte {
	return binary.BigEndian.AppendUint64(slices.Clone(prefix), n)
}

func (l *Ledger) block(height uint64) (Block, error) {
	v, err := l.ns.Get(heightKey(prefixBlock, height))
	if err != nil {
		return Block{}, fmt.Errorf("chain/local: block %d: %w", height, err)
	}
	var b Block
	if err := wire.Unmarshal(v, &b, maxRecordSize); err != nil {
		return Block{}, fmt.Errorf("chain/local: block %d: %w", height, err)
	}
	return b, nil
}

// SubmitBatch implements chain.Settlement.
func (l *Ledger) SubmitBatch(ctx context.Context, b proofs.SignedBatch) (chain.BatchRecord, error) {
	if err := ctx.Err(); err != nil {
		return chain.BatchRecord{}, err
	}
	l.mu.Lock()
	defer l.mu.Unlock()
	rec, _, err := l.commit(Tx{Batch: &b})
	if err != nil {
		return chain.BatchRecord{}, fmt.Errorf("chain/local: submit batch of epoch %d: %w", b.Batch.Epoch, err)
	}
	return rec, nil
}

// Batch implements chain.Settlement.
func (l *Ledger) Batch(ctx context.Context, epoch uint64) (chain.BatchRecord, error) {
	if err := ctx.Err(); err != nil {
		return chain.BatchRecord{}, err
	}
	l.mu.Lock()
	defer l.mu.Unlock()
	rec, ok := l.st.batches[epoch]
	if !ok {
		return chain.BatchRecord{}, fmt.Errorf("chain/local: batch of epoch %d: %w", epoch, chain.ErrNotFound)
	}
	return rec, nil
}

// Account implements chain.Settlement.
func (l *Ledger) Account(ctx context.Context, id peer.ID) (chain.Account, error) {
	if err := ctx.Err(); err != nil {
		return chain.Account{}, err
	}
	l.mu.Lock()
	defer l.mu.Unlock()
	a, ok := l.st.accounts[id]
	if !ok {
		return chain.Account{}, fmt.Errorf("chain/local: account %s: %w", id, chain.ErrNotFound)
	}
	return a, nil
}

// Accounts implements chain.Settlement.
func (l *Ledger) Accounts(ctx context.Context) ([]chain.Account, error) {
	if err := ctx.Err(); err != nil {
		return nil, err
	}
	l.mu.Lock()
	defer l.mu.Unlock()
	return l.st.sortedAccounts(), nil
}

// Keepers implements chain.Settlement.
func (l *Ledger) Keepers(ctx context.Context) ([]chain.Account, error) {
	if err := ctx.Err(); err != nil {
		return nil, err
	}
	l.mu.Lock()
	defer l.mu.Unlock()
	var out []chain.Account
	for _, a := range l.st.accounts {
		if a.Staked() {
			out = append(out, a)
		}
	}
	slices.SortFunc(out, func(a, b chain.Account) int { return cmp.Compare(a.ID, b.ID) })
	return out, nil
}

// SetStake implements chain.Settlement. Setting the stake a keeper
// already holds writes no block.
func (l *Ledger) SetStake(ctx context.Context, keeper peer.ID, stake uint64) error {
	if err := ctx.Err(); err != nil {
		return err
	}
	l.mu.Lock()
	defer l.mu.Unlock()
	if a, ok := l.st.accounts[keeper]; ok && a.Role == chain.RoleKeeper && a.Stake == stake {
		return nil
	}
	if _, _, err := l.commit(Tx{Stake: &StakeChange{Keeper: keeper, Stake: stake}}); err != nil {
		return fmt.Errorf("chain/local: set stake of %s: %w", keeper, err)
	}
	return nil
}

// SubmitDispute implements chain.Settlement. The slash is the ledger's
// fraction of the keeper's stake at the time, rounded down; the window is
// the genesis's (WithDisputeEpochs), counted from each receipt's epoch to
// the last applied one; the evidence checkers are WithEvidence's.
func (l *Ledger) SubmitDispute(ctx context.Context, d chain.Dispute) (chain.Account, error) {
	if err := ctx.Err(); err != nil {
		return chain.Account{}, err
	}
	l.mu.Lock()
	defer l.mu.Unlock()
	if _, _, err := l.commit(Tx{Dispute: &d}); err != nil {
		return chain.Account{}, fmt.Errorf("chain/local: submit dispute: %w", err)
	}
	// The committed dispute named the keeper; find it from the receipt.
	r, _, err := proofs.OpenReceipt(d.A)
	if err != nil {
		return chain.Account{}, fmt.Errorf("chain/local: submit dispute: %w", err)
	}
	return l.st.accounts[r.Keeper], nil
}

// Head implements chain.Settlement.
func (l *Ledger) Head(ctx context.Context) (chain.Head, error) {
	if err := ctx.Err(); err != nil {
		return chain.Head{}, err
	}
	l.mu.Lock()
	defer l.mu.Unlock()
	return l.st.head(), nil
}

// Blocks returns every block from genesis to the head, for another node
// to Replay.
func (l *Ledger) Blocks() ([]Block, error) {
	l.mu.Lock()
	defer l.mu.Unlock()
	out := make([]Block, 0, l.st.Height+1)
	err := l.ns.Iterate(prefixBlock, func(_, v []byte) error {
		var b Block
		if err := wire.Unmarshal(v, &b, maxRecordSize); err != nil {
			return fmt.Errorf("chain/local: block %d: %w", len(out), err)
		}
		out = append(out, b)
		return nil
	})
	if err != nil {
		return nil, err
	}
	return out, nil
}

// Replay recomputes the state of network from blocks, genesis first: it
// checks each block's height, its link to the previous one and its hash,
// and re-applies its transaction with the checks SubmitBatch, SetStake
// and SubmitDispute make. It takes Open's options: the evidence checkers
// to re-check disputes with, and the genesis settings to expect
// (chain.ErrConflict otherwise). It returns the accounts, sorted by ID,
// and the head; a block that fails any check (ErrBadChain, or the
// transaction's own error) stops it.
func Replay(network string, blocks []Block, opts ...Option) ([]chain.Account, chain.Head, error) {
	o, checkers, err := newOptions(opts)
	if err != nil {
		return nil, chain.Head{}, fmt.Errorf("chain/local: replay: %w", err)
	}
	if len(blocks) == 0 {
		return nil, chain.Head{}, fmt.Errorf("%w: no blocks", ErrBadChain)
	}
	st := newState(checkers)
	var prev []byte
	for i, b := range blocks {
		if b.Height != uint64(i) {
			return nil, chain.Head{}, fmt.Errorf("%w: block %d claims height %d", ErrBadChain, i, b.Height)
		}
		if !bytes.Equal(b.Prev, prev) {
			return nil, chain.Head{}, fmt.Errorf("%w: block %d does not follow block %d", ErrBadChain, i, i-1)
		}
		hash, err := blockHash(prev, b.Tx)
		if err != nil {
			return nil, chain.Head{}, err
		}
		if !bytes.Equal(hash, b.Hash) {
			return nil, chain.Head{}, fmt.Errorf("%w: block %d hashes to %x, claims %x", ErrBadChain, i, hash, b.Hash)
		}
		_, _, noop, err := st.apply(b.Height, b.Tx)
		if err != nil {
			return nil, chain.Head{}, fmt.Errorf("chain/local: replay block %d: %w", i, err)
		}
		if noop {
			return nil, chain.Head{}, fmt.Errorf("%w: block %d repeats the batch of epoch %d", ErrBadChain, i, b.Tx.Batch.Batch.Epoch)
		}
		if i == 0 && st.Network != network {
			return nil, chain.Head{}, fmt.Errorf("%w: genesis of network %q, want %q", ErrBadChain, st.Network, network)
		}
		if c := o.conflict(st.meta); i == 0 && c != "" {
			return nil, chain.Head{}, fmt.Errorf("chain/local: replay: %w: genesis of %s", chain.ErrConflict, c)
		}
		st.Height, st.Hash = b.Height, hash
		prev = hash
	}
	return st.sortedAccounts(), st.head(), nil
}

// ErrBadChain means blocks that do not form a hash chain from a genesis.
var ErrBadChain = errors.New("chain/local: broken block chain")
