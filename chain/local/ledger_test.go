package local

import (
	"context"
	"errors"
	"fmt"
	"math/rand/v2"
	"slices"
	"strings"
	"testing"

	"github.com/ipfs/go-cid"
	"github.com/libp2p/go-libp2p/core/crypto"
	"github.com/libp2p/go-libp2p/core/peer"

	"github.com/aropeer/aropeer/chain"
	"github.com/aropeer/aropeer/proofs"
	"github.com/aropeer/aropeer/store"
	"github.com/aropeer/aropeer/wire"
)

const network = "devnet"

type member struct {
	key crypto.PrivKey
	id  peer.ID
}

func newMember(t *testing.T, seed byte) member {
	t.Helper()
	k, _, err := crypto.GenerateEd25519Key(rand.NewChaCha8([32]byte{seed}))
	if err != nil {
		t.Fatal(err)
	}
	id, err := peer.IDFromPrivateKey(k)
	if err != nil {
		t.Fatal(err)
	}
	return member{k, id}
}

// fixture is a ledger of four keepers of equal stake and two edges.
type fixture struct {
	dir     string
	opts    []Option
	db      *store.DB
	l       *Ledger
	keepers []member
	edges   []member
	genesis []chain.Account
	proved  map[cid.Cid]*proofs.InclusionProof // by receiptBatch, by receipt
}

func newFixture(t *testing.T, opts ...Option) *fixture {
	t.Helper()
	f := &fixture{dir: t.TempDir(), opts: opts}
	for i := range 4 {
		f.keepers = append(f.keepers, newMember(t, byte(1+i)))
		f.genesis = append(f.genesis, chain.Account{ID: f.keepers[i].id, Role: chain.RoleKeeper, Stake: 100})
	}
	for i := range 2 {
		f.edges = append(f.edges, newMember(t, byte(10+i)))
	}
	f.open(t)
	return f
}

func (f *fixture) open(t *testing.T) {
	t.Helper()
	db, err := store.Open(f.dir)
	if err != nil {
		t.Fatal(err)
	}
	l, err := Open(db, network, f.genesis, f.opts...)
	if err != nil {
		db.Close()
		t.Fatal(err)
	}
	f.db, f.l = db, l
	t.Cleanup(func() { db.Close() })
}

// batch builds the batch of epoch: edge 0 earns reward, edge 1 pays
// penalty, keeper 0 signed both receipts at 5 each.
func (f *fixture) batch(epoch, reward, penalty uint64) proofs.Batch {
	ids := []cid.Cid{wire.CIDOf(fmt.Appendf(nil, "r%d-1", epoch)), wire.CIDOf(fmt.Appendf(nil, "r%d-2", epoch))}
	results := []proofs.EdgeResult{
		{Edge: f.edges[0].id, Epoch: epoch, Reward: reward},
		{Edge: f.edges[1].id, Epoch: epoch, Penalty: penalty},
	}
	return proofs.BuildBatch(network, epoch, ids, results, map[peer.ID]uint64{f.keepers[0].id: 2}, 5)
}

func sign(t *testing.T, b proofs.Batch, by ...member) proofs.SignedBatch {
	t.Helper()
	sb := proofs.SignedBatch{Batch: b}
	for _, m := range by {
		env, err := proofs.SignBatch(m.key, b)
		if err != nil {
			t.Fatal(err)
		}
		sb.Signatures = append(sb.Signatures, env)
	}
	return sb
}

func (f *fixture) balance(t *testing.T, id peer.ID) int64 {
	t.Helper()
	a, err := f.l.Account(context.Background(), id)
	if err != nil {
		t.Fatal(err)
	}
	return a.Balance
}

func (f *fixture) snapshot(t *testing.T) ([]chain.Account, chain.Head) {
	t.Helper()
	ctx := context.Background()
	as, err := f.l.Accounts(ctx)
	if err != nil {
		t.Fatal(err)
	}
	h, err := f.l.Head(ctx)
	if err != nil {
		t.Fatal(err)
	}
	return as, h
}

