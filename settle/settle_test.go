package settle

import (
	"bytes"
	"context"
	"errors"
	"fmt"
	"math/rand/v2"
	"slices"
	"sync"
	"sync/atomic"
	"testing"
	"time"

	"github.com/ipfs/go-cid"
	"github.com/libp2p/go-libp2p/core/crypto"
	"github.com/libp2p/go-libp2p/core/peer"

	"github.com/aropeer/aropeer/beacon"
	"github.com/aropeer/aropeer/chain"
	"github.com/aropeer/aropeer/chain/local"
	"github.com/aropeer/aropeer/challenge"
	"github.com/aropeer/aropeer/liveness"
	"github.com/aropeer/aropeer/proofs"
	"github.com/aropeer/aropeer/store"
	"github.com/aropeer/aropeer/wire"
)

// bus is an in-memory gossip topic: every publish reaches every
// subscriber, the publisher too, as pubsub delivers it.
type bus struct {
	domain wire.Domain
	max    int
	// lost, while set, keeps each publish from all but its publisher, as
	// when the others' validators ignore it.
	lost atomic.Bool
	mu   sync.Mutex
	subs []chan challenge.Message
}

type busTopic struct {
	b  *bus
	ch chan challenge.Message
}

func (b *bus) join() *busTopic {
	b.mu.Lock()
	defer b.mu.Unlock()
	ch := make(chan challenge.Message, 1024)
	b.subs = append(b.subs, ch)
	return &busTopic{b: b, ch: ch}
}

func (t *busTopic) Publish(_ context.Context, env []byte) error {
	payload, signer, err := wire.Open(env, t.b.domain, t.b.max)
	if err != nil {
		return err
	}
	t.b.mu.Lock()
	defer t.b.mu.Unlock()
	for _, ch := range t.b.subs {
		if ch == t.ch || !t.b.lost.Load() {
			ch <- challenge.Message{Payload: payload, Signer: signer, Envelope: env}
		}
	}
	return nil
}

func (t *busTopic) Next(ctx context.Context) (challenge.Message, error) {
	select {
	case m := <-t.ch:
		return m, nil
	case <-ctx.Done():
		return challenge.Message{}, ctx.Err()
	}
}

// stillBeacon gives every round of the devnet chain and watches none: the
// tests drive the settlers' rounds themselves.
type stillBeacon struct{ s *beacon.Signer }

func (b stillBeacon) Info() beacon.Info { return b.s.Info() }
func (b stillBeacon) Get(_ context.Context, round uint64) (beacon.Beacon, error) {
	return b.s.Sign(round)
}
func (b stillBeacon) Watch(ctx context.Context) <-chan beacon.Beacon {
	ch := make(chan beacon.Beacon)
	go func() { <-ctx.Done(); close(ch) }()
	return ch
}

type fixedClock time.Time

func (c fixedClock) Now() time.Time                         { return time.Time(c) }
func (c fixedClock) After(d time.Duration) <-chan time.Time { return time.After(d) }

func key(t testing.TB, seed uint64) (crypto.PrivKey, peer.ID) {
	t.Helper()
	k, _, err := crypto.GenerateEd25519Key(rand.NewChaCha8([32]byte{byte(seed), byte(seed >> 8), 7}))
	if err != nil {
		t.Fatal(err)
	}
	id, err := peer.IDFromPrivateKey(k)
	if err != nil {
		t.Fatal(err)
	}
	return k, id
}

// keeperNet is four keepers, each with its own store, on one ledger.
type keeperNet struct {
	params   challenge.Params
	keys     []crypto.PrivKey
	ids      []peer.ID
	settlers []*Settler
	stores   []*proofs.ReceiptStore
	ledger   *local.Ledger
	beacon   stillBeacon
	bus      *bus
	caughtUp sync.Map // keeper index → receipts fetched
}

const testEpoch = 40

