// Package settle turns an epoch's receipts into money: an edge seals its
// Work Report when the epoch ends; after a grace period a leader keeper,
// drawn from the beacon by stake, builds the epoch batch from its store;
// the other keepers recompute it from theirs, catching up on what they
// missed, and co-sign only an identical batch; a batch signed by 2/3 of
// the keeper stake goes to the settlement.
package settle

import (
	"context"
	"errors"
	"fmt"
	"log/slog"
	"slices"
	"strconv"
	"sync"
	"time"

	"github.com/ipfs/go-cid"
	"github.com/libp2p/go-libp2p/core/crypto"
	"github.com/libp2p/go-libp2p/core/peer"

	"github.com/aropeer/aropeer/beacon"
	"github.com/aropeer/aropeer/chain"
	"github.com/aropeer/aropeer/challenge"
	"github.com/aropeer/aropeer/proofs"
	"github.com/aropeer/aropeer/store"
	"github.com/aropeer/aropeer/wire"
)

// Config is what a Settler is built from.
type Config struct {
	Key    crypto.PrivKey
	Params challenge.Params // the network's name and epoch length
	Rates  proofs.Rates
	// KeeperReward is what a keeper earns per receipt in a batch.
	KeeperReward uint64
	// Grace is how many rounds after an epoch ends its batch is built:
	// long enough for the last challenges' retries and their receipts.
	Grace uint64
	// LeaderTimeout is how many rounds a leader has to get its batch
	// applied before the next keeper in the draw proposes one.
	LeaderTimeout uint64

	Beacon   beacon.Source
	Clock    beacon.Clock
	DB       *store.DB
	Receipts *proofs.ReceiptStore
	Reports  *proofs.ReportStore
	Ledger   chain.Settlement
	// Registry gives the keepers and stakes of an epoch.
	Registry func(ctx context.Context, epoch uint64) ([]challenge.Keeper, error)
	// BatchTopic carries batch signatures; ReportTopic Work Reports.
	BatchTopic, ReportTopic challenge.Topic

	Keeper, Edge bool
	// Offers gives the edge's manifest offers of now, its claims.
	Offers func() []proofs.Offer
	// Answered counts what the edge answered in an epoch.
	Answered func(epoch uint64) map[proofs.Kind]uint64
	// CatchUp fetches from peers the receipts and reports of epoch this
	// keeper lacks.
	CatchUp func(ctx context.Context, epoch uint64, from []peer.ID) error
	// Committee gives an edge its committee of an epoch. An edge catches
	// up from its committee of now: every keeper holds the receipts the
	// keepers gossiped, and the committee of now is the connections the
	// edge keeps. Dialling the keepers that signed them, its committee of
	// the settled epoch, which it has left by then, would cost each a
	// connection per edge once an epoch.
	Committee func(ctx context.Context, epoch uint64) ([]peer.ID, error)

	// Evidence checks the evidence of pass receipts by kind, and
	// Challenge returns the sealed challenge of an ID this node kept once
	// it had opened it (its signature is not checked again): with both, a
	// keeper disputes every pass of an applied batch whose evidence does
	// not show the edge answered.
	Evidence  map[proofs.Kind]proofs.EvidenceChecker
	Challenge func(id cid.Cid) ([]byte, bool)

	Log *slog.Logger
}

// Settler runs a node's part of settlement.
type Settler struct {
	cfg    Config
	self   peer.ID
	log    *slog.Logger
	info   beacon.Info
	leaves store.Namespace

	cosign sync.Mutex // one recomputation at a time: they read the same stores

	mu       sync.Mutex
	pending  map[uint64]map[string]*proposal // epoch → batch ID → signatures
	signed   map[uint64]*signature           // epoch → this keeper's signature of its batch
	judged   map[uint64]map[string]bool      // epoch → batch IDs this keeper recomputed
	found    map[uint64][]chain.Dispute      // epoch → the disputes of the batch this keeper signed
	settling map[uint64]bool
	started  uint64 // the first round this settler saw
	stats    Stats
}

