package local

import (
	"context"
	"errors"
	"strings"
	"testing"

	"github.com/ipfs/go-cid"

	"github.com/aropeer/aropeer/chain"
	"github.com/aropeer/aropeer/proofs"
	"github.com/aropeer/aropeer/store"
	"github.com/aropeer/aropeer/wire"
)

// receipt seals by's receipt on edge 0 for attempt of challenge ch, with
// result pass or, for any other, fail with reason.
func (f *fixture) receipt(t *testing.T, by member, ch cid.Cid, attempt uint32, reason string) []byte {
	t.Helper()
	r := proofs.Receipt{
		Network: network, Epoch: 1, Round: 1,
		Keeper: by.id, Edge: f.edges[0].id, Kind: proofs.KindStorage,
		Challenge: ch, Attempt: attempt, Result: proofs.Pass,
	}
	if reason != "" {
		r.Result, r.Reason = proofs.Fail, reason
	}
	env, _, err := proofs.SealReceipt(by.key, r)
	if err != nil {
		t.Fatal(err)
	}
	return env
}

var challenge1, challenge2 = wire.CIDOf([]byte("challenge 1")), wire.CIDOf([]byte("challenge 2"))

// equivocation is keeper k saying both pass and fail on attempt 0 of
// challenge 1.
func (f *fixture) equivocation(t *testing.T, k member) chain.Dispute {
	t.Helper()
	return chain.Dispute{
		A: f.receipt(t, k, challenge1, 0, ""),
		B: f.receipt(t, k, challenge1, 0, "wrong leaf"),
	}
}

func TestEquivocationSlashes(t *testing.T) {
	f := newFixture(t, WithSlashPPM(250_000)) // a quarter
	ctx := context.Background()
	_, h0 := f.snapshot(t)
	k := f.keepers[1]
	got, err := f.l.SubmitDispute(ctx, f.equivocation(t, k))
	if err != nil {
		t.Fatal(err)
	}
	want := chain.Account{ID: k.id, Role: chain.RoleKeeper, Stake: 75, Slashed: 25}
	if got != want {
		t.Errorf("keeper after the slash %+v, want %+v", got, want)
	}
	if a, err := f.l.Account(ctx, k.id); err != nil || a != want {
		t.Errorf("Account = %+v, %v; want %+v", a, err, want)
	}
	as, h := f.snapshot(t)
	if h.Height != h0.Height+1 {
		t.Errorf("head at %d after a dispute, want %d", h.Height, h0.Height+1)
	}

	// Replay gets there too, and a tampered dispute breaks it.
	blocks, err := f.l.Blocks()
	if err != nil {
		t.Fatal(err)
	}
	ras, rh, err := Replay(network, blocks)
	if err != nil {
		t.Fatal(err)
	}
	sameState(t, "replay", as, h, ras, rh)
	blocks[len(blocks)-1].Tx.Dispute.B = blocks[len(blocks)-1].Tx.Dispute.A
	hash, err := blockHash(blocks[len(blocks)-1].Prev, blocks[len(blocks)-1].Tx)
	if err != nil {
		t.Fatal(err)
	}
	blocks[len(blocks)-1].Hash = hash
	if _, _, err := Replay(network, blocks); !errors.Is(err, chain.ErrDisputeRefused) {
		t.Errorf("replay of a rehashed dispute without equivocation: %v, want ErrDisputeRefused", err)
	}

	// Reopened, the ledger keeps the slash and its memory of the dispute.
	if err := f.db.Close(); err != nil {
		t.Fatal(err)
	}
	f.open(t)
	as2, h2 := f.snapshot(t)
	sameState(t, "after reopen", as, h, as2, h2)
	if _, err := f.l.SubmitDispute(ctx, f.equivocation(t, k)); !errors.Is(err, chain.ErrDisputeRefused) {
		t.Errorf("repeated dispute after reopen: %v, want ErrDisputeRefused", err)
	}
}

func TestDefaultSlashIsHalf(t *testing.T) {
	f := newFixture(t)
	a, err := f.l.SubmitDispute(context.Background(), f.equivocation(t, f.keepers[0]))
	if err != nil {
		t.Fatal(err)
	}
	if a.Stake != 50 || a.Slashed != 50 {
		t.Errorf("keeper after the default slash: stake %d, slashed %d; want 50, 50", a.Stake, a.Slashed)
	}
}

func TestOpenOtherSlashRefused(t *testing.T) {
	f := newFixture(t, WithSlashPPM(250_000))
	if err := f.db.Close(); err != nil {
		t.Fatal(err)
	}
	db, err := store.Open(f.dir)
	if err != nil {
		t.Fatal(err)
	}
	defer db.Close()
	if _, err := Open(db, network, f.genesis, WithSlashPPM(DefaultSlashPPM)); !errors.Is(err, chain.ErrConflict) {
		t.Errorf("open with another slash fraction: %v, want ErrConflict", err)
	}
	if _, err := Open(db, network, nil, WithSlashPPM(2_000_000)); !errors.Is(err, chain.ErrInvalid) {
		t.Errorf("open with a slash over the whole: %v, want ErrInvalid", err)
	}
}