func newKeeperNet(t testing.TB, n int, ledgerOpts ...local.Option) *keeperNet {
	t.Helper()
	signer := beacon.DevnetSigner()
	kn := &keeperNet{
		params: challenge.Params{Network: "devnet", EpochRounds: 10},
		beacon: stillBeacon{signer},
		bus:    &bus{domain: proofs.BatchDomain, max: proofs.MaxBatchSize},
	}
	var genesis []chain.Account
	var registry []challenge.Keeper
	for i := range n {
		k, id := key(t, uint64(i+1))
		kn.keys, kn.ids = append(kn.keys, k), append(kn.ids, id)
		genesis = append(genesis, chain.Account{ID: id, Role: chain.RoleKeeper, Stake: 100})
		registry = append(registry, challenge.Keeper{ID: id, Stake: 100})
	}
	ldb, err := store.Open(t.TempDir())
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { ldb.Close() })
	kn.ledger, err = local.Open(ldb, "devnet", genesis, ledgerOpts...)
	if err != nil {
		t.Fatal(err)
	}
	// The clock stands after the grace period of testEpoch.
	now := signer.Info().TimeOf(kn.params.FirstRound(testEpoch+1) + 3)
	for i := range n {
		db, err := store.Open(t.TempDir())
		if err != nil {
			t.Fatal(err)
		}
		t.Cleanup(func() { db.Close() })
		rs := proofs.NewReceiptStore(db)
		kn.stores = append(kn.stores, rs)
		s, err := New(Config{
			Key:          kn.keys[i],
			Params:       kn.params,
			Rates:        proofs.Rates{RewardPerPass: map[proofs.Kind]uint64{proofs.KindLiveness: 10}, PenaltyPerFail: map[proofs.Kind]uint64{proofs.KindLiveness: 30}},
			KeeperReward: 1,
			Grace:        3,
			Beacon:       kn.beacon,
			Clock:        fixedClock(now),
			DB:           db,
			Receipts:     rs,
			Reports:      proofs.NewReportStore(db),
			Ledger:       kn.ledger,
			Registry: func(context.Context, uint64) ([]challenge.Keeper, error) {
				return registry, nil
			},
			BatchTopic: kn.bus.join(),
			Keeper:     true,
			CatchUp: func(_ context.Context, epoch uint64, from []peer.ID) error {
				got := 0
				for _, p := range from {
					j := kn.index(p)
					ids, err := kn.stores[j].CIDs(epoch, "")
					if err != nil {
						return err
					}
					for _, id := range ids {
						if have, _ := rs.Has(id); have {
							continue
						}
						_, env, err := kn.stores[j].Get(id)
						if err != nil {
							return err
						}
						if _, _, _, err := rs.Put(env); err != nil {
							return err
						}
						got++
					}
				}
				kn.caughtUp.Store(i, got)
				return nil
			},
		})
		if err != nil {
			t.Fatal(err)
		}
		kn.settlers = append(kn.settlers, s)
	}
	return kn
}

// draw is the beacon of the round that draws testEpoch's leaders, the
// grace's end, and the keepers in the order it ranks them.
func (kn *keeperNet) draw(t *testing.T) (beacon.Beacon, []peer.ID) {
	t.Helper()
	b, err := kn.beacon.Get(context.Background(), kn.params.FirstRound(testEpoch+1)+3)
	if err != nil {
		t.Fatal(err)
	}
	registry := make([]challenge.Keeper, len(kn.ids))
	for i, id := range kn.ids {
		registry[i] = challenge.Keeper{ID: id, Stake: 100}
	}
	return b, Leaders(b, testEpoch, registry)
}

// holdEverywhere stores envs in every keeper's store.
func (kn *keeperNet) holdEverywhere(t *testing.T, envs [][]byte) {
	t.Helper()
	for _, rs := range kn.stores {
		if _, err := rs.PutBatch(envs); err != nil {
			t.Fatal(err)
		}
	}
}

// run runs every settler until the test ends, and returns their context
// and the group that the work of their rounds joins.
func (kn *keeperNet) run(t *testing.T) (context.Context, *sync.WaitGroup) {
	ctx, cancel := context.WithCancel(context.Background())
	wg := new(sync.WaitGroup)
	for _, s := range kn.settlers {
		wg.Go(func() { s.Run(ctx) })
	}
	t.Cleanup(func() { cancel(); wg.Wait() })
	return ctx, wg
}

func (kn *keeperNet) index(id peer.ID) int {
	for i, k := range kn.ids {
		if k == id {
			return i
		}
	}
	panic("unknown keeper " + id.String())
}

// receipts seals n receipts of testEpoch by the net's keepers about a few
// edges, one in seven of them fails.
func (kn *keeperNet) receipts(t testing.TB, n int) [][]byte {
	t.Helper()
	var edges []peer.ID
	for i := range 5 {
		_, id := key(t, uint64(100+i))
		edges = append(edges, id)
	}
	envs := make([][]byte, n)
	for i := range n {
		k := i % len(kn.keys)
		seed := bytes.Repeat([]byte{byte(i), byte(i >> 8)}, proofs.SeedSize/2)
		c := proofs.Challenge{
			Network: "devnet", Epoch: testEpoch, Round: kn.params.FirstRound(testEpoch) + uint64(i%10),
			Keeper: kn.ids[k], Edge: edges[i%len(edges)], Kind: proofs.KindLiveness, Attempt: 0, Seed: seed,
		}
		cid, err := c.ID()
		if err != nil {
			t.Fatal(err)
		}
		r := proofs.Receipt{
			Network: c.Network, Epoch: c.Epoch, Round: c.Round, Keeper: c.Keeper, Edge: c.Edge,
			Kind: c.Kind, Challenge: cid, Attempt: c.Attempt, Result: proofs.Pass,
		}
		if i%7 == 0 {
			r.Result, r.Reason = proofs.Fail, "no heartbeat"
		}
		env, _, err := proofs.SealReceipt(kn.keys[k], r)
		if err != nil {
			t.Fatal(err)
		}
		envs[i] = env
	}
	return envs
}

