package exchange

import (
	"context"
	"errors"
	"fmt"
	"log/slog"
	"slices"
	"strings"
	"sync/atomic"
	"testing"

	"github.com/ipfs/go-cid"
	"github.com/libp2p/go-libp2p/core/crypto"
	"github.com/libp2p/go-libp2p/core/host"
	"github.com/libp2p/go-libp2p/core/network"
	"github.com/libp2p/go-libp2p/core/peer"
	"github.com/libp2p/go-libp2p/core/protocol"
	mocknet "github.com/libp2p/go-libp2p/p2p/net/mock"
	ma "github.com/multiformats/go-multiaddr"
	"go.uber.org/goleak"

	"github.com/aropeer/aropeer/proofs"
	"github.com/aropeer/aropeer/store"
	"github.com/aropeer/aropeer/wire"
)

func TestMain(m *testing.M) {
	goleak.VerifyTestMain(m)
}

// quiet discards the logs of servers under test.
var quiet = WithLogger(slog.New(slog.DiscardHandler))

// testKey returns a deterministic ed25519 key.
func testKey(t testing.TB, seed byte) crypto.PrivKey {
	t.Helper()
	k, _, err := crypto.GenerateEd25519Key(constReader(seed))
	if err != nil {
		t.Fatal(err)
	}
	return k
}

type constReader byte

func (r constReader) Read(p []byte) (int, error) {
	for i := range p {
		p[i] = byte(r) + byte(i)
	}
	return len(p), nil
}

func idOf(t testing.TB, k crypto.PrivKey) peer.ID {
	t.Helper()
	id, err := peer.IDFromPrivateKey(k)
	if err != nil {
		t.Fatal(err)
	}
	return id
}

// newHosts returns n connected hosts on an in-memory network.
func newHosts(t testing.TB, n int) []host.Host {
	t.Helper()
	mn := mocknet.New()
	t.Cleanup(func() {
		if err := mn.Close(); err != nil {
			t.Error(err)
		}
	})
	hosts := make([]host.Host, n)
	for i := range hosts {
		addr := ma.StringCast(fmt.Sprintf("/ip4/100.64.0.%d/tcp/4242", i+1))
		h, err := mn.AddPeer(testKey(t, byte(1+i)), addr)
		if err != nil {
			t.Fatal(err)
		}
		hosts[i] = h
	}
	if err := mn.LinkAll(); err != nil {
		t.Fatal(err)
	}
	if err := mn.ConnectAllButSelf(); err != nil {
		t.Fatal(err)
	}
	return hosts
}

func openStore(t testing.TB) *proofs.ReceiptStore {
	t.Helper()
	db, err := store.Open(t.TempDir(), store.WithLogger(slog.New(slog.DiscardHandler)))
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() {
		if err := db.Close(); err != nil {
			t.Errorf("close store: %v", err)
		}
	})
	return proofs.NewReceiptStore(db)
}

// sealed is a receipt with its envelope and CID.
type sealed struct {
	env []byte
	id  cid.Cid
	r   proofs.Receipt
}

// fleet is two keepers and a few edges that seal receipts.
type fleet struct {
	keepers []crypto.PrivKey
	edges   []peer.ID
}

func newFleet(t testing.TB, edges int) fleet {
	f := fleet{keepers: []crypto.PrivKey{testKey(t, 10), testKey(t, 11)}}
	for i := range edges {
		f.edges = append(f.edges, idOf(t, testKey(t, byte(100+i))))
	}
	return f
}

// receipts seals n receipts of epoch, numbered from first: receipt i is
// by keeper i%2 on edge i%len(edges).
func (f fleet) receipts(t testing.TB, epoch uint64, first, n int) []sealed {
	t.Helper()
	out := make([]sealed, n)
	for i := range out {
		num := first + i
		_, challenge, err := wire.MarshalCID(fmt.Sprintf("challenge %d", num))
		if err != nil {
			t.Fatal(err)
		}
		key := f.keepers[num%len(f.keepers)]
		r := proofs.Receipt{
			Network: "devnet", Epoch: epoch, Round: uint64(1 + num),
			Keeper: idOf(t, key), Edge: f.edges[num%len(f.edges)], Kind: proofs.KindLiveness,
			Challenge: challenge, Result: proofs.Pass,
		}
		env, id, err := proofs.SealReceipt(key, r)
		if err != nil {
			t.Fatal(err)
		}
		out[i] = sealed{env: env, id: id, r: r}
	}
	return out
}

func envelopes(rs []sealed) [][]byte {
	envs := make([][]byte, len(rs))
	for i, r := range rs {
		envs[i] = r.env
	}
	return envs
}

func put(t testing.TB, s *proofs.ReceiptStore, rs []sealed) {
	t.Helper()
	if _, err := s.PutBatch(envelopes(rs)); err != nil {
		t.Fatal(err)
	}
}

func cids(t testing.TB, s *proofs.ReceiptStore, epoch uint64) []cid.Cid {
	t.Helper()
	ids, err := s.CIDs(epoch, "")
	if err != nil {
		t.Fatal(err)
	}
	return ids
}

// sortedIDs returns the CIDs of rs sorted by their bytes.
func sortedIDs(rs []sealed) []cid.Cid {
	ids := make([]cid.Cid, len(rs))
	for i, r := range rs {
		ids[i] = r.id
	}
	slices.SortFunc(ids, compareCIDs)
	return ids
}

// fakeSource answers whatever it is given, sorted or not: it plays a
// server that lies.
type fakeSource struct {
	ids  []cid.Cid
	envs map[cid.Cid][]byte
}

func (f *fakeSource) CIDs(uint64, peer.ID) ([]cid.Cid, error) { return f.ids, nil }

func (f *fakeSource) Get(id cid.Cid) ([]byte, error) {
	env, ok := f.envs[id]
	if !ok {
		return nil, fmt.Errorf("receipt %s: %w", id, store.ErrNotFound)
	}
	return env, nil
}

// countingStreams counts the streams a client opens.
type countingStreams struct {
	Streams
	opened atomic.Int64
}

func (c *countingStreams) NewStream(ctx context.Context, p peer.ID, pids ...protocol.ID) (network.Stream, error) {
	c.opened.Add(1)
	return c.Streams.NewStream(ctx, p, pids...)
}

// errorIs fails t unless err matches target and names each of names.
func errorIs(t *testing.T, err, target error, names ...fmt.Stringer) {
	t.Helper()
	if !errors.Is(err, target) {
		t.Fatalf("err = %v, want %v", err, target)
	}
	for _, n := range names {
		if !strings.Contains(err.Error(), n.String()) {
			t.Errorf("err = %v, want it to name %s", err, n)
		}
	}
}
