package local

import (
	"bytes"
	"context"
	"crypto/sha256"
	"errors"
	"fmt"
	"slices"
	"strings"
	"testing"

	"github.com/ipfs/go-cid"

	"github.com/aropeer/aropeer/chain"
	"github.com/aropeer/aropeer/liveness"
	"github.com/aropeer/aropeer/proofs"
	"github.com/aropeer/aropeer/storage"
	"github.com/aropeer/aropeer/store"
	"github.com/aropeer/aropeer/wire"
)

// seal seals r, by's receipt.
func seal(t *testing.T, by member, r proofs.Receipt) []byte {
	t.Helper()
	env, _, err := proofs.SealReceipt(by.key, r)
	if err != nil {
		t.Fatal(err)
	}
	return env
}

// receipt seals by's storage receipt on edge 0 in epoch for attempt of
// challenge ch, with result pass or, for any other, fail with reason.
func (f *fixture) receipt(t *testing.T, by member, epoch uint64, ch cid.Cid, attempt uint32, reason string) []byte {
	t.Helper()
	r := proofs.Receipt{
		Network: network, Epoch: epoch, Round: 1,
		Keeper: by.id, Edge: f.edges[0].id, Kind: proofs.KindStorage,
		Challenge: ch, Attempt: attempt, Result: proofs.Pass,
	}
	if reason != "" {
		r.Result, r.Reason = proofs.Fail, reason
	}
	return seal(t, by, r)
}

func receiptID(t *testing.T, env []byte) cid.Cid {
	t.Helper()
	_, id, err := proofs.OpenReceipt(env)
	if err != nil {
		t.Fatal(err)
	}
	return id
}

// receiptBatch builds the batch of epoch over the receipts envs and two
// others, and keeps the inclusion proof of each for f.proof.
func (f *fixture) receiptBatch(t *testing.T, epoch uint64, envs ...[]byte) proofs.Batch {
	t.Helper()
	ids := []cid.Cid{wire.CIDOf(fmt.Appendf(nil, "receipt %d-1", epoch)), wire.CIDOf(fmt.Appendf(nil, "receipt %d-2", epoch))}
	for _, env := range envs {
		ids = append(ids, receiptID(t, env))
	}
	if f.proved == nil {
		f.proved = map[cid.Cid]*proofs.InclusionProof{}
	}
	for _, id := range ids {
		p, err := proofs.ProveReceipt(ids, id)
		if err != nil {
			t.Fatal(err)
		}
		f.proved[id] = &p
	}
	return proofs.BuildBatch(network, epoch, ids, nil, nil, 0)
}

// settle applies receiptBatch, signed by every keeper.
func (f *fixture) settle(t *testing.T, epoch uint64, envs ...[]byte) {
	t.Helper()
	if _, err := f.l.SubmitBatch(context.Background(), sign(t, f.receiptBatch(t, epoch, envs...), f.keepers...)); err != nil {
		t.Fatalf("settle epoch %d: %v", epoch, err)
	}
}

// proof is the inclusion proof of env from the last batch built over it.
func (f *fixture) proof(t *testing.T, env []byte) *proofs.InclusionProof {
	t.Helper()
	p := f.proved[receiptID(t, env)]
	if p == nil {
		t.Fatal("no batch built over the receipt")
	}
	return p
}

func (f *fixture) equivocationOf(t *testing.T, a, b []byte) chain.Dispute {
	t.Helper()
	return chain.Dispute{Kind: chain.DisputeEquivocation, A: a, B: b, ProofA: f.proof(t, a), ProofB: f.proof(t, b)}
}

var challenge1, challenge2 = wire.CIDOf([]byte("challenge 1")), wire.CIDOf([]byte("challenge 2"))

// equivocation is keeper k saying both pass and fail on attempt 0 of
// challenge 1 in epoch 1, with both receipts settled in epoch 1.
func (f *fixture) equivocation(t *testing.T, k member) chain.Dispute {
	t.Helper()
	a, b := f.receipt(t, k, 1, challenge1, 0, ""), f.receipt(t, k, 1, challenge1, 0, "wrong leaf")
	f.settle(t, 1, a, b)
	return f.equivocationOf(t, a, b)
}