// TestBatchAgreement is the issue's: four keepers, one of which missed
// 30% of the receipts, agree on the epoch's batch and it is applied with
// all four signatures.
func TestBatchAgreement(t *testing.T) {
	kn := newKeeperNet(t, 4)
	envs := kn.receipts(t, 400)
	for i, rs := range kn.stores {
		for j, env := range envs {
			if i == 3 && j%10 < 3 {
				continue // keeper 3 missed 30%
			}
			if _, _, _, err := rs.Put(env); err != nil {
				t.Fatal(err)
			}
		}
	}

	ctx, _ := kn.run(t)

	b, leaders := kn.draw(t)
	if len(leaders) != 4 {
		t.Fatalf("leaders: %v", leaders)
	}
	// Only the leader proposes here; the others learn of it from the
	// bus, as they would from gossip.
	leader := kn.settlers[kn.index(leaders[0])]
	leader.settle(ctx, testEpoch, b)

	rec := waitBatch(t, kn.ledger, testEpoch)
	signers, err := rec.Signed.Signers()
	if err != nil {
		t.Fatalf("signers: %v", err)
	}
	if rec.Signed.Batch.Receipts != 400 {
		t.Fatalf("batch holds %d receipts, want 400", rec.Signed.Batch.Receipts)
	}
	// Quorum is 3 of 4; wait for the straggler to co-sign too.
	deadline := time.Now().Add(10 * time.Second)
	for kn.settlers[3].Stats().Cosigned == 0 && leaders[0] != kn.ids[3] {
		if time.Now().After(deadline) {
			t.Fatalf("keeper 3 never co-signed: %+v (signers on the ledger %d)", kn.settlers[3].Stats(), len(signers))
		}
		time.Sleep(20 * time.Millisecond)
	}
	if got, _ := kn.caughtUp.Load(3); leaders[0] != kn.ids[3] && got != 120 {
		t.Errorf("keeper 3 fetched %v receipts, want the 120 it missed", got)
	}
	// Every keeper's own recomputation is now the applied batch.
	want, _ := rec.Signed.Batch.ID()
	for i, s := range kn.settlers {
		mine, leaves, err := s.Build(ctx, testEpoch)
		if err != nil {
			t.Fatal(err)
		}
		if id, _ := mine.ID(); !id.Equals(want) {
			t.Errorf("keeper %d computes another batch than the applied one", i)
		}
		if !SameRoot(rec.Signed.Batch, leaves) {
			t.Errorf("keeper %d: leaves do not give the root", i)
		}
	}
	// Keepers earned a reward per receipt, edges theirs less penalties.
	accounts, _ := kn.ledger.Accounts(ctx)
	var keeperSum, edges int64
	for _, a := range accounts {
		switch a.Role {
		case chain.RoleKeeper:
			keeperSum += a.Balance
		case chain.RoleEdge:
			edges++
			if a.Balance <= 0 {
				t.Errorf("edge %s passing 6 in 7 holds %d", a.ID, a.Balance)
			}
		}
	}
	if keeperSum != 400 || edges != 5 {
		t.Errorf("keepers hold %d in all (want 400), %d edge accounts (want 5)", keeperSum, edges)
	}

	// Every receipt proves against the applied batch from any keeper.
	for i, s := range kn.settlers {
		for _, env := range envs[:20] {
			id := wire.CIDOf(payloadOf(t, env, proofs.ReceiptDomain, proofs.MaxReceiptSize))
			p, b, err := s.Prove(ctx, id)
			if err != nil {
				t.Fatalf("keeper %d: prove %s: %v", i, id, err)
			}
			if err := proofs.VerifyInBatch(b, p); err != nil || !p.Leaf.Equals(id) {
				t.Fatalf("keeper %d: proof of %s does not hold: %v", i, id, err)
			}
		}
	}
}

// payloadOf opens env, sealed under d, of at most maxSize bytes.
func payloadOf(t *testing.T, env []byte, d wire.Domain, maxSize int) []byte {
	t.Helper()
	payload, _, err := wire.Open(env, d, maxSize)
	if err != nil {
		t.Fatal(err)
	}
	return payload
}

func waitBatch(t *testing.T, l *local.Ledger, epoch uint64) chain.BatchRecord {
	t.Helper()
	deadline := time.Now().Add(10 * time.Second)
	for {
		rec, err := l.Batch(context.Background(), epoch)
		if err == nil {
			return rec
		}
		if !errors.Is(err, chain.ErrNotFound) || time.Now().After(deadline) {
			t.Fatalf("batch of epoch %d: %v", epoch, err)
		}
		time.Sleep(20 * time.Millisecond)
	}
}

