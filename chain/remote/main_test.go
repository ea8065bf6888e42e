package remote

import (
	"context"
	"fmt"
	"log/slog"
	"math/rand/v2"
	"sync/atomic"
	"testing"
	"time"

	"github.com/ipfs/go-cid"
	"github.com/libp2p/go-libp2p/core/crypto"
	"github.com/libp2p/go-libp2p/core/host"
	"github.com/libp2p/go-libp2p/core/network"
	"github.com/libp2p/go-libp2p/core/peer"
	"github.com/libp2p/go-libp2p/core/protocol"
	mocknet "github.com/libp2p/go-libp2p/p2p/net/mock"
	ma "github.com/multiformats/go-multiaddr"
	"go.uber.org/goleak"

	"github.com/aropeer/aropeer/chain"
	"github.com/aropeer/aropeer/chain/local"
	"github.com/aropeer/aropeer/proofs"
	"github.com/aropeer/aropeer/store"
	"github.com/aropeer/aropeer/wire"
)

func TestMain(m *testing.M) {
	goleak.VerifyTestMain(m)
}

const devnet = "devnet"

type member struct {
	key crypto.PrivKey
	id  peer.ID
}

func newMember(t testing.TB, seed byte) member {
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

// fixture is a sequencer serving a ledger of four keepers of equal stake
// and two edges, and a node linked to it on an in-memory network.
type fixture struct {
	dir     string
	keepers []member
	edges   []member
	genesis []chain.Account

	db     *store.DB
	ledger *local.Ledger
	seq    host.Host
	node   *countingStreams // the node's host, counting the streams it opens
	stop   func()
}

func newFixture(t *testing.T, opts ...Option) *fixture {
	t.Helper()
	f := &fixture{dir: t.TempDir()}
	for i := range 4 {
		f.keepers = append(f.keepers, newMember(t, byte(1+i)))
		f.genesis = append(f.genesis, chain.Account{ID: f.keepers[i].id, Role: chain.RoleKeeper, Stake: 100})
	}
	for i := range 2 {
		f.edges = append(f.edges, newMember(t, byte(10+i)))
	}
	f.open(t)

	mn := mocknet.New()
	t.Cleanup(func() {
		if err := mn.Close(); err != nil {
			t.Error(err)
		}
	})
	seq, err := mn.AddPeer(newMember(t, 20).key, ma.StringCast("/ip4/100.64.0.1/tcp/4242"))
	if err != nil {
		t.Fatal(err)
	}
	node, err := mn.AddPeer(newMember(t, 21).key, ma.StringCast("/ip4/100.64.0.2/tcp/4242"))
	if err != nil {
		t.Fatal(err)
	}
	if err := mn.LinkAll(); err != nil {
		t.Fatal(err)
	}
	if err := mn.ConnectAllButSelf(); err != nil {
		t.Fatal(err)
	}
	f.seq, f.node = seq, &countingStreams{Host: node}
	f.serve(t, f.ledger, opts...)
	return f
}

// open opens the store and the ledger in it; the store is closed at the
// end of the test unless closed before.
func (f *fixture) open(t *testing.T) {
	t.Helper()
	db, err := store.Open(f.dir)
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { db.Close() })
	l, err := local.Open(db, devnet, f.genesis)
	if err != nil {
		t.Fatal(err)
	}
	f.db, f.ledger = db, l
}

// serve serves l on the sequencer until the end of the test or the next
// f.stop.
func (f *fixture) serve(t *testing.T, l Ledger, opts ...Option) {
	t.Helper()
	f.stop = Serve(f.seq, l, slog.New(slog.DiscardHandler), opts...)
	t.Cleanup(f.stop)
}

// client is a client of the sequencer on the node, with fast retries.
func (f *fixture) client(opts ...Option) *Client {
	return NewClient(f.node, f.seq.ID(), devnet, append([]Option{WithRetries(3, time.Millisecond), WithTimeout(5 * time.Second)}, opts...)...)
}

// batch builds the batch of epoch: edge 0 earns reward, edge 1 pays
// penalty, keeper 0 signed both receipts at 5 each.
func (f *fixture) batch(epoch, reward, penalty uint64) proofs.Batch {
	ids := []cid.Cid{wire.CIDOf(fmt.Appendf(nil, "r%d-1", epoch)), wire.CIDOf(fmt.Appendf(nil, "r%d-2", epoch))}
	results := []proofs.EdgeResult{
		{Edge: f.edges[0].id, Epoch: epoch, Reward: reward},
		{Edge: f.edges[1].id, Epoch: epoch, Penalty: penalty},
	}
	return proofs.BuildBatch(devnet, epoch, ids, results, map[peer.ID]uint64{f.keepers[0].id: 2}, 5)
}

func sign(t testing.TB, b proofs.Batch, by ...member) proofs.SignedBatch {
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

// receipt seals by's receipt on edge 0 for attempt 0 of a challenge,
// passing or failing with reason.
func (f *fixture) receipt(t *testing.T, by member, reason string) []byte {
	t.Helper()
	r := proofs.Receipt{
		Network: devnet, Epoch: 1, Round: 1,
		Keeper: by.id, Edge: f.edges[0].id, Kind: proofs.KindStorage,
		Challenge: wire.CIDOf([]byte("challenge 1")), Result: proofs.Pass,
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

// countingStreams counts the streams a host opens.
type countingStreams struct {
	host.Host
	opened atomic.Int64
}

func (c *countingStreams) NewStream(ctx context.Context, p peer.ID, pids ...protocol.ID) (network.Stream, error) {
	c.opened.Add(1)
	return c.Host.NewStream(ctx, p, pids...)
}
