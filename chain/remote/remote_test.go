package remote

import (
	"context"
	"encoding/binary"
	"errors"
	"io"
	"reflect"
	"slices"
	"strings"
	"testing"
	"time"

	"github.com/aropeer/aropeer/chain"
	"github.com/aropeer/aropeer/chain/local"
	"github.com/aropeer/aropeer/proofs"
	"github.com/aropeer/aropeer/wire"
)

func TestSubmitThroughClient(t *testing.T) {
	f := newFixture(t)
	c := f.client()
	ctx := t.Context()
	h0, err := c.Head(ctx)
	if err != nil {
		t.Fatal(err)
	}

	b := f.batch(1, 30, 7)
	rec, err := c.SubmitBatch(ctx, sign(t, b, f.keepers[:3]...))
	if err != nil {
		t.Fatal(err)
	}
	if rec.Status != chain.StatusApplied || rec.Height != h0.Height+1 {
		t.Errorf("record %s at height %d, want applied at %d", rec.Status, rec.Height, h0.Height+1)
	}
	for _, want := range []struct {
		m       member
		balance int64
	}{{f.edges[0], 30}, {f.edges[1], -7}, {f.keepers[0], 10}} {
		a, err := c.Account(ctx, want.m.id)
		if err != nil || a.Balance != want.balance {
			t.Errorf("account %s: balance %d (err %v), want %d", want.m.id, a.Balance, err, want.balance)
		}
	}

	// The same batch with other signatures is a no-op with the same record.
	h1, _ := c.Head(ctx)
	again, err := c.SubmitBatch(ctx, sign(t, b, f.keepers[1:]...))
	if err != nil {
		t.Fatalf("resubmit: %v", err)
	}
	if again.Height != rec.Height {
		t.Errorf("resubmitted record at height %d, want %d", again.Height, rec.Height)
	}
	if h2, _ := c.Head(ctx); h2.Height != h1.Height || string(h2.Hash) != string(h1.Hash) {
		t.Errorf("resubmission moved the head from %d to %d", h1.Height, h2.Height)
	}
	got, err := c.Batch(ctx, 1)
	if err != nil || got.Height != rec.Height || got.Signed.Batch.Epoch != 1 {
		t.Errorf("Batch(1) = record at %d of epoch %d, %v", got.Height, got.Signed.Batch.Epoch, err)
	}

	// Refusals come back as the chain's sentinels, in one attempt each.
	opened := f.node.opened.Load()
	_, err = c.SubmitBatch(ctx, sign(t, f.batch(1, 999, 0), f.keepers...))
	if !errors.Is(err, chain.ErrConflict) {
		t.Errorf("conflicting batch: %v, want ErrConflict", err)
	}
	var remoteErr *Error
	if !errors.As(err, &remoteErr) || !strings.Contains(remoteErr.Message, "already applied") {
		t.Errorf("conflicting batch: %v, want the sequencer's message", err)
	}
	if n := f.node.opened.Load() - opened; n != 1 {
		t.Errorf("a refused submission took %d streams, want 1: refusals are not retried", n)
	}
	if _, err := c.SubmitBatch(ctx, sign(t, f.batch(2, 1, 0), f.keepers[0])); !errors.Is(err, chain.ErrNoQuorum) {
		t.Errorf("batch of one keeper of four: %v, want ErrNoQuorum", err)
	}
	if _, err := c.Batch(ctx, 99); !errors.Is(err, chain.ErrNotFound) {
		t.Errorf("Batch(99): %v, want ErrNotFound", err)
	}
	if _, err := c.Account(ctx, newMember(t, 99).id); !errors.Is(err, chain.ErrNotFound) {
		t.Errorf("unknown account: %v, want ErrNotFound", err)
	}
	if err := c.SetStake(ctx, f.keepers[0].id, 1); !errors.Is(err, chain.ErrInvalid) || !strings.Contains(err.Error(), "operator") {
		t.Errorf("SetStake: %v, want ErrInvalid naming the operator", err)
	}

	// What the client reads is what the ledger holds.
	as, err := c.Accounts(ctx)
	if err != nil {
		t.Fatal(err)
	}
	want, _ := f.ledger.Accounts(ctx)
	if !slices.Equal(as, want) {
		t.Errorf("accounts %+v, want %+v", as, want)
	}
	ks, err := c.Keepers(ctx)
	if err != nil {
		t.Fatal(err)
	}
	want, _ = f.ledger.Keepers(ctx)
	if len(ks) != len(f.keepers) || !slices.Equal(ks, want) {
		t.Errorf("keepers %+v, want the %d of the ledger %+v", ks, len(f.keepers), want)
	}
}

// recordingLedger records the dispute it is given and slashes nothing.
type recordingLedger struct {
	*local.Ledger
	got    *chain.Dispute
	keeper member
}