// TestBatchSubmittedAgain: a batch whose signatures all came in while
// the ledger did not answer is submitted again in a later round, rather
// than left unsettled for want of another signature to try again on.
func TestBatchSubmittedAgain(t *testing.T) {
	kn := newKeeperNet(t, 4)
	envs := kn.receipts(t, 40)
	kn.holdEverywhere(t, envs)
	ledger := &unansweringLedger{Settlement: kn.ledger}
	ledger.down.Store(true)
	for _, s := range kn.settlers {
		s.cfg.Ledger = ledger
	}
	ctx, wg := kn.run(t)

	b, leaders := kn.draw(t)
	kn.settlers[kn.index(leaders[0])].settle(ctx, testEpoch, b)
	// Every keeper holds the batch and all four signatures, and its last
	// submission failed.
	deadline := time.Now().Add(10 * time.Second)
	for !kn.allWaiting(testEpoch) {
		if time.Now().After(deadline) {
			t.Fatalf("the keepers never gathered every signature: %d submissions to the ledger", ledger.calls.Load())
		}
		time.Sleep(20 * time.Millisecond)
	}
	if _, err := kn.ledger.Batch(ctx, testEpoch); !errors.Is(err, chain.ErrNotFound) {
		t.Fatalf("batch applied while the ledger did not answer: %v", err)
	}
	ledger.down.Store(false)
	// The next round.
	for _, s := range kn.settlers {
		s.round(ctx, b, wg)
	}
	rec := waitBatch(t, kn.ledger, testEpoch)
	if signers, _ := rec.Signed.Signers(); len(signers) < 3 {
		t.Errorf("applied with %d signers, want a quorum of 3", len(signers))
	}
}

// TestSignaturePublishedAgain: the leader's signature reaches no other
// keeper, as when their registries did not answer and gossip ignored it.
// Its next rounds publish it again, and the others co-sign the batch.
func TestSignaturePublishedAgain(t *testing.T) {
	kn := newKeeperNet(t, 4)
	envs := kn.receipts(t, 40)
	kn.holdEverywhere(t, envs)
	for _, s := range kn.settlers {
		// Only the first leader proposes in this test's time.
		s.cfg.LeaderTimeout = 1000
	}
	b, leaders := kn.draw(t)
	leader := kn.settlers[kn.index(leaders[0])]
	published := &countingTopic{Topic: leader.cfg.BatchTopic}
	leader.cfg.BatchTopic = published
	ctx, wg := kn.run(t)

	kn.bus.lost.Store(true)
	leader.settle(ctx, testEpoch, b)
	kn.bus.lost.Store(false)
	if _, err := kn.ledger.Batch(ctx, testEpoch); !errors.Is(err, chain.ErrNotFound) {
		t.Fatalf("batch applied with the leader's signature alone: %v", err)
	}
	// The round after next, every keeper's; the others settle too, as
	// they would, and wait for the leader.
	next, err := kn.beacon.Get(ctx, b.Round+republishAfter)
	if err != nil {
		t.Fatal(err)
	}
	for _, s := range kn.settlers {
		s.round(ctx, next, wg)
	}
	rec := waitBatch(t, kn.ledger, testEpoch)
	if signers, _ := rec.Signed.Signers(); len(signers) < 3 || !slices.Contains(signers, leaders[0]) {
		t.Errorf("applied with signers %v, want a quorum of 3 with the leader", signers)
	}
	// Once the ledger holds the epoch, the signature is not sent again.
	later, err := kn.beacon.Get(ctx, next.Round+republishAfter)
	if err != nil {
		t.Fatal(err)
	}
	sent := published.n.Load()
	leader.round(ctx, later, wg)
	deadline := time.Now().Add(5 * time.Second)
	for {
		leader.mu.Lock()
		applied := leader.signed[testEpoch].applied
		busy := leader.signed[testEpoch].busy
		leader.mu.Unlock()
		if applied && !busy {
			break
		}
		if time.Now().After(deadline) {
			t.Fatal("the leader never found its epoch on the ledger")
		}
		time.Sleep(10 * time.Millisecond)
	}
	if n := published.n.Load(); n != sent {
		t.Errorf("%d signatures published after the ledger held the epoch", n-sent)
	}
	if sent < 2 {
		t.Errorf("the leader published its signature %d times, want it again after the first", sent)
	}
}

// countingTopic counts what is published on it.
type countingTopic struct {
	challenge.Topic
	n atomic.Int64
}

func (t *countingTopic) Publish(ctx context.Context, env []byte) error {
	t.n.Add(1)
	return t.Topic.Publish(ctx, env)
}