// Stats count what a settler did.
type Stats struct {
	ReportsPublished, ReportsStored uint64
	Proposed, Cosigned, Mismatched  uint64
	Submitted, Applied              uint64
	Disputed                        uint64 // equivocations and passes without evidence this keeper had slashed
}

// signature is this keeper's signature of an epoch's batch, published
// again until the ledger holds the epoch (republish).
type signature struct {
	env     []byte
	round   uint64 // the round it was last published in
	busy    bool   // being published again
	applied bool   // the ledger holds a batch of the epoch
}

// proposal is one batch and the signatures gathered for it.
type proposal struct {
	batch     *proofs.Batch // nil until this keeper built the same
	sigs      map[peer.ID][]byte
	submitted bool // sent to the ledger, or being sent
	retry     bool // the registry or the ledger did not answer: next round
}

// New checks cfg and prepares a settler.
func New(cfg Config) (*Settler, error) {
	if cfg.Key == nil || cfg.Beacon == nil || cfg.DB == nil || cfg.Receipts == nil || cfg.Reports == nil {
		return nil, errors.New("settle: a settler needs a key, a beacon, a store, and receipt and report stores")
	}
	if cfg.Keeper && (cfg.Ledger == nil || cfg.Registry == nil || cfg.BatchTopic == nil) {
		return nil, errors.New("settle: a keeper needs a ledger, a registry and the batch topic")
	}
	if cfg.Edge && (cfg.ReportTopic == nil || cfg.Answered == nil || cfg.Offers == nil) {
		return nil, errors.New("settle: an edge needs the report topic, its offers and its answered counts")
	}
	if cfg.Params.EpochRounds == 0 {
		return nil, errors.New("settle: epochs of 0 rounds")
	}
	self, err := peer.IDFromPrivateKey(cfg.Key)
	if err != nil {
		return nil, fmt.Errorf("settle: key: %w", err)
	}
	if cfg.Log == nil {
		cfg.Log = slog.Default()
	}
	if cfg.Clock == nil {
		cfg.Clock = beacon.SystemClock()
	}
	if cfg.LeaderTimeout == 0 {
		cfg.LeaderTimeout = 5
	}
	return &Settler{
		cfg:      cfg,
		self:     self,
		log:      cfg.Log.With("component", "settle"),
		info:     cfg.Beacon.Info(),
		leaves:   cfg.DB.Namespace(leavesNamespace),
		pending:  make(map[uint64]map[string]*proposal),
		signed:   make(map[uint64]*signature),
		judged:   make(map[uint64]map[string]bool),
		found:    make(map[uint64][]chain.Dispute),
		settling: make(map[uint64]bool),
	}, nil
}

// Stats returns a copy of the settler's counters.
func (s *Settler) Stats() Stats {
	s.mu.Lock()
	defer s.mu.Unlock()
	return s.stats
}

// Run follows the beacon and the topics until ctx ends, and returns when
// every goroutine it started has stopped.
func (s *Settler) Run(ctx context.Context) error {
	var wg sync.WaitGroup
	defer wg.Wait()
	if s.cfg.ReportTopic != nil {
		wg.Go(func() { follow(ctx, s.cfg.ReportTopic, s.acceptReport) })
	}
	if s.cfg.BatchTopic != nil {
		wg.Go(func() {
			follow(ctx, s.cfg.BatchTopic, func(m challenge.Message) { s.acceptSignature(ctx, m, &wg) })
		})
	}
	for b := range s.cfg.Beacon.Watch(ctx) {
		s.mu.Lock()
		if s.started == 0 {
			s.started = b.Round
		}
		s.mu.Unlock()
		s.round(ctx, b, &wg)
	}
	return nil
}

func follow(ctx context.Context, t challenge.Topic, accept func(challenge.Message)) {
	for {
		m, err := t.Next(ctx)
		if err != nil {
			return
		}
		accept(m)
	}
}

