package exchange

import (
	"errors"
	"slices"
	"testing"

	"github.com/ipfs/go-cid"

	"github.com/aropeer/aropeer/proofs"
)

const epoch = 7

func TestSyncCatchesUp(t *testing.T) {
	hosts := newHosts(t, 2)
	a, b := hosts[0], hosts[1]
	all := newFleet(t, 5).receipts(t, epoch, 0, 1000)
	storeA, storeB := openStore(t), openStore(t)
	put(t, storeA, all)
	put(t, storeB, all[:700])
	defer Serve(a, StoreSource(storeA), quiet)()

	added, err := Sync(t.Context(), b, a.ID(), epoch, "", storeB, nil)
	if err != nil || added != 300 {
		t.Fatalf("Sync = %d, %v; want 300 added", added, err)
	}
	if got, want := cids(t, storeB, epoch), cids(t, storeA, epoch); !slices.Equal(got, want) {
		t.Fatalf("B has %d receipts of epoch %d, A %d: want the same list", len(got), epoch, len(want))
	}
	if added, err := Sync(t.Context(), b, a.ID(), epoch, "", storeB, nil); err != nil || added != 0 {
		t.Fatalf("second Sync = %d, %v; want 0 added", added, err)
	}
}

func TestSyncEdgeFilter(t *testing.T) {
	hosts := newHosts(t, 2)
	a, b := hosts[0], hosts[1]
	f := newFleet(t, 3)
	all := f.receipts(t, epoch, 0, 60)
	storeA, storeB := openStore(t), openStore(t)
	put(t, storeA, all)
	put(t, storeA, f.receipts(t, epoch+1, 60, 9)) // another epoch, same edges
	defer Serve(a, StoreSource(storeA), quiet)()

	edge := f.edges[1]
	var want []sealed
	for _, r := range all {
		if r.r.Edge == edge {
			want = append(want, r)
		}
	}
	added, err := Sync(t.Context(), b, a.ID(), epoch, edge, storeB, nil)
	if err != nil || added != len(want) {
		t.Fatalf("Sync = %d, %v; want %d added", added, err, len(want))
	}
	if got := cids(t, storeB, epoch); !slices.Equal(got, sortedIDs(want)) {
		t.Fatalf("B has %d receipts of epoch %d, want edge %s's %d only", len(got), epoch, edge, len(want))
	}
	if got := cids(t, storeB, epoch+1); len(got) != 0 {
		t.Fatalf("B has %d receipts of epoch %d, want none", len(got), epoch+1)
	}
}

func TestListPages(t *testing.T) {
	hosts := newHosts(t, 2)
	a, b := hosts[0], hosts[1]
	storeA := openStore(t)
	put(t, storeA, newFleet(t, 2).receipts(t, epoch, 0, 50))
	defer Serve(a, StoreSource(storeA), quiet)()

	for _, tc := range []struct {
		name        string
		client      []Option
		server      []Option
		wantStreams int64
	}{
		{"client pages of 7", []Option{WithPageSize(7)}, nil, 8},
		{"one page", nil, nil, 1},
		{"exact pages", []Option{WithPageSize(10)}, nil, 5},
	} {
		t.Run(tc.name, func(t *testing.T) {
			streams := &countingStreams{Streams: b}
			got, err := List(t.Context(), streams, a.ID(), epoch, "", tc.client...)
			if err != nil {
				t.Fatal(err)
			}
			if want := cids(t, storeA, epoch); !slices.Equal(got, want) {
				t.Fatalf("List gave %d CIDs, want A's %d in order", len(got), len(want))
			}
			if n := streams.opened.Load(); n != tc.wantStreams {
				t.Fatalf("List opened %d streams, want %d", n, tc.wantStreams)
			}
		})
	}

	t.Run("server caps the page", func(t *testing.T) {
		stop := Serve(b, StoreSource(storeA), quiet, WithPageSize(4))
		defer stop()
		streams := &countingStreams{Streams: a}
		// The client asks for 7 a page and accepts fewer.
		got, err := List(t.Context(), streams, b.ID(), epoch, "", WithPageSize(7))
		if err != nil || len(got) != 50 || streams.opened.Load() != 13 {
			t.Fatalf("List = %d CIDs in %d streams, %v; want 50 in 13", len(got), streams.opened.Load(), err)
		}
	})

	t.Run("over the cap", func(t *testing.T) {
		_, err := List(t.Context(), b, a.ID(), epoch, "", WithPageSize(7), WithMaxList(49))
		errorIs(t, err, ErrListTooLong, a.ID())
	})
}