// allWaiting reports whether every keeper holds a proposal of epoch with
// a signature of each keeper, to be submitted again next round.
func (kn *keeperNet) allWaiting(epoch uint64) bool {
	for _, s := range kn.settlers {
		s.mu.Lock()
		waiting := false
		for _, p := range s.pending[epoch] {
			waiting = waiting || (p.batch != nil && len(p.sigs) == len(kn.settlers) && p.retry)
		}
		s.mu.Unlock()
		if !waiting {
			return false
		}
	}
	return true
}

// unansweringLedger fails every submission, as a ledger out of reach
// would, while down.
type unansweringLedger struct {
	chain.Settlement
	down  atomic.Bool
	calls atomic.Int64
}

func (l *unansweringLedger) SubmitBatch(ctx context.Context, b proofs.SignedBatch) (chain.BatchRecord, error) {
	l.calls.Add(1)
	if l.down.Load() {
		return chain.BatchRecord{}, fmt.Errorf("ledger: %w", context.DeadlineExceeded)
	}
	return l.Settlement.SubmitBatch(ctx, b)
}

// TestNoCosignWithoutCatchUp: a keeper that cannot fetch what it missed
// does not sign a batch unlike its own, and the batch still passes with
// the other three.
func TestNoCosignWithoutCatchUp(t *testing.T) {
	kn := newKeeperNet(t, 4)
	envs := kn.receipts(t, 100)
	for i, rs := range kn.stores {
		for j, env := range envs {
			if i == 3 && j%10 < 3 {
				continue
			}
			rs.Put(env)
		}
	}
	kn.settlers[3].cfg.CatchUp = func(context.Context, uint64, []peer.ID) error { return errors.New("unreachable") }
	ctx, _ := kn.run(t)
	// Keeper 0 proposes, whatever the draw says.
	kn.settlers[0].cosign.Lock()
	b, err := kn.settlers[0].build(ctx, testEpoch)
	if err != nil {
		t.Fatal(err)
	}
	kn.settlers[0].sign(ctx, b)
	kn.settlers[0].cosign.Unlock()
	rec := waitBatch(t, kn.ledger, testEpoch)
	deadline := time.Now().Add(10 * time.Second)
	for kn.settlers[3].Stats().Mismatched == 0 {
		if time.Now().After(deadline) {
			t.Fatalf("keeper 3 never judged the batch: %+v", kn.settlers[3].Stats())
		}
		time.Sleep(20 * time.Millisecond)
	}
	signers, _ := rec.Signed.Signers()
	for _, s := range signers {
		if s == kn.ids[3] {
			t.Fatal("keeper 3 signed a batch it could not recompute")
		}
	}
	if _, _, err := kn.settlers[3].Prove(ctx, firstCID(t, kn.stores[3])); !errors.Is(err, ErrNoLeaves) {
		t.Errorf("a keeper without the batch's leaves proves: %v", err)
	}
}

func firstCID(t *testing.T, rs *proofs.ReceiptStore) cid.Cid {
	ids, err := rs.CIDs(testEpoch, "")
	if err != nil || len(ids) == 0 {
		t.Fatal(fmt.Sprint("no receipts: ", err))
	}
	return ids[0]
}

// TestNextLeaderProposes: when the drawn leader is down, the next keeper
// of the draw proposes after the leader's timeout, and the batch passes
// with the three keepers left.
func TestNextLeaderProposes(t *testing.T) {
	kn := newKeeperNet(t, 4)
	envs := kn.receipts(t, 100)
	kn.holdEverywhere(t, envs)
	ctx, cancel := context.WithCancel(context.Background())
	var wg sync.WaitGroup
	defer func() { cancel(); wg.Wait() }()
	b, leaders := kn.draw(t)
	var settling sync.WaitGroup
	for i, s := range kn.settlers {
		if kn.ids[i] == leaders[0] {
			continue // the leader is down
		}
		s.cfg.LeaderTimeout = 1
		wg.Go(func() { s.Run(ctx) })
		settling.Go(func() { s.settle(ctx, testEpoch, b) })
	}
	rec := waitBatch(t, kn.ledger, testEpoch)
	// Each keeper's turn comes and goes (a second per rank here).
	settling.Wait()
	signers, _ := rec.Signed.Signers()
	for _, s := range signers {
		if s == leaders[0] {
			t.Fatal("the downed leader signed")
		}
	}
	if got := kn.settlers[kn.index(leaders[1])].Stats().Proposed; got != 1 {
		t.Errorf("the second of the draw proposed %d times, want 1", got)
	}
	if got := kn.settlers[kn.index(leaders[2])].Stats().Proposed; got != 0 {
		t.Errorf("the third of the draw proposed %d times, want 0: the batch was in before its turn", got)
	}
}