// round does what round b calls for: an edge reports the epoch that just
// ended (and once more two rounds later, for peers whose mesh was still
// forming); a keeper settles it after the grace period.
func (s *Settler) round(ctx context.Context, b beacon.Beacon, wg *sync.WaitGroup) {
	p := s.cfg.Params
	cur := p.EpochOf(b.Round)
	if cur == 0 {
		return
	}
	ended := cur - 1
	since := b.Round - p.FirstRound(cur)
	first := reportRound(s.self, p.EpochRounds)
	if s.cfg.Edge && (since == first || since == first+2) && s.wasUp(ended) {
		s.publishReport(ctx, ended)
	}
	// The epoch whose grace has run out by this round: the grace may be
	// longer than an epoch.
	if b.Round < s.cfg.Grace {
		return
	}
	graced := p.EpochOf(b.Round - s.cfg.Grace)
	if graced == 0 {
		return
	}
	settled := graced - 1
	if s.cfg.Edge && !s.cfg.Keeper && b.Round-s.cfg.Grace == p.FirstRound(graced)+catchUpRound(s.self, p.EpochRounds) && s.cfg.CatchUp != nil && s.cfg.Committee != nil {
		// An edge fetches the receipts about it that were not delivered.
		wg.Go(func() {
			committee, err := s.cfg.Committee(ctx, cur)
			if err != nil {
				return
			}
			if err := s.cfg.CatchUp(ctx, settled, committee); err != nil {
				s.log.Debug("receipts catch-up incomplete", "epoch", settled, "err", err)
			}
		})
	}
	// From the grace on rather than at it: a round whose beacon never
	// came must not leave the epoch unsettled.
	if s.cfg.Keeper {
		s.resubmit(ctx, wg)
		s.republish(ctx, b.Round, wg)
		s.mu.Lock()
		busy := s.settling[settled]
		s.settling[settled] = true
		s.mu.Unlock()
		if !busy {
			wg.Go(func() { s.settle(ctx, settled, b) })
		}
	}
}

// reportRounds is how many rounds at an epoch's start the edges' first
// reports spread over, and catchUpRounds how many after an epoch's grace
// their catch-ups do.
const (
	reportRounds  = 4
	catchUpRounds = 4
)

// reportRound is the round of an epoch, counted from 0, in which edge
// files its report of the epoch before: one of the first reportRounds,
// its own (challenge.Stagger), so that edges do not all file at once.
// It files it again two rounds on, still in the epoch, in case the first
// went nowhere.
func reportRound(edge peer.ID, epochRounds uint64) uint64 {
	return challenge.Stagger(edge, min(reportRounds, max(epochRounds, 3)-2))
}

// catchUpRound is the round after epoch's grace, counted from 0, in which
// edge fetches its receipts of the epoch: one of catchUpRounds after the
// first, in which the keepers build the batch, its own (challenge.Stagger).
func catchUpRound(edge peer.ID, epochRounds uint64) uint64 {
	if epochRounds < 2 {
		return 0
	}
	return 1 + challenge.Stagger(edge, min(catchUpRounds, epochRounds-1))
}

// wasUp reports whether the settler ran during some of epoch.
func (s *Settler) wasUp(epoch uint64) bool {
	s.mu.Lock()
	defer s.mu.Unlock()
	return s.started != 0 && s.started < s.cfg.Params.FirstRound(epoch+1)
}

// Report returns the Work Report the edge files for epoch.
func (s *Settler) Report(epoch uint64) proofs.Report {
	answered := s.cfg.Answered(epoch)
	r := proofs.Report{Network: s.cfg.Params.Network, Epoch: epoch, Edge: s.self}
	for _, o := range s.cfg.Offers() {
		r.Claims = append(r.Claims, proofs.Claim{Offer: o, Answered: answered[o.Kind]})
	}
	return r
}

// publishReport seals and publishes the edge's report of epoch, keeping
// its own copy. Publishing it twice is harmless: it is the same report.
func (s *Settler) publishReport(ctx context.Context, epoch uint64) {
	env, _, err := proofs.SealReport(s.cfg.Key, s.Report(epoch))
	if err != nil {
		s.log.Error("work report not sealed", "epoch", epoch, "err", err)
		return
	}
	if _, _, _, err := s.cfg.Reports.Put(env); err != nil {
		s.log.Error("work report not stored", "epoch", epoch, "err", err)
	}
	if err := s.cfg.ReportTopic.Publish(ctx, env); err != nil {
		s.log.Debug("work report not published", "epoch", epoch, "err", err)
		return
	}
	s.count(func(st *Stats) { st.ReportsPublished++ })
	s.log.Info("work report published", "epoch", epoch)
}