// TestSyncBadServer has a server answer from a source that lies, and
// checks that each lie is named and nothing it vouches for is stored.
func TestSyncBadServer(t *testing.T) {
	f := newFleet(t, 2)
	rs := f.receipts(t, epoch, 0, 4)
	other := f.receipts(t, epoch+1, 4, 1)[0]
	ids := sortedIDs(rs)
	byID := make(map[cid.Cid][]byte)
	for _, r := range rs {
		byID[r.id] = r.env
	}
	corrupt := slices.Clone(byID[ids[2]])
	corrupt[len(corrupt)-1] ^= 1

	for _, tc := range []struct {
		name      string
		ids       []cid.Cid
		envs      map[cid.Cid][]byte
		blame     cid.Cid // the CID the error names, if any
		wantAdded int
	}{
		{
			name:  "unsorted list",
			ids:   []cid.Cid{ids[1], ids[0], ids[2]},
			envs:  byID,
			blame: ids[0],
		},
		{
			name:  "duplicate in list",
			ids:   []cid.Cid{ids[0], ids[1], ids[1]},
			envs:  byID,
			blame: ids[1],
		},
		{
			name:      "envelope of another CID",
			ids:       ids,
			envs:      map[cid.Cid][]byte{ids[0]: byID[ids[0]], ids[1]: byID[ids[3]], ids[2]: byID[ids[2]], ids[3]: byID[ids[3]]},
			blame:     ids[1],
			wantAdded: 3,
		},
		{
			name:      "receipt of another epoch",
			ids:       sortedIDs([]sealed{rs[0], other}),
			envs:      map[cid.Cid][]byte{rs[0].id: rs[0].env, other.id: other.env},
			blame:     other.id,
			wantAdded: 1,
		},
		{
			name:      "envelope that does not open",
			ids:       ids,
			envs:      map[cid.Cid][]byte{ids[0]: byID[ids[0]], ids[1]: byID[ids[1]], ids[2]: corrupt, ids[3]: byID[ids[3]]},
			blame:     ids[2],
			wantAdded: 3,
		},
	} {
		t.Run(tc.name, func(t *testing.T) {
			hosts := newHosts(t, 2)
			a, b := hosts[0], hosts[1]
			defer Serve(a, &fakeSource{ids: tc.ids, envs: tc.envs}, quiet)()
			storeB := openStore(t)

			added, err := Sync(t.Context(), b, a.ID(), epoch, "", storeB, nil)
			errorIs(t, err, ErrBadResponse, a.ID(), tc.blame)
			if added != tc.wantAdded {
				t.Errorf("added %d, want %d", added, tc.wantAdded)
			}
			if has, _ := storeB.Has(tc.blame); has {
				t.Errorf("B stored %s, which the server lied about", tc.blame)
			}
			if n := len(cids(t, storeB, epoch)) + len(cids(t, storeB, epoch+1)); n != tc.wantAdded {
				t.Errorf("B has %d receipts, want %d", n, tc.wantAdded)
			}
			// Every stored receipt is one of those asked for, of the epoch.
			for _, id := range cids(t, storeB, epoch) {
				if _, ok := byID[id]; !ok {
					t.Errorf("B stored %s, which is not a receipt of epoch %d", id, epoch)
				}
			}
		})
	}
}

func TestSyncMissing(t *testing.T) {
	hosts := newHosts(t, 2)
	a, b := hosts[0], hosts[1]
	rs := newFleet(t, 2).receipts(t, epoch, 0, 5)
	ids := sortedIDs(rs)
	envs := make(map[cid.Cid][]byte)
	for _, r := range rs {
		envs[r.id] = r.env
	}
	delete(envs, ids[3]) // listed, then pruned
	defer Serve(a, &fakeSource{ids: ids, envs: envs}, quiet)()
	storeB := openStore(t)

	added, err := Sync(t.Context(), b, a.ID(), epoch, "", storeB, nil)
	errorIs(t, err, ErrMissing, a.ID(), ids[3])
	if errors.Is(err, ErrBadResponse) || added != 4 {
		t.Fatalf("Sync = %d, %v; want 4 added and only the missing one reported", added, err)
	}
}

func TestSyncAccept(t *testing.T) {
	hosts := newHosts(t, 2)
	a, b := hosts[0], hosts[1]
	rs := newFleet(t, 3).receipts(t, epoch, 0, 100)
	storeA, storeB := openStore(t), openStore(t)
	put(t, storeA, rs)
	defer Serve(a, StoreSource(storeA), quiet)()

	errOffSchedule := errors.New("not on the schedule")
	refuse := func(r proofs.Receipt) bool { return r.Round%10 == 0 }
	accept := func(r proofs.Receipt) error {
		if refuse(r) {
			return errOffSchedule
		}
		return nil
	}
	added, err := Sync(t.Context(), b, a.ID(), epoch, "", storeB, accept)
	if !errors.Is(err, ErrNotAccepted) || !errors.Is(err, errOffSchedule) || errors.Is(err, ErrBadResponse) {
		t.Fatalf("err = %v, want refusals matching ErrNotAccepted and accept's error", err)
	}
	if added != 90 {
		t.Fatalf("added %d, want 90", added)
	}
	for _, r := range rs {
		has, err := storeB.Has(r.id)
		if err != nil {
			t.Fatal(err)
		}
		if has == refuse(r.r) {
			t.Errorf("receipt of round %d: stored %v", r.r.Round, has)
		}
	}
	if n := len(errorsOf(err)); n != 10 {
		t.Errorf("err joins %d errors, want one per refused receipt (10)", n)
	}
}

// errorsOf unjoins err.
func errorsOf(err error) []error {
	if j, ok := err.(interface{ Unwrap() []error }); ok {
		return j.Unwrap()
	}
	return []error{err}
}

func TestFetch(t *testing.T) {
	hosts := newHosts(t, 2)
	a, b := hosts[0], hosts[1]
	rs := newFleet(t, 2).receipts(t, epoch, 0, MaxGet+10) // two chunks
	storeA := openStore(t)
	put(t, storeA, rs[1:])
	defer Serve(a, StoreSource(storeA), quiet)()

	ids := make([]cid.Cid, len(rs))
	for i, r := range rs {
		ids[i] = r.id
	}
	streams := &countingStreams{Streams: b}
	envs, err := Fetch(t.Context(), streams, a.ID(), ids)
	if err != nil || len(envs) != len(rs) {
		t.Fatalf("Fetch = %d envelopes, %v; want %d", len(envs), err, len(rs))
	}
	if envs[0] != nil {
		t.Error("Fetch gave an envelope for a receipt the server lacks")
	}
	for i, r := range rs[1:] {
		if !slices.Equal(envs[i+1], r.env) {
			t.Fatalf("envelope %d is not the receipt's", i+1)
		}
	}
	if n := streams.opened.Load(); n != 2 {
		t.Errorf("Fetch opened %d streams, want 2", n)
	}
}