func sameState(t *testing.T, what string, as1 []chain.Account, h1 chain.Head, as2 []chain.Account, h2 chain.Head) {
	t.Helper()
	if !slices.Equal(as1, as2) {
		t.Errorf("%s: accounts %+v, want %+v", what, as2, as1)
	}
	if h1.Height != h2.Height || string(h1.Hash) != string(h2.Hash) || h1.Network != h2.Network {
		t.Errorf("%s: head %+v, want %+v", what, h2, h1)
	}
}

func TestQuorumBatchApplies(t *testing.T) {
	f := newFixture(t)
	ctx := context.Background()
	_, h0 := f.snapshot(t)
	rec, err := f.l.SubmitBatch(ctx, sign(t, f.batch(1, 30, 7), f.keepers[0], f.keepers[1], f.keepers[2]))
	if err != nil {
		t.Fatal(err)
	}
	if rec.Status != chain.StatusApplied || rec.Height != h0.Height+1 {
		t.Errorf("record %s at %d, want applied at %d", rec.Status, rec.Height, h0.Height+1)
	}
	if got := f.balance(t, f.edges[0].id); got != 30 {
		t.Errorf("edge 0 balance %d, want 30", got)
	}
	if got := f.balance(t, f.edges[1].id); got != -7 {
		t.Errorf("edge 1 balance %d, want -7 (penalised below zero)", got)
	}
	if got := f.balance(t, f.keepers[0].id); got != 10 {
		t.Errorf("keeper 0 balance %d, want 10", got)
	}
	got, err := f.l.Batch(ctx, 1)
	if err != nil || got.Height != rec.Height {
		t.Errorf("Batch(1) = %+v, %v", got, err)
	}
	if _, err := f.l.Batch(ctx, 2); !errors.Is(err, chain.ErrNotFound) {
		t.Errorf("Batch(2): %v, want ErrNotFound", err)
	}
}

func TestResubmitIsIdempotent(t *testing.T) {
	f := newFixture(t)
	ctx := context.Background()
	b := f.batch(1, 30, 7)
	first, err := f.l.SubmitBatch(ctx, sign(t, b, f.keepers[0], f.keepers[1], f.keepers[2]))
	if err != nil {
		t.Fatal(err)
	}
	as, h := f.snapshot(t)
	// The same batch, with other signatures: still the same batch.
	again, err := f.l.SubmitBatch(ctx, sign(t, b, f.keepers[1], f.keepers[2], f.keepers[3]))
	if err != nil {
		t.Fatalf("resubmit: %v", err)
	}
	if again.Height != first.Height {
		t.Errorf("resubmit record at height %d, want %d", again.Height, first.Height)
	}
	as2, h2 := f.snapshot(t)
	sameState(t, "after resubmit", as, h, as2, h2)
}

func TestConflictingBatchRefused(t *testing.T) {
	f := newFixture(t)
	ctx := context.Background()
	if _, err := f.l.SubmitBatch(ctx, sign(t, f.batch(1, 30, 7), f.keepers[:3]...)); err != nil {
		t.Fatal(err)
	}
	as, h := f.snapshot(t)
	_, err := f.l.SubmitBatch(ctx, sign(t, f.batch(1, 999, 0), f.keepers...))
	if !errors.Is(err, chain.ErrConflict) {
		t.Fatalf("conflicting batch: %v, want ErrConflict", err)
	}
	as2, h2 := f.snapshot(t)
	sameState(t, "after conflict", as, h, as2, h2)
}

func TestNoQuorumRefused(t *testing.T) {
	f := newFixture(t)
	_, err := f.l.SubmitBatch(context.Background(), sign(t, f.batch(1, 30, 7), f.keepers[0], f.keepers[1]))
	if !errors.Is(err, chain.ErrNoQuorum) {
		t.Fatalf("2 of 4 keepers: %v, want ErrNoQuorum", err)
	}
	if !strings.Contains(err.Error(), "200 of 400 stake") {
		t.Errorf("error %q does not name the stake signed and total", err)
	}
	if _, err := f.l.Account(context.Background(), f.edges[0].id); !errors.Is(err, chain.ErrNotFound) {
		t.Errorf("edge account after a refused batch: %v, want ErrNotFound", err)
	}
}