// settle runs every settler until ctx ends, has keeper 0 propose the
// batch of testEpoch from its store, and waits for it to be applied.
func (kn *keeperNet) settle(t *testing.T, ctx context.Context) proofs.Batch {
	t.Helper()
	ctx, cancel := context.WithCancel(ctx)
	var wg sync.WaitGroup
	for _, s := range kn.settlers {
		wg.Go(func() { s.Run(ctx) })
	}
	t.Cleanup(func() { cancel(); wg.Wait() })
	kn.settlers[0].cosign.Lock()
	b, err := kn.settlers[0].build(ctx, testEpoch)
	if err != nil {
		t.Fatal(err)
	}
	kn.settlers[0].sign(ctx, b)
	kn.settlers[0].cosign.Unlock()
	waitBatch(t, kn.ledger, testEpoch)
	return b.batch
}

// waitSlashed waits for keeper i to be slashed and returns its account.
func (kn *keeperNet) waitSlashed(t *testing.T, ctx context.Context, i int) chain.Account {
	t.Helper()
	deadline := time.Now().Add(10 * time.Second)
	for {
		a, err := kn.ledger.Account(ctx, kn.ids[i])
		if err != nil {
			t.Fatal(err)
		}
		if a.Slashed > 0 {
			return a
		}
		if time.Now().After(deadline) {
			t.Fatalf("keeper %d was never slashed", i)
		}
		time.Sleep(20 * time.Millisecond)
	}
}

// TestEvidenceDisputed: a keeper that signed a liveness pass whose
// evidence is not the edge's heartbeat (it never asked) is slashed by the
// keepers that kept the challenge once the batch is applied; passes with
// a real heartbeat, and receipts whose challenge no one kept, stand.
func TestEvidenceDisputed(t *testing.T) {
	kn := newKeeperNet(t, 4, local.WithEvidence(liveness.NewEvidenceChecker()))
	edgeKey, edge := key(t, 200)
	challenges := map[cid.Cid][]byte{}
	seal := func(k int, round uint64, evidence func(c proofs.Challenge) []byte) []byte {
		c := proofs.Challenge{
			Network: "devnet", Epoch: testEpoch, Round: round, Keeper: kn.ids[k], Edge: edge,
			Kind: proofs.KindLiveness, Seed: bytes.Repeat([]byte{byte(round)}, proofs.SeedSize),
		}
		env, id, err := proofs.SealChallenge(kn.keys[k], c)
		if err != nil {
			t.Fatal(err)
		}
		challenges[id] = env
		r := proofs.Receipt{
			Network: c.Network, Epoch: c.Epoch, Round: c.Round, Keeper: c.Keeper, Edge: c.Edge,
			Kind: c.Kind, Challenge: id, Result: proofs.Pass, Evidence: evidence(c),
		}
		renv, _, err := proofs.SealReceipt(kn.keys[k], r)
		if err != nil {
			t.Fatal(err)
		}
		return renv
	}
	heartbeat := func(c proofs.Challenge) []byte {
		env, err := liveness.SealHeartbeat(edgeKey, liveness.HeartbeatFor(c))
		if err != nil {
			t.Fatal(err)
		}
		return env
	}
	lazy := func(proofs.Challenge) []byte { return nil }
	first := kn.params.FirstRound(testEpoch)
	envs := [][]byte{
		seal(0, first, heartbeat),
		seal(1, first+1, heartbeat),
		seal(2, first+2, lazy), // the lazy keeper
	}
	for _, s := range kn.settlers {
		s.cfg.Evidence = map[proofs.Kind]proofs.EvidenceChecker{proofs.KindLiveness: liveness.NewEvidenceChecker()}
		s.cfg.Challenge = func(id cid.Cid) ([]byte, bool) { env, ok := challenges[id]; return env, ok }
	}
	kn.holdEverywhere(t, envs)
	ctx, cancel := context.WithCancel(context.Background())
	defer cancel()
	kn.settle(t, ctx)
	if a := kn.waitSlashed(t, ctx, 2); a.Slashed != 50 {
		t.Errorf("lazy keeper: slashed %d, want 50", a.Slashed)
	}
	for _, i := range []int{0, 1, 3} {
		if a, _ := kn.ledger.Account(ctx, kn.ids[i]); a.Slashed != 0 {
			t.Errorf("honest keeper %d slashed %d", i, a.Slashed)
		}
	}
	// Read from the store rather than found when signing, the disputes
	// are the same: the lazy keeper's pass alone.
	for i, s := range kn.settlers {
		if _, err := s.Leaves(testEpoch); err != nil {
			continue // did not sign
		}
		ds, err := s.Disputes(testEpoch)
		if err != nil || len(ds) != 1 || ds[0].Kind != chain.DisputeEvidence || !bytes.Equal(ds[0].A, envs[2]) {
			t.Errorf("keeper %d's Disputes: %d disputes (%v); want one, of the lazy keeper's pass", i, len(ds), err)
		}
	}
}