func (l recordingLedger) SubmitDispute(_ context.Context, d chain.Dispute) (chain.Account, error) {
	*l.got = d
	return chain.Account{ID: l.keeper.id, Role: chain.RoleKeeper, Slashed: 1}, nil
}

func TestDisputeThroughClient(t *testing.T) {
	f := newFixture(t)
	c := f.client()
	k := f.keepers[1]
	r := f.receipt(t, k, "")
	if _, err := c.SubmitDispute(t.Context(), chain.Dispute{Kind: chain.DisputeEquivocation, A: r, B: r}); !errors.Is(err, chain.ErrDisputeRefused) {
		t.Errorf("a dispute of one receipt twice: %v, want ErrDisputeRefused", err)
	}

	// The dispute reaches the ledger whole, and its answer comes back.
	f.stop()
	var got chain.Dispute
	f.serve(t, recordingLedger{Ledger: f.ledger, got: &got, keeper: k})
	d := chain.Dispute{Kind: chain.DisputeEquivocation, A: r, B: f.receipt(t, k, "wrong leaf")}
	a, err := c.SubmitDispute(t.Context(), d)
	if err != nil {
		t.Fatal(err)
	}
	if !reflect.DeepEqual(got, d) {
		t.Errorf("the ledger got dispute %+v, want %+v", got, d)
	}
	if a.ID != k.id || a.Slashed != 1 {
		t.Errorf("answer %+v, want the ledger's account", a)
	}
}

func TestHeadOfOtherNetwork(t *testing.T) {
	f := newFixture(t)
	c := NewClient(f.node, f.seq.ID(), "othernet")
	_, err := c.Head(t.Context())
	if !errors.Is(err, ErrWrongNetwork) || !strings.Contains(err.Error(), `"devnet"`) || !strings.Contains(err.Error(), `"othernet"`) {
		t.Errorf("Head of another network: %v, want ErrWrongNetwork naming both", err)
	}
}

// TestBlocksReplay checks that a node replays the blocks it downloads to
// the sequencer's state, over more than one page.
func TestBlocksReplay(t *testing.T) {
	f := newFixture(t)
	ctx := t.Context()
	for e := range uint64(3) {
		if _, err := f.ledger.SubmitBatch(ctx, sign(t, f.batch(e+1, 10*e, e), f.keepers[:3]...)); err != nil {
			t.Fatal(err)
		}
	}
	for i := range maxPageBlocks + 10 {
		if err := f.ledger.SetStake(ctx, f.keepers[3].id, uint64(100+i%2)); err != nil {
			t.Fatal(err)
		}
	}
	blocks, err := f.client().Blocks(ctx)
	if err != nil {
		t.Fatal(err)
	}
	as, h, err := local.Replay(devnet, blocks)
	if err != nil {
		t.Fatal(err)
	}
	wantAs, _ := f.ledger.Accounts(ctx)
	wantH, _ := f.ledger.Head(ctx)
	if h.Height != wantH.Height || string(h.Hash) != string(wantH.Hash) || h.Network != wantH.Network {
		t.Errorf("replayed head %d %x, want %d %x", h.Height, h.Hash, wantH.Height, wantH.Hash)
	}
	if wantH.Height < maxPageBlocks {
		t.Errorf("only %d blocks: the test does not cross a page", wantH.Height+1)
	}
	if !slices.Equal(as, wantAs) {
		t.Errorf("replayed accounts %+v, want %+v", as, wantAs)
	}
}

// crashingLedger applies a submission and then fails as a sequencer that
// crashed before answering: its store is closed, and the error is none
// the server answers with.
type crashingLedger struct {
	*local.Ledger
	close func() error
}

func (l crashingLedger) SubmitBatch(ctx context.Context, b proofs.SignedBatch) (chain.BatchRecord, error) {
	if _, err := l.Ledger.SubmitBatch(ctx, b); err != nil {
		return chain.BatchRecord{}, err
	}
	return chain.BatchRecord{}, errors.Join(errors.New("crash after applying"), l.close())
}

