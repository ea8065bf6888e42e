package node

import (
	"context"
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