// TestEquivocationDisputed: a keeper that signed two different receipts
// for one attempt of one challenge is slashed once the epoch's batch,
// which holds both, is applied.
func TestEquivocationDisputed(t *testing.T) {
	kn := newKeeperNet(t, 4)
	envs := kn.receipts(t, 40)
	// Keeper 2 signs receipt 2 again with another verdict.
	r, _, err := proofs.OpenReceipt(envs[2])
	if err != nil {
		t.Fatal(err)
	}
	r.Result, r.Reason = proofs.Fail, "changed its mind"
	twin, _, err := proofs.SealReceipt(kn.keys[2], r)
	if err != nil {
		t.Fatal(err)
	}
	envs = append(envs, twin)
	kn.holdEverywhere(t, envs)
	ctx, cancel := context.WithCancel(context.Background())
	defer cancel()
	b := kn.settle(t, ctx)
	// Its second receipt is in the batch, to be disputed, but not paid.
	if b.Receipts != uint64(len(envs)) {
		t.Errorf("batch of %d receipts, want all %d", b.Receipts, len(envs))
	}
	signed := map[peer.ID]uint64{}
	for _, env := range envs {
		r, _, _ := proofs.OpenReceipt(env)
		signed[r.Keeper]++
	}
	for _, k := range b.Keepers {
		want := signed[k.Keeper]
		if k.Keeper == kn.ids[2] {
			want-- // the twin
		}
		if k.Receipts != want {
			t.Errorf("keeper %s paid for %d receipts, want %d", k.Keeper, k.Receipts, want)
		}
	}

	if a := kn.waitSlashed(t, ctx, 2); a.Slashed != 50 || a.Stake != 50 {
		t.Errorf("equivocating keeper: stake %d, slashed %d; want 50 and 50", a.Stake, a.Slashed)
	}
	for _, i := range []int{0, 1, 3} {
		if a, _ := kn.ledger.Account(ctx, kn.ids[i]); a.Slashed != 0 {
			t.Errorf("honest keeper %d slashed %d", i, a.Slashed)
		}
	}
}

// TestEdgeCatchesUpFromItsCommittee: after an epoch's grace an edge
// fetches the receipts about it of that epoch from its committee of now,
// the keepers it is connected to, and from no other keeper; once, and
// not in the round the grace ends, in which the keepers build the batch.
func TestEdgeCatchesUpFromItsCommittee(t *testing.T) {
	kn := newKeeperNet(t, 1)
	committee := []peer.ID{kn.ids[0], "committee keeper 2"}
	var asked, caughtUp []uint64
	var from [][]peer.ID
	s, _ := newEdgeSettler(t, kn, func(cfg *Config) {
		cfg.Registry = func(context.Context, uint64) ([]challenge.Keeper, error) {
			t.Error("the edge read the registry: it asks its committee alone")
			return nil, errors.New("no registry")
		}
		cfg.Committee = func(_ context.Context, epoch uint64) ([]peer.ID, error) {
			asked = append(asked, epoch)
			return committee, nil
		}
		cfg.CatchUp = func(_ context.Context, epoch uint64, peers []peer.ID) error {
			caughtUp, from = append(caughtUp, epoch), append(from, peers)
			return nil
		}
	})
	ctx, cancel := context.WithCancel(context.Background())
	defer cancel()
	graceEnd := kn.params.FirstRound(testEpoch+1) + s.cfg.Grace
	var at []uint64
	for round := kn.params.FirstRound(testEpoch + 1); round <= graceEnd+catchUpRounds+1; round++ {
		b, err := kn.beacon.Get(ctx, round)
		if err != nil {
			t.Fatal(err)
		}
		var wg sync.WaitGroup
		s.round(ctx, b, &wg)
		if wg.Wait(); len(at) < len(from) {
			at = append(at, round)
		}
	}
	if len(at) != 1 || at[0] == graceEnd {
		t.Fatalf("caught up in rounds %v; want once, after the grace's end %d", at, graceEnd)
	}
	now := kn.params.EpochOf(at[0])
	if !slices.Equal(asked, []uint64{now}) || !slices.Equal(caughtUp, []uint64{testEpoch}) || !slices.Equal(from[0], committee) {
		t.Errorf("caught up epoch %v from %v, the committee of epochs %v; want epoch %d from %v, the committee of now (%d)", caughtUp, from, asked, testEpoch, committee, now)
	}
}