func TestEquivocationSlashes(t *testing.T) {
	f := newFixture(t, WithSlashPPM(250_000)) // a quarter
	ctx := context.Background()
	k := f.keepers[1]
	d := f.equivocation(t, k)
	_, h0 := f.snapshot(t)
	got, err := f.l.SubmitDispute(ctx, d)
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
	last := &blocks[len(blocks)-1]
	last.Tx.Dispute.B, last.Tx.Dispute.ProofB = last.Tx.Dispute.A, last.Tx.Dispute.ProofA
	if last.Hash, err = blockHash(last.Prev, last.Tx); err != nil {
		t.Fatal(err)
	}
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
	if _, err := f.l.SubmitDispute(ctx, d); !errors.Is(err, chain.ErrDisputeRefused) {
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

func TestOpenOtherWindowRefused(t *testing.T) {
	f := newFixture(t) // the default window
	if err := f.db.Close(); err != nil {
		t.Fatal(err)
	}
	db, err := store.Open(f.dir)
	if err != nil {
		t.Fatal(err)
	}
	defer db.Close()
	if _, err := Open(db, network, f.genesis, WithDisputeEpochs(3)); !errors.Is(err, chain.ErrConflict) {
		t.Errorf("open with another dispute window: %v, want ErrConflict", err)
	}
	if _, err := Open(db, network, nil, WithDisputeEpochs(0)); !errors.Is(err, chain.ErrInvalid) {
		t.Errorf("open with a window of 0 epochs: %v, want ErrInvalid", err)
	}
	// The default, named, is the same genesis.
	if _, err := Open(db, network, f.genesis, WithDisputeEpochs(DefaultDisputeEpochs)); err != nil {
		t.Errorf("open with the default window named: %v", err)
	}
	blocks := func() []Block {
		l, err := Open(db, network, nil)
		if err != nil {
			t.Fatal(err)
		}
		bs, err := l.Blocks()
		if err != nil {
			t.Fatal(err)
		}
		return bs
	}()
	if _, _, err := Replay(network, blocks, WithDisputeEpochs(3)); !errors.Is(err, chain.ErrConflict) {
		t.Errorf("replay expecting another dispute window: %v, want ErrConflict", err)
	}
}

func TestRepeatedDisputeRefused(t *testing.T) {
	f := newFixture(t)
	ctx := context.Background()
	k := f.keepers[2]
	d := f.equivocation(t, k)
	if _, err := f.l.SubmitDispute(ctx, d); err != nil {
		t.Fatal(err)
	}
	// A third conflicting receipt for the same attempt is the same
	// offence: one slash per attempt, however many receipts it signed.
	// This one claims another epoch and is in that epoch's batch.
	third := f.receipt(t, k, 2, challenge1, 0, "another reason")
	f.settle(t, 2, third)
	as, h := f.snapshot(t)
	for name, again := range map[string]chain.Dispute{
		"same order":      d,
		"swapped":         f.equivocationOf(t, d.B, d.A),
		"a third receipt": f.equivocationOf(t, d.A, third),
	} {
		_, err := f.l.SubmitDispute(ctx, again)
		if !errors.Is(err, chain.ErrDisputeRefused) || !strings.Contains(err.Error(), "already slashed for attempt 0") {
			t.Errorf("%s: %v, want ErrDisputeRefused, already slashed", name, err)
		}
	}
	as2, h2 := f.snapshot(t)
	sameState(t, "after repeats", as, h, as2, h2)
}

// refuses submits each dispute and wants it refused, saying why, and
// the ledger unchanged.
func refuses(t *testing.T, f *fixture, cases map[string]struct {
	d    chain.Dispute
	why  string
	want error
}) {
	t.Helper()
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

func TestDisputeWithoutEquivocationRefused(t *testing.T) {
	f := newFixture(t)
	k, other := f.keepers[0], f.keepers[1]
	honest := f.receipt(t, k, 1, challenge1, 0, "")
	forged := f.receipt(t, k, 1, challenge1, 0, "wrong leaf")
	forged[len(forged)-1] ^= 1
	eq := func(a, b []byte) chain.Dispute { return chain.Dispute{Kind: chain.DisputeEquivocation, A: a, B: b} }
	refuses(t, f, map[string]struct {
		d    chain.Dispute
		why  string
		want error
	}{
		"one honest receipt":  {eq(honest, honest), "same receipt", nil},
		"different challenge": {eq(honest, f.receipt(t, k, 1, challenge2, 0, "wrong leaf")), "not one challenge", nil},
		"different attempt":   {eq(honest, f.receipt(t, k, 1, challenge1, 1, "wrong leaf")), "not one attempt", nil},
		"different keepers":   {eq(honest, f.receipt(t, other, 1, challenge1, 0, "wrong leaf")), "not one keeper", nil},
		"forged envelope":     {eq(honest, forged), "receipt B", wire.ErrBadSignature},
		"garbage":             {eq([]byte("not an envelope"), honest), "receipt A", nil},
		"missing receipt":     {eq(honest, nil), "receipt B", nil},
		"no kind":             {chain.Dispute{A: honest, B: forged}, `dispute of kind ""`, nil},
		"unknown kind":        {chain.Dispute{Kind: "lies", A: honest, B: forged}, `dispute of kind "lies"`, nil},
		"with a challenge":    {chain.Dispute{Kind: chain.DisputeEquivocation, A: honest, B: forged, Challenge: []byte{1}}, "carries no challenge", nil},
	})
}

func TestDisputeNeedsInclusion(t *testing.T) {
	f := newFixture(t)
	k := f.keepers[0]
	a, b := f.receipt(t, k, 1, challenge1, 0, ""), f.receipt(t, k, 1, challenge1, 0, "wrong leaf")
	noProofs := chain.Dispute{Kind: chain.DisputeEquivocation, A: a, B: b}
	refuses(t, f, map[string]struct {
		d    chain.Dispute
		why  string
		want error
	}{
		"epoch not settled": {noProofs, "receipt A of epoch 1: no batch applied for the epoch, which is not settled yet", nil},
	})

	f.settle(t, 1, a, b)
	other := f.receipt(t, k, 2, challenge2, 0, "")
	f.settle(t, 2, other)
	// A proof from another batch, of a tree of another size, given as A's.
	moved := *f.proof(t, other)
	moved.Leaf = receiptID(t, a)
	// A's proof with one sibling hash changed.
	tampered := *f.proof(t, a)
	tampered.Path = slices.Clone(tampered.Path)
	tampered.Path[0] = bytes.Clone(tampered.Path[0])
	tampered.Path[0][0] ^= 1
	with := func(pa, pb *proofs.InclusionProof) chain.Dispute {
		d := noProofs
		d.ProofA, d.ProofB = pa, pb
		return d
	}
	refuses(t, f, map[string]struct {
		d    chain.Dispute
		why  string
		want error
	}{
		"no proofs":               {noProofs, "receipt A without an inclusion proof in the batch of epoch 1", nil},
		"no proof of B":           {with(f.proof(t, a), nil), "receipt B without an inclusion proof", nil},
		"B's proof as A's":        {with(f.proof(t, b), f.proof(t, b)), "inclusion proof of receipt A is of leaf " + receiptID(t, b).String(), nil},
		"another batch's receipt": {with(f.proof(t, other), f.proof(t, b)), "inclusion proof of receipt A is of leaf", nil},
		"another batch's proof":   {with(&moved, f.proof(t, b)), "receipt A not in the batch of epoch 1", proofs.ErrBadProof},
		"tampered path":           {with(&tampered, f.proof(t, b)), "receipt A not in the batch of epoch 1", proofs.ErrBadProof},
	})

	if _, err := f.l.SubmitDispute(context.Background(), f.equivocationOf(t, a, b)); err != nil {
		t.Errorf("with both proofs: %v", err)
	}
}

func TestDisputeWindow(t *testing.T) {
	for _, tc := range []struct {
		opts   []Option
		window uint64
	}{
		{nil, DefaultDisputeEpochs},
		{[]Option{WithDisputeEpochs(2)}, 2},
	} {
		t.Run(fmt.Sprintf("%d epochs", tc.window), func(t *testing.T) {
			f := newFixture(t, tc.opts...)
			ctx := context.Background()
			first, second := f.keepers[0], f.keepers[1]
			a1, b1 := f.receipt(t, first, 1, challenge1, 0, ""), f.receipt(t, first, 1, challenge1, 0, "wrong leaf")
			a2, b2 := f.receipt(t, second, 1, challenge1, 0, ""), f.receipt(t, second, 1, challenge1, 0, "wrong leaf")
			f.settle(t, 1, a1, b1, a2, b2)
			for e := uint64(2); e <= 1+tc.window; e++ {
				f.settle(t, e)
			}
			// The last epoch of the window is still open.
			if _, err := f.l.SubmitDispute(ctx, f.equivocationOf(t, a1, b1)); err != nil {
				t.Fatalf("dispute at epoch %d: %v", 1+tc.window, err)
			}
			f.settle(t, 2+tc.window)
			_, err := f.l.SubmitDispute(ctx, f.equivocationOf(t, a2, b2))
			want := fmt.Sprintf("dispute window of %d epochs for epoch 1 closed at epoch %d", tc.window, 2+tc.window)
			if !errors.Is(err, chain.ErrDisputeRefused) || !strings.Contains(err.Error(), want) {
				t.Errorf("dispute at epoch %d: %v, want ErrDisputeRefused saying %q", 2+tc.window, err, want)
			}
		})
	}
}

func TestSlashReducesQuorumWeight(t *testing.T) {
	f := newFixture(t)
	ctx := context.Background()
	big := f.keepers[0]
	// Keeper 0 holds 400 of 700: with keeper 1 it signs 500, over 2/3.
	if err := f.l.SetStake(ctx, big.id, 400); err != nil {
		t.Fatal(err)
	}
	a, b := f.receipt(t, big, 1, challenge1, 0, ""), f.receipt(t, big, 1, challenge1, 0, "wrong leaf")
	if _, err := f.l.SubmitBatch(ctx, sign(t, f.receiptBatch(t, 1, a, b), big, f.keepers[1])); err != nil {
		t.Fatalf("keepers 0 and 1 before the slash: %v", err)
	}
	// Halved, keeper 0 holds 200 of 500: with keeper 1 it signs 300, under 2/3.
	if _, err := f.l.SubmitDispute(ctx, f.equivocationOf(t, a, b)); err != nil {
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

// challenge seals by's challenge of kind to edge 0 in round 1 of epoch 1.
func (f *fixture) challenge(t *testing.T, by member, kind proofs.Kind, attempt uint32) (proofs.Challenge, []byte) {
	t.Helper()
	seed := sha256.Sum256([]byte("round 1"))
	c := proofs.Challenge{
		Network: network, Epoch: 1, Round: 1, Keeper: by.id, Edge: f.edges[0].id,
		Kind: kind, Attempt: attempt, Seed: seed[:],
	}
	if kind == proofs.KindStorage {
		c.Piece = &proofs.Piece{CID: storage.PieceCID([32]byte{1}), Size: 1 << 20}
	}
	env, _, err := proofs.SealChallenge(by.key, c)
	if err != nil {
		t.Fatal(err)
	}
	return c, env
}

// verdict seals by's receipt of c with result and evidence.
func verdict(t *testing.T, by member, c proofs.Challenge, result proofs.Result, evidence []byte) []byte {
	t.Helper()
	id, err := c.ID()
	if err != nil {
		t.Fatal(err)
	}
	r := proofs.Receipt{
		Network: c.Network, Epoch: c.Epoch, Round: c.Round, Keeper: c.Keeper, Edge: c.Edge, Kind: c.Kind,
		Challenge: id, Attempt: c.Attempt, Result: result, Evidence: evidence,
	}
	if result != proofs.Pass {
		r.Reason = "no heartbeat"
	}
	return seal(t, by, r)
}

// heartbeat is edge 0's sealed answer to c.
func (f *fixture) heartbeat(t *testing.T, c proofs.Challenge) []byte {
	t.Helper()
	env, err := liveness.SealHeartbeat(f.edges[0].key, liveness.HeartbeatFor(c))
	if err != nil {
		t.Fatal(err)
	}
	return env
}

func TestEvidenceDispute(t *testing.T) {
	f := newFixture(t, WithEvidence(liveness.NewEvidenceChecker()))
	ctx := context.Background()
	honest, garbage, copier, other := f.keepers[0], f.keepers[1], f.keepers[2], f.keepers[3]

	// The honest keeper passed attempt 1 on the edge's heartbeat; its
	// challenge is disputed as sealed for attempt 0, the ID being the same.
	hc, hEnv := f.challenge(t, honest, proofs.KindLiveness, 0)
	hc.Attempt = 1
	honestPass := verdict(t, honest, hc, proofs.Pass, f.heartbeat(t, hc))
	_, hEnv1 := f.challenge(t, honest, proofs.KindLiveness, 1)
	// A lazy keeper signed a pass on garbage, and also a fail for the same
	// attempt.
	gc, gEnv := f.challenge(t, garbage, proofs.KindLiveness, 0)
	garbagePass := verdict(t, garbage, gc, proofs.Pass, []byte("trust me"))
	garbageFail := verdict(t, garbage, gc, proofs.Fail, nil)
	// Another copied the edge's heartbeat to the honest keeper.
	cc, cEnv := f.challenge(t, copier, proofs.KindLiveness, 0)
	copiedPass := verdict(t, copier, cc, proofs.Pass, f.heartbeat(t, hc))
	// The last passed a storage challenge, which this ledger cannot check,
	// and failed a liveness one.
	sc, sEnv := f.challenge(t, other, proofs.KindStorage, 0)
	storagePass := verdict(t, other, sc, proofs.Pass, []byte("some proof"))
	oc, oEnv := f.challenge(t, other, proofs.KindLiveness, 0)
	otherFail := verdict(t, other, oc, proofs.Fail, nil)
	f.settle(t, 1, honestPass, garbagePass, garbageFail, copiedPass, storagePass, otherFail)

	ev := func(a, challenge []byte) chain.Dispute {
		return chain.Dispute{Kind: chain.DisputeEvidence, A: a, ProofA: f.proof(t, a), Challenge: challenge}
	}
	withB := ev(garbagePass, gEnv)
	withB.B = garbageFail
	noProof := ev(garbagePass, gEnv)
	noProof.ProofA = nil
	refuses(t, f, map[string]struct {
		d    chain.Dispute
		why  string
		want error
	}{
		"honest pass":                {ev(honestPass, hEnv), "evidence of receipt A for attempt 1 of challenge", nil},
		"honest pass, own attempt":   {ev(honestPass, hEnv1), "verifies: its pass stands", nil},
		"kind without a checker":     {ev(storagePass, sEnv), "evidence of kind storage cannot be checked by this ledger", nil},
		"a fail":                     {ev(otherFail, oEnv), "receipt A is a fail: only a pass claims evidence", nil},
		"another keeper's challenge": {ev(garbagePass, hEnv), "is not receipt A's challenge", nil},
		"no challenge":               {ev(garbagePass, nil), "challenge: ", nil},
		"a receipt as challenge":     {ev(garbagePass, garbageFail), "challenge: ", wire.ErrWrongPayloadType},
		"two receipts":               {withB, "an evidence dispute carries one receipt", nil},
		"no proof":                   {noProof, "receipt A without an inclusion proof", nil},
	})

	for _, tc := range []struct {
		name    string
		d       chain.Dispute
		keeper  member
		stake   uint64
		slashed uint64
	}{
		{"garbage evidence", ev(garbagePass, gEnv), garbage, 50, 50},
		{"another challenge's heartbeat", ev(copiedPass, cEnv), copier, 50, 50},
	} {
		got, err := f.l.SubmitDispute(ctx, tc.d)
		if err != nil {
			t.Fatalf("%s: %v", tc.name, err)
		}
		if got.ID != tc.keeper.id || got.Stake != tc.stake || got.Slashed != tc.slashed {
			t.Errorf("%s: account %+v, want keeper %s with stake %d, slashed %d", tc.name, got, tc.keeper.id, tc.stake, tc.slashed)
		}
	}

	// One slash per attempt, whatever the offence.
	refuses(t, f, map[string]struct {
		d    chain.Dispute
		why  string
		want error
	}{
		"again":           {ev(garbagePass, gEnv), "already slashed for attempt 0", nil},
		"as equivocation": {f.equivocationOf(t, garbagePass, garbageFail), "already slashed for attempt 0", nil},
	})

	// Replay with the same checkers reproduces the ledger; a node without
	// them cannot re-apply the slash.
	as, h := f.snapshot(t)
	blocks, err := f.l.Blocks()
	if err != nil {
		t.Fatal(err)
	}
	ras, rh, err := Replay(network, blocks, WithEvidence(liveness.NewEvidenceChecker()))
	if err != nil {
		t.Fatal(err)
	}
	sameState(t, "replay", as, h, ras, rh)
	if _, _, err := Replay(network, blocks); !errors.Is(err, chain.ErrDisputeRefused) || !strings.Contains(err.Error(), "evidence of kind liveness cannot be checked") {
		t.Errorf("replay without the checker: %v, want ErrDisputeRefused, cannot be checked", err)
	}
	checker := liveness.NewEvidenceChecker()
	if _, _, err := Replay(network, blocks, WithEvidence(checker, checker)); !errors.Is(err, chain.ErrInvalid) {
		t.Errorf("replay with two checkers of a kind: %v, want ErrInvalid", err)
	}
}