// TestResubmitAfterCrash checks that a batch applied by a sequencer that
// crashed before answering is applied once, however often resubmitted.
func TestResubmitAfterCrash(t *testing.T) {
	f := newFixture(t)
	ctx := t.Context()
	f.stop()
	f.serve(t, crashingLedger{Ledger: f.ledger, close: f.db.Close})
	h0, _ := f.ledger.Head(ctx)
	c := f.client()
	sb := sign(t, f.batch(1, 30, 7), f.keepers[:3]...)

	opened := f.node.opened.Load()
	if _, err := c.SubmitBatch(ctx, sb); err == nil || !strings.Contains(err.Error(), "no answer") {
		t.Fatalf("submission to a crashing sequencer: %v, want no answer", err)
	}
	if n := f.node.opened.Load() - opened; n != 3 {
		t.Errorf("submission made %d attempts, want 3", n)
	}

	// Restart: the sequencer reopens its store and serves again.
	f.stop()
	f.open(t)
	f.serve(t, f.ledger)
	h1, err := c.Head(ctx)
	if err != nil {
		t.Fatal(err)
	}
	if h1.Height != h0.Height+1 {
		t.Fatalf("after the crash the head is at %d, want %d: the batch was applied once", h1.Height, h0.Height+1)
	}
	applied, err := c.Batch(ctx, 1)
	if err != nil {
		t.Fatal(err)
	}
	rec, err := c.SubmitBatch(ctx, sb)
	if err != nil {
		t.Fatalf("resubmission: %v", err)
	}
	if rec.Height != applied.Height {
		t.Errorf("resubmission recorded at %d, the batch was applied at %d", rec.Height, applied.Height)
	}
	if h2, _ := c.Head(ctx); h2.Height != h1.Height {
		t.Errorf("resubmission moved the head from %d to %d", h1.Height, h2.Height)
	}
	if a, _ := c.Account(ctx, f.edges[0].id); a.Balance != 30 {
		t.Errorf("edge 0 balance %d, want 30: credited once", a.Balance)
	}
}

// TestSilentPeerCutOff checks that a peer that opens a stream and sends
// nothing is cut off at the timeout, and the server goes on.
func TestSilentPeerCutOff(t *testing.T) {
	f := newFixture(t, WithTimeout(100*time.Millisecond))
	s, err := f.node.NewStream(t.Context(), f.seq.ID(), Protocol)
	if err != nil {
		t.Fatal(err)
	}
	defer s.Reset()
	start := time.Now()
	_, err = io.ReadAll(s)
	if err == nil {
		t.Fatalf("the server closed a silent stream without resetting it")
	}
	if d := time.Since(start); d > 3*time.Second {
		t.Errorf("silent stream cut off after %s, want about 100ms", d)
	}
	if _, err := f.client().Head(t.Context()); err != nil {
		t.Errorf("after a silent peer: %v", err)
	}
}

// TestOversizedRequestRefused checks that a request announced over the
// cap is refused with an answer that says so, before its body is read.
func TestOversizedRequestRefused(t *testing.T) {
	f := newFixture(t)
	s, err := f.node.NewStream(t.Context(), f.seq.ID(), Protocol)
	if err != nil {
		t.Fatal(err)
	}
	defer s.Reset()
	if _, err := s.Write(binary.AppendUvarint(nil, maxRequest+1)); err != nil {
		t.Fatal(err)
	}
	frame, err := wire.ReadFrame(s, maxSmallResponse, time.Now().Add(5*time.Second))
	if err != nil {
		t.Fatal(err)
	}
	var resp response
	if err := wire.Unmarshal(frame, &resp, maxSmallResponse); err != nil {
		t.Fatal(err)
	}
	if resp.Code != codeBadRequest || !strings.Contains(resp.Message, "over") {
		t.Errorf("answer %q %q, want a bad request over the cap", resp.Code, resp.Message)
	}
	if _, err := f.client().Head(t.Context()); err != nil {
		t.Errorf("after an oversized request: %v", err)
	}
}

func TestBadRequestsRefused(t *testing.T) {
	f := newFixture(t)
	c := f.client()
	for _, req := range []request{
		{Op: "mint"},
		{Op: opHead, Epoch: 3},
		{Op: opAccount},
	} {
		_, err := c.call(t.Context(), req, true)
		if !errors.Is(err, ErrBadRequest) {
			t.Errorf("request %+v: %v, want ErrBadRequest", req, err)
		}
	}
	big := sign(t, f.batch(1, 1, 0))
	big.Signatures = [][]byte{make([]byte, maxSubmitRequest)}
	if _, err := c.SubmitBatch(t.Context(), big); !errors.Is(err, chain.ErrInvalid) || !strings.Contains(err.Error(), "over") {
		t.Errorf("submission over the cap: %v, want ErrInvalid before sending", err)
	}
}

// TestStopCutsStreams checks that stop returns with a stream in flight,
// resetting it, rather than wait out its timeout.
func TestStopCutsStreams(t *testing.T) {
	f := newFixture(t, WithTimeout(time.Minute))
	s, err := f.node.NewStream(t.Context(), f.seq.ID(), Protocol)
	if err != nil {
		t.Fatal(err)
	}
	defer s.Reset()
	if _, err := s.Write([]byte{5}); err != nil { // a length prefix, then silence
		t.Fatal(err)
	}
	read := make(chan error, 1)
	go func() {
		_, err := io.ReadAll(s)
		read <- err
	}()
	time.Sleep(10 * time.Millisecond) // let the handler start; stop is right either way
	stopped := make(chan struct{})
	go func() {
		f.stop()
		close(stopped)
	}()
	select {
	case <-stopped:
	case <-time.After(5 * time.Second):
		t.Fatal("stop waits for a silent stream")
	}
	if err := <-read; err == nil {
		t.Error("the stream in flight was closed, not reset")
	}
}