// ValidateReport judges a gossiped report: of this network, sealed by its
// edge, of the epoch that just ended or the one before, and not held
// already. An edge files its report twice, in case the first went
// nowhere; a keeper that holds it does not forward it again, so the
// second goes only to keepers that lack it.
func (s *Settler) ValidateReport(payload []byte, signer peer.ID) error {
	var r proofs.Report
	if err := wire.Unmarshal(payload, &r, proofs.MaxReportSize); err != nil {
		return err
	}
	if r.Edge != signer {
		return fmt.Errorf("settle: report of %s signed by %s", r.Edge, signer)
	}
	if err := r.Validate(); err != nil {
		return err
	}
	if r.Network != s.cfg.Params.Network {
		return fmt.Errorf("settle: report of network %q", r.Network)
	}
	cur := s.cfg.Params.EpochOf(s.info.RoundAt(s.cfg.Clock.Now()))
	if r.Epoch >= cur || r.Epoch+2 < cur {
		return fmt.Errorf("%w: report of epoch %d in epoch %d", errUntimely, r.Epoch, cur)
	}
	if signer != s.self {
		if have, err := s.cfg.Reports.Has(r.Epoch, wire.CIDOf(payload)); err == nil && have {
			return errHeld
		}
	}
	return nil
}

// errUntimely marks a message that is not wrong, only not of now, and
// errHeld one that is not wrong, only known here already.
var (
	errUntimely = errors.New("settle: untimely")
	errHeld     = errors.New("settle: held already")
)

// IsIgnored reports whether a validation error says the message is not
// wrong, only untimely or held already: gossip ignores rather than
// rejects it.
func IsIgnored(err error) bool { return errors.Is(err, errUntimely) || errors.Is(err, errHeld) }

func (s *Settler) acceptReport(m challenge.Message) {
	if _, _, isNew, err := s.cfg.Reports.Put(m.Envelope); err != nil {
		s.log.Warn("work report not stored", "from", m.Signer, "err", err)
	} else if isNew {
		s.count(func(st *Stats) { st.ReportsStored++ })
	}
}

func (s *Settler) count(f func(*Stats)) {
	s.mu.Lock()
	defer s.mu.Unlock()
	f(&s.stats)
}

// leaderKey is the name the leader draw ranks keepers for, as the
// committee draw ranks them for an edge.
func leaderKey(epoch uint64) peer.ID { return peer.ID("aro/leader/" + strconv.FormatUint(epoch, 10)) }

// Leaders ranks the keepers for proposing epoch's batch: a stake-weighted
// draw from the beacon of the round the batch is built in, so nobody can
// know the leader before that round.
func Leaders(b beacon.Beacon, epoch uint64, keepers []challenge.Keeper) []peer.ID {
	return challenge.Committee(b, leaderKey(epoch), keepers, len(keepers))
}