// TestProposerCatchesUpFirst: the drawn leader fetches from the other
// keepers what it missed before it builds, so the batch holds every
// receipt; the keepers that only co-sign, holding the same, fetch
// nothing.
func TestProposerCatchesUpFirst(t *testing.T) {
	kn := newKeeperNet(t, 4)
	ctx, cancel := context.WithCancel(context.Background())
	b, leaders := kn.draw(t)
	leader := kn.index(leaders[0])
	envs := kn.receipts(t, 200)
	for i, rs := range kn.stores {
		for j, env := range envs {
			if i == leader && j%10 < 3 {
				continue // the leader missed 30%
			}
			if _, _, _, err := rs.Put(env); err != nil {
				t.Fatal(err)
			}
		}
	}
	var wg sync.WaitGroup
	for _, s := range kn.settlers {
		wg.Go(func() { s.Run(ctx) })
	}
	defer func() { cancel(); wg.Wait() }()
	// Every keeper settles the epoch, as the grace's end makes them; the
	// others wait their turn behind the leader.
	for _, s := range kn.settlers {
		wg.Go(func() { s.settle(ctx, testEpoch, b) })
	}

	rec := waitBatch(t, kn.ledger, testEpoch)
	if rec.Signed.Batch.Receipts != 200 {
		t.Errorf("batch holds %d receipts, want 200", rec.Signed.Batch.Receipts)
	}
	if got, _ := kn.caughtUp.Load(leader); got != 60 {
		t.Errorf("the leader fetched %v receipts, want the 60 it missed", got)
	}
	for i := range kn.settlers {
		if _, fetched := kn.caughtUp.Load(i); i != leader && fetched {
			t.Errorf("keeper %d, holding the batch's receipts, listed another keeper's", i)
		}
	}
}

// newEdgeSettler is an edge's settler on kn's beacon and clock, with a
// store of its own, as change leaves it.
func newEdgeSettler(t *testing.T, kn *keeperNet, change func(*Config)) (*Settler, crypto.PrivKey) {
	t.Helper()
	k, _ := key(t, 200)
	db, err := store.Open(t.TempDir())
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { db.Close() })
	cfg := Config{
		Key: k, Params: kn.params, Grace: 3, Beacon: kn.beacon, DB: db,
		Clock:    kn.settlers[0].cfg.Clock,
		Receipts: proofs.NewReceiptStore(db), Reports: proofs.NewReportStore(db),
		Edge: true, ReportTopic: kn.bus.join(),
		Offers:   func() []proofs.Offer { return nil },
		Answered: func(uint64) map[proofs.Kind]uint64 { return nil },
	}
	if change != nil {
		change(&cfg)
	}
	s, err := New(cfg)
	if err != nil {
		t.Fatal(err)
	}
	return s, k
}

// TestValidateReport: a keeper takes a report of the epoch that ended
// from its edge, ignores one held already, or of another time, and
// rejects one of another network or signer; an edge publishes its own
// report again though it holds it.
func TestValidateReport(t *testing.T) {
	kn := newKeeperNet(t, 1)
	keeper := kn.settlers[0]
	edge, ek := newEdgeSettler(t, kn, nil)
	seal := func(epoch uint64, network string) ([]byte, []byte) {
		t.Helper()
		r := proofs.Report{Network: network, Epoch: epoch, Edge: edge.self, Claims: []proofs.Claim{{Offer: proofs.Offer{Kind: proofs.KindLiveness}}}}
		env, _, err := proofs.SealReport(ek, r)
		if err != nil {
			t.Fatal(err)
		}
		return env, payloadOf(t, env, proofs.ReportDomain, proofs.MaxReportSize)
	}
	env, payload := seal(testEpoch, "devnet")
	if err := keeper.ValidateReport(payload, edge.self); err != nil {
		t.Fatalf("a report of the epoch that ended: %v", err)
	}
	if err := keeper.ValidateReport(payload, kn.ids[0]); err == nil || IsIgnored(err) {
		t.Errorf("a report signed by another: %v, want a rejection", err)
	}
	_, other := seal(testEpoch, "othernet")
	if err := keeper.ValidateReport(other, edge.self); err == nil || IsIgnored(err) {
		t.Errorf("a report of another network: %v, want a rejection", err)
	}
	_, old := seal(testEpoch-5, "devnet")
	if err := keeper.ValidateReport(old, edge.self); !IsIgnored(err) {
		t.Errorf("a report of an old epoch: %v, want it ignored", err)
	}
	if _, _, _, err := keeper.cfg.Reports.Put(env); err != nil {
		t.Fatal(err)
	}
	if err := keeper.ValidateReport(payload, edge.self); !IsIgnored(err) {
		t.Errorf("a report held already: %v, want it ignored", err)
	}
	if _, _, _, err := edge.cfg.Reports.Put(env); err != nil {
		t.Fatal(err)
	}
	if err := edge.ValidateReport(payload, edge.self); err != nil {
		t.Errorf("the edge's own report, held: %v, want it published", err)
	}
}