func TestForgedSignatureDoesNotCount(t *testing.T) {
	f := newFixture(t)
	b := f.batch(1, 30, 7)
	outsider := newMember(t, 99)
	sb := sign(t, b, f.keepers[0], f.keepers[1], outsider)
	// Keeper 2's signature with its last byte flipped: a forgery.
	forged := sign(t, b, f.keepers[2]).Signatures[0]
	forged[len(forged)-1] ^= 1
	sb.Signatures = append(sb.Signatures, forged)
	_, err := f.l.SubmitBatch(context.Background(), sb)
	if !errors.Is(err, chain.ErrNoQuorum) {
		t.Fatalf("two keepers, an outsider and a forgery: %v, want ErrNoQuorum", err)
	}
	if !strings.Contains(err.Error(), "200 of 400 stake") {
		t.Errorf("error %q: the forgery or the outsider counted", err)
	}
}

func TestOlderEpochRefused(t *testing.T) {
	f := newFixture(t)
	ctx := context.Background()
	for _, e := range []uint64{1, 3} {
		if _, err := f.l.SubmitBatch(ctx, sign(t, f.batch(e, 30, 7), f.keepers...)); err != nil {
			t.Fatal(err)
		}
	}
	_, err := f.l.SubmitBatch(ctx, sign(t, f.batch(2, 30, 7), f.keepers...))
	if !errors.Is(err, chain.ErrEpochOrder) {
		t.Fatalf("epoch 2 after 3: %v, want ErrEpochOrder", err)
	}
}

func TestWrongNetworkRefused(t *testing.T) {
	f := newFixture(t)
	b := f.batch(1, 30, 7)
	b.Network = "othernet"
	_, err := f.l.SubmitBatch(context.Background(), sign(t, b, f.keepers...))
	if !errors.Is(err, chain.ErrInvalid) {
		t.Fatalf("batch of another network: %v, want ErrInvalid", err)
	}
}

func TestStakeChangesQuorum(t *testing.T) {
	f := newFixture(t)
	ctx := context.Background()
	// Keepers 2 and 3 leave: 0 and 1 hold all the stake.
	for _, k := range f.keepers[2:] {
		if err := f.l.SetStake(ctx, k.id, 0); err != nil {
			t.Fatal(err)
		}
	}
	if _, err := f.l.SubmitBatch(ctx, sign(t, f.batch(1, 30, 7), f.keepers[0], f.keepers[1])); err != nil {
		t.Fatalf("2 of 2 staked keepers: %v", err)
	}
	// The registry holds the staked keepers alone, sorted by ID: neither
	// those that left nor the edges.
	ks, err := f.l.Keepers(ctx)
	if err != nil {
		t.Fatal(err)
	}
	var got []peer.ID
	for _, a := range ks {
		got = append(got, a.ID)
	}
	want := []peer.ID{f.keepers[0].id, f.keepers[1].id}
	slices.Sort(want)
	if !slices.Equal(got, want) {
		t.Errorf("keepers %v, want %v", got, want)
	}
	if err := f.l.SetStake(ctx, f.edges[0].id, 5); !errors.Is(err, chain.ErrInvalid) {
		t.Errorf("stake of an edge: %v, want ErrInvalid", err)
	}
}

func TestReopenKeepsState(t *testing.T) {
	f := newFixture(t)
	ctx := context.Background()
	if err := f.l.SetStake(ctx, f.keepers[3].id, 300); err != nil {
		t.Fatal(err)
	}
	if _, err := f.l.SubmitBatch(ctx, sign(t, f.batch(1, 30, 7), f.keepers[1], f.keepers[3])); err != nil {
		t.Fatal(err)
	}
	as, h := f.snapshot(t)
	rec, err := f.l.Batch(ctx, 1)
	if err != nil {
		t.Fatal(err)
	}
	if err := f.db.Close(); err != nil {
		t.Fatal(err)
	}
	f.open(t)
	as2, h2 := f.snapshot(t)
	sameState(t, "after reopen", as, h, as2, h2)
	rec2, err := f.l.Batch(ctx, 1)
	if err != nil || rec2.Height != rec.Height || len(rec2.Signed.Signatures) != 2 {
		t.Errorf("batch after reopen: %+v, %v", rec2, err)
	}
	// The reopened ledger goes on from where it was.
	if _, err := f.l.SubmitBatch(ctx, sign(t, f.batch(1, 1, 1), f.keepers...)); !errors.Is(err, chain.ErrConflict) {
		t.Errorf("conflict after reopen: %v", err)
	}
	if _, err := f.l.SubmitBatch(ctx, sign(t, f.batch(2, 30, 7), f.keepers...)); err != nil {
		t.Errorf("next epoch after reopen: %v", err)
	}
}