func TestRepeatedDisputeRefused(t *testing.T) {
	f := newFixture(t)
	ctx := context.Background()
	d := f.equivocation(t, f.keepers[2])
	if _, err := f.l.SubmitDispute(ctx, d); err != nil {
		t.Fatal(err)
	}
	as, h := f.snapshot(t)
	// A third conflicting receipt for the same attempt is the same
	// offence: one slash per attempt, however many receipts it signed.
	third := f.receipt(t, f.keepers[2], challenge1, 0, "another reason")
	for name, again := range map[string]chain.Dispute{
		"same order":      d,
		"swapped":         {A: d.B, B: d.A},
		"a third receipt": {A: d.A, B: third},
	} {
		_, err := f.l.SubmitDispute(ctx, again)
		if !errors.Is(err, chain.ErrDisputeRefused) || !strings.Contains(err.Error(), "already slashed for equivocating") {
			t.Errorf("%s: %v, want ErrDisputeRefused, already slashed", name, err)
		}
	}
	as2, h2 := f.snapshot(t)
	sameState(t, "after repeats", as, h, as2, h2)
}

func TestDisputeWithoutEquivocationRefused(t *testing.T) {
	f := newFixture(t)
	k, other := f.keepers[0], f.keepers[1]
	honest := f.receipt(t, k, challenge1, 0, "")
	forged := f.receipt(t, k, challenge1, 0, "wrong leaf")
	forged[len(forged)-1] ^= 1
	cases := map[string]struct {
		d    chain.Dispute
		why  string
		want error
	}{
		"one honest receipt":  {chain.Dispute{A: honest, B: honest}, "same receipt", nil},
		"different challenge": {chain.Dispute{A: honest, B: f.receipt(t, k, challenge2, 0, "wrong leaf")}, "not one challenge", nil},
		"different attempt":   {chain.Dispute{A: honest, B: f.receipt(t, k, challenge1, 1, "wrong leaf")}, "not one attempt", nil},
		"different keepers":   {chain.Dispute{A: honest, B: f.receipt(t, other, challenge1, 0, "wrong leaf")}, "not one keeper", nil},
		"forged envelope":     {chain.Dispute{A: honest, B: forged}, "receipt B", wire.ErrBadSignature},
		"garbage":             {chain.Dispute{A: []byte("not an envelope"), B: honest}, "receipt A", nil},
		"missing receipt":     {chain.Dispute{A: honest}, "receipt B", nil},
	}
	as, h := f.snapshot(t)
	for name, c := range cases {
		t.Run(name, func(t *testing.T) {
			_, err := f.l.SubmitDispute(context.Background(), c.d)
			if !errors.Is(err, chain.ErrDisputeRefused) {
				t.Fatalf("%v, want ErrDisputeRefused", err)
			}
			if !strings.Contains(err.Error(), c.why) {
				t.Errorf("error %q does not say %q", err, c.why)
			}
			if c.want != nil && !errors.Is(err, c.want) {
				t.Errorf("error %q, want it to match %v", err, c.want)
			}
		})
	}
	as2, h2 := f.snapshot(t)
	sameState(t, "after refused disputes", as, h, as2, h2)
}

func TestSlashReducesQuorumWeight(t *testing.T) {
	f := newFixture(t)
	ctx := context.Background()
	big := f.keepers[0]
	// Keeper 0 holds 400 of 700: with keeper 1 it signs 500, over 2/3.
	if err := f.l.SetStake(ctx, big.id, 400); err != nil {
		t.Fatal(err)
	}
	if _, err := f.l.SubmitBatch(ctx, sign(t, f.batch(1, 30, 7), big, f.keepers[1])); err != nil {
		t.Fatalf("keepers 0 and 1 before the slash: %v", err)
	}
	// Halved, keeper 0 holds 200 of 500: with keeper 1 it signs 300, under 2/3.
	if _, err := f.l.SubmitDispute(ctx, f.equivocation(t, big)); err != nil {
		t.Fatal(err)
	}
	_, err := f.l.SubmitBatch(ctx, sign(t, f.batch(2, 30, 7), big, f.keepers[1]))
	if !errors.Is(err, chain.ErrNoQuorum) || !strings.Contains(err.Error(), "300 of 500 stake") {
		t.Fatalf("keepers 0 and 1 after the slash: %v, want ErrNoQuorum with 300 of 500 stake", err)
	}
	// Keeper 2 makes up for it: 400 of 500.
	if _, err := f.l.SubmitBatch(ctx, sign(t, f.batch(2, 30, 7), big, f.keepers[1], f.keepers[2])); err != nil {
		t.Fatalf("keepers 0, 1 and 2 after the slash: %v", err)
	}
}