// settle runs epoch's settlement on a keeper: catch up with the other
// keepers, then propose the batch when this keeper's turn in the draw
// comes and no batch was applied before it.
func (s *Settler) settle(ctx context.Context, epoch uint64, b beacon.Beacon) {
	if s.applied(ctx, epoch) {
		return
	}
	keepers, err := s.cfg.Registry(ctx, epoch)
	if err != nil {
		s.log.Warn("no keeper registry: epoch not settled here", "epoch", epoch, "err", err)
		return
	}
	// Every keeper draws from the same round, the grace's end, even one
	// that reached this point later.
	if draw := s.cfg.Params.FirstRound(epoch+1) + s.cfg.Grace; b.Round != draw {
		if db, err := s.cfg.Beacon.Get(ctx, draw); err == nil {
			b = db
		}
	}
	leaders := Leaders(b, epoch, keepers)
	rank := slices.Index(leaders, s.self)
	if rank < 0 {
		return
	}
	wait := time.Duration(uint64(rank)*s.cfg.LeaderTimeout) * s.info.Period
	select {
	case <-ctx.Done():
		return
	case <-s.cfg.Clock.After(wait):
	}
	if rank > 0 && s.applied(ctx, epoch) {
		return
	}
	// The proposer fetches what the other keepers hold and it lacks, so
	// that its batch holds every receipt any of them has. A keeper that
	// only co-signs fetches from the proposer, and only if its batch
	// differs (consider): all fetching from all would cost a network of
	// K keepers K² listings of the epoch.
	if s.cfg.CatchUp != nil {
		others := slices.Delete(slices.Clone(leaders), rank, rank+1)
		if err := s.cfg.CatchUp(ctx, epoch, others); err != nil {
			s.log.Debug("catch-up incomplete", "epoch", epoch, "err", err)
		}
	}
	s.log.Info("proposing the epoch batch", "epoch", epoch, "rank", rank)
	s.cosign.Lock()
	defer s.cosign.Unlock()
	bt, err := s.build(ctx, epoch)
	if err != nil {
		s.log.Error("batch not built", "epoch", epoch, "err", err)
		return
	}
	s.sign(ctx, bt)
	s.count(func(st *Stats) { st.Proposed++ })
}

// applied reports whether the ledger holds a batch for epoch.
func (s *Settler) applied(ctx context.Context, epoch uint64) bool {
	_, err := s.cfg.Ledger.Batch(ctx, epoch)
	return err == nil
}

// Build computes epoch's batch from this node's stores: the receipts and
// reports it holds, and the reputations of the previous epoch's batch on
// the ledger. It returns the batch and its leaves.
func (s *Settler) Build(ctx context.Context, epoch uint64) (proofs.Batch, []cid.Cid, error) {
	b, err := s.build(ctx, epoch)
	return b.batch, b.leaves, err
}

// built is a batch this keeper computed, with the receipts it read for
// it: what its disputes are looked for in, without reading them again.
type built struct {
	batch    proofs.Batch
	leaves   []cid.Cid
	ids      []cid.Cid
	receipts []proofs.Receipt // receipts[i] is ids[i]'s
}

func (s *Settler) build(ctx context.Context, epoch uint64) (built, error) {
	var ids []cid.Cid
	var receipts []proofs.Receipt
	// A keeper is paid once per attempt it decided: a second receipt of
	// an attempt (an equivocation, disputed on its own) earns nothing.
	type attempt struct {
		keeper    peer.ID
		challenge string
		n         uint32
	}
	paid := make(map[attempt]bool)
	byKeeper := make(map[peer.ID]uint64)
	err := s.cfg.Receipts.List(proofs.Filter{Epoch: &epoch}, func(id cid.Cid, r proofs.Receipt) error {
		ids = append(ids, id)
		receipts = append(receipts, r)
		if a := (attempt{r.Keeper, r.Challenge.KeyString(), r.Attempt}); !paid[a] {
			paid[a] = true
			byKeeper[r.Keeper]++
		}
		return nil
	})
	if err != nil {
		return built{}, err
	}
	all, _, err := s.cfg.Reports.List(epoch)
	if err != nil {
		return built{}, err
	}
	var reports []proofs.Report
	for _, r := range all {
		if r.Network == s.cfg.Params.Network {
			reports = append(reports, r)
		}
	}
	prev := make(map[peer.ID]proofs.Reputation)
	if epoch > 0 {
		rec, err := s.cfg.Ledger.Batch(ctx, epoch-1)
		switch {
		case err == nil:
			for _, r := range rec.Signed.Batch.Results {
				prev[r.Edge] = r.Reputation
			}
		case !errors.Is(err, chain.ErrNotFound):
			return built{}, fmt.Errorf("settle: reputations of epoch %d: %w", epoch-1, err)
		}
	}
	results := proofs.Aggregate(epoch, receipts, reports, prev, s.cfg.Rates)
	b := proofs.BuildBatch(s.cfg.Params.Network, epoch, ids, results, byKeeper, s.cfg.KeeperReward)
	return built{batch: b, leaves: proofs.SortedLeaves(ids), ids: ids, receipts: receipts}, nil
}
