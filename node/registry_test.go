package node

import (
	"context"
	"errors"
	"io"
	"log/slog"
	"slices"
	"sync"
	"sync/atomic"
	"testing"

	"github.com/libp2p/go-libp2p/core/peer"

	"github.com/aropeer/aropeer/chain"
	"github.com/aropeer/aropeer/challenge"
)

// slowLedger answers Keepers once release is closed, counting the calls.
type slowLedger struct {
	chain.Settlement
	calls   atomic.Int32
	release chan struct{}
}

func (l *slowLedger) Keepers(ctx context.Context) ([]chain.Account, error) {
	l.calls.Add(1)
	select {
	case <-l.release:
	case <-ctx.Done():
		return nil, ctx.Err()
	}
	return []chain.Account{{ID: peer.ID("keeper"), Role: chain.RoleKeeper, Stake: 100}}, nil
}

// TestRegistryReadOnce: the callers asking for an epoch's registry while
// it is read share that read, one that gives up does not end it for the
// others, and the next caller gets the registry kept.
func TestRegistryReadOnce(t *testing.T) {
	l := &slowLedger{release: make(chan struct{})}
	r := &registry{ledger: l, epoch: make(map[uint64][]challenge.Keeper)}
	impatient, giveUp := context.WithCancel(context.Background())
	gaveUp := make(chan error)
	go func() {
		_, err := r.keepers(impatient, 7)
		gaveUp <- err
	}()
	var wg sync.WaitGroup
	got := make([][]challenge.Keeper, 50)
	errs := make([]error, len(got))
	for i := range got {
		wg.Go(func() { got[i], errs[i] = r.keepers(context.Background(), 7) })
	}
	giveUp()
	if err := <-gaveUp; err == nil {
		t.Error("a caller whose context ended got no error")
	}
	close(l.release)
	wg.Wait()
	for i := range got {
		if errs[i] != nil || len(got[i]) != 1 || got[i][0].ID != "keeper" {
			t.Fatalf("caller %d: %v, %v", i, got[i], errs[i])
		}
	}
	if _, err := r.keepers(context.Background(), 7); err != nil {
		t.Fatal(err)
	}
	if n := l.calls.Load(); n != 1 {
		t.Errorf("the ledger was asked %d times for one epoch's registry, want once", n)
	}
}

// flakyLedger answers Keepers with its keepers until down is set.
type flakyLedger struct {
	chain.Settlement
	keepers []chain.Account
	down    atomic.Bool
}

func (l *flakyLedger) Keepers(context.Context) ([]chain.Account, error) {
	if l.down.Load() {
		return nil, errors.New("sequencer unreachable")
	}
	return l.keepers, nil
}

// TestRegistryEarlierStandsIn: when the ledger cannot be read, the engine
// gets the registry of the newest epoch read before, not an error that
// would have the genesis keepers stand in; the settler, which tries again
// later, still gets the error; and with no earlier read the engine does.
func TestRegistryEarlierStandsIn(t *testing.T) {
	account := func(id string, stake uint64) chain.Account {
		return chain.Account{ID: peer.ID(id), Role: chain.RoleKeeper, Stake: stake}
	}
	l := &flakyLedger{keepers: []chain.Account{account("a", 100)}}
	r := &registry{ledger: l, log: slog.New(slog.NewTextHandler(io.Discard, nil)), epoch: make(map[uint64][]challenge.Keeper)}
	ctx := context.Background()
	l.down.Store(true)
	if _, err := r.keepersOrLast(ctx, 2); err == nil {
		t.Fatal("no registry was ever read, and the engine got no error")
	}
	l.down.Store(false)
	for _, epoch := range []uint64{3, 5} {
		if _, err := r.keepersOrLast(ctx, epoch); err != nil {
			t.Fatal(err)
		}
		l.keepers = []chain.Account{account("b", 200)}
	}
	l.down.Store(true)
	got, err := r.keepersOrLast(ctx, 6)
	if err != nil {
		t.Fatal(err)
	}
	if want := []challenge.Keeper{{ID: "b", Stake: 200}}; !slices.Equal(got, want) {
		t.Errorf("epoch 6 with the ledger down: %v, want epoch 5's %v", got, want)
	}
	if got, err := r.keepersOrLast(ctx, 4); err != nil || got[0].ID != "a" {
		t.Errorf("epoch 4 with the ledger down: %v, %v, want epoch 3's", got, err)
	}
	if _, err := r.keepers(ctx, 6); err == nil {
		t.Error("the settler got an earlier epoch's registry rather than the error")
	}
}