func TestOpenOtherGenesisRefused(t *testing.T) {
	f := newFixture(t)
	if err := f.db.Close(); err != nil {
		t.Fatal(err)
	}
	db, err := store.Open(f.dir)
	if err != nil {
		t.Fatal(err)
	}
	defer db.Close()
	if _, err := Open(db, "othernet", f.genesis); !errors.Is(err, chain.ErrConflict) {
		t.Errorf("open of another network: %v, want ErrConflict", err)
	}
	if _, err := Open(db, network, f.genesis[:2]); !errors.Is(err, chain.ErrConflict) {
		t.Errorf("open with another genesis: %v, want ErrConflict", err)
	}
	if _, err := Open(db, network, nil); err != nil {
		t.Errorf("open without genesis: %v", err)
	}
}

// history applies a few transactions and returns the ledger's blocks.
func history(t *testing.T, f *fixture) []Block {
	t.Helper()
	ctx := context.Background()
	if _, err := f.l.SubmitBatch(ctx, sign(t, f.batch(1, 30, 7), f.keepers[:3]...)); err != nil {
		t.Fatal(err)
	}
	if err := f.l.SetStake(ctx, f.keepers[0].id, 700); err != nil {
		t.Fatal(err)
	}
	if _, err := f.l.SubmitBatch(ctx, sign(t, f.batch(2, 4, 50), f.keepers[0])); err != nil {
		t.Fatal(err)
	}
	blocks, err := f.l.Blocks()
	if err != nil {
		t.Fatal(err)
	}
	if len(blocks) != 4 {
		t.Fatalf("%d blocks, want 4 (genesis, batch, stake, batch)", len(blocks))
	}
	return blocks
}

func TestReplayReproducesState(t *testing.T) {
	f := newFixture(t)
	blocks := history(t, f)
	as, h := f.snapshot(t)
	ras, rh, err := Replay(network, blocks)
	if err != nil {
		t.Fatal(err)
	}
	sameState(t, "replay", as, h, ras, rh)
}

func TestReplayDetectsTampering(t *testing.T) {
	f := newFixture(t)
	tamper := map[string]func(bs []Block) []Block{
		"reward raised": func(bs []Block) []Block {
			bs[1].Tx.Batch.Batch.Results[0].Reward = 1 << 20
			return bs
		},
		"rehashed forgery": func(bs []Block) []Block {
			// A consistent chain whose batch lost its quorum.
			bs[3].Tx.Batch.Signatures = nil
			h, err := blockHash(bs[3].Prev, bs[3].Tx)
			if err != nil {
				t.Fatal(err)
			}
			bs[3].Hash = h
			return bs
		},
		"block dropped":    func(bs []Block) []Block { return slices.Delete(bs, 2, 3) },
		"stake changed":    func(bs []Block) []Block { bs[2].Tx.Stake.Stake = 1; return bs },
		"other network":    func(bs []Block) []Block { return bs }, // replayed as another network
		"genesis inflated": func(bs []Block) []Block { bs[0].Tx.Genesis.Accounts[0].Balance = 1e9; return bs },
	}
	blocks := history(t, f)
	enc, err := wire.Marshal(blocks)
	if err != nil {
		t.Fatal(err)
	}
	for name, fn := range tamper {
		t.Run(name, func(t *testing.T) {
			var bs []Block
			if err := wire.Unmarshal(enc, &bs, maxRecordSize); err != nil {
				t.Fatal(err)
			}
			net := network
			if name == "other network" {
				net = "othernet"
			}
			if _, _, err := Replay(net, fn(bs)); err == nil {
				t.Error("replay of a tampered chain succeeded")
			}
		})
	}
}
