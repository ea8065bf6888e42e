package node

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
	pubsub "github.com/libp2p/go-libp2p-pubsub"
	"github.com/libp2p/go-libp2p/core/peer"
	routedhost "github.com/libp2p/go-libp2p/p2p/host/routed"
	"golang.org/x/sync/singleflight"

	"github.com/aropeer/aropeer/chain"
	"github.com/aropeer/aropeer/chain/local"
	"github.com/aropeer/aropeer/chain/remote"
	"github.com/aropeer/aropeer/challenge"
	"github.com/aropeer/aropeer/exchange"
	"github.com/aropeer/aropeer/liveness"
	"github.com/aropeer/aropeer/node/config"
	"github.com/aropeer/aropeer/proofs"
	"github.com/aropeer/aropeer/settle"
)

// catchUpTimeout bounds fetching one epoch's missing receipts and reports
// from one peer.
const catchUpTimeout = 30 * time.Second

// ledgerTag protects a node's connection to the sequencer.
const ledgerTag = "aro-ledger"

// openLedger opens the embedded ledger on the sequencer, or a client of
// it elsewhere; without either, the node settles nothing.
func (n *Node) openLedger() error {
	switch {
	case n.cfg.Ledger.Serve:
		keepers, err := n.genesisKeepers()
		if err != nil {
			return err
		}
		genesis := make([]chain.Account, len(keepers))
		for i, k := range keepers {
			genesis[i] = chain.Account{ID: k.ID, Role: chain.RoleKeeper, Stake: k.Stake}
		}
		var opts []local.Option
		if n.network.SlashPPM != 0 {
			opts = append(opts, local.WithSlashPPM(n.network.SlashPPM))
		}
		if n.network.DisputeEpochs != 0 {
			opts = append(opts, local.WithDisputeEpochs(n.network.DisputeEpochs))
		}
		opts = append(opts, local.WithEvidence(liveness.NewEvidenceChecker()))
		l, err := local.Open(n.db, n.network.Name, genesis, opts...)
		if err != nil {
			return err
		}
		n.local, n.ledger = l, l
	case n.cfg.Ledger.Sequencer != "":
		id, err := peer.Decode(n.cfg.Ledger.Sequencer)
		if err != nil {
			return fmt.Errorf("node: ledger.sequencer: %w", err)
		}
		n.ledger = remote.NewClient(routedhost.Wrap(n.host, n.dht), id, n.network.Name)
		// Every node asks the sequencer for the keeper registry as each
		// epoch begins, and a keeper for batches too: a connection the
		// manager trimmed would be dialled again by all of them at once.
		n.host.ConnManager().Protect(id, ledgerTag)
	}
	return nil
}

// genesisKeepers are the network's keepers, or those of the node's config
// for a network that lists none.
func (n *Node) genesisKeepers() ([]challenge.Keeper, error) {
	if len(n.network.Keepers) > 0 {
		return n.network.Keepers, nil
	}
	return n.cfg.GenesisKeepers()
}

// registry is the keepers and stakes of the ledger, read once per epoch.
type registry struct {
	ledger chain.Settlement
	log    *slog.Logger
	// reads lets one read of an epoch's registry answer everyone who asks
	// while it runs: when an epoch begins, every validation of a challenge
	// or receipt asks, and an overloaded run of a thousand edges saw a
	// keeper send 1,700 reads at once to a sequencer they all kept from
	// answering.
	reads singleflight.Group

	mu    sync.Mutex
	epoch map[uint64][]challenge.Keeper
}

// registryTimeout bounds one read of the registry.
const registryTimeout = 5 * time.Second

func (r *registry) keepers(ctx context.Context, epoch uint64) ([]challenge.Keeper, error) {
	if ks, ok := r.kept(epoch); ok {
		return ks, nil
	}
	// The read outlives a caller that gives up, for the others waiting.
	read := r.reads.DoChan(strconv.FormatUint(epoch, 10), func() (any, error) {
		ctx, cancel := context.WithTimeout(context.WithoutCancel(ctx), registryTimeout)
		defer cancel()
		return r.read(ctx, epoch)
	})
	select {
	case res := <-read:
		if res.Err != nil {
			return nil, res.Err
		}
		return res.Val.([]challenge.Keeper), nil
	case <-ctx.Done():
		return nil, fmt.Errorf("node: keeper registry: %w", ctx.Err())
	}
}

// keepersOrLast is keepers for the challenge engine: when the ledger
// cannot be read, the registry of the newest epoch read before stands in.
// Without it the genesis keepers would, and a node whose read failed
// while its peers' did not would draw other committees than theirs once
// stakes had moved since genesis; stakes seldom move between two epochs.
func (r *registry) keepersOrLast(ctx context.Context, epoch uint64) ([]challenge.Keeper, error) {
	ks, err := r.keepers(ctx, epoch)
	if err == nil {
		return ks, nil
	}
	if last, from, ok := r.before(epoch); ok {
		r.log.Warn("keeper registry unreadable: an earlier epoch's stands in", "epoch", epoch, "from", from, "err", err)
		return last, nil
	}
	return nil, err
}

// before returns the registry read for the newest epoch before epoch.
func (r *registry) before(epoch uint64) (ks []challenge.Keeper, from uint64, ok bool) {
	r.mu.Lock()
	defer r.mu.Unlock()
	for e, k := range r.epoch {
		if e < epoch && (!ok || e > from) {
			ks, from, ok = k, e, true
		}
	}
	return ks, from, ok
}

// kept returns the registry read for epoch, if one was.
func (r *registry) kept(epoch uint64) ([]challenge.Keeper, bool) {
	r.mu.Lock()
	defer r.mu.Unlock()
	ks, ok := r.epoch[epoch]
	return ks, ok
}

// read reads the registry from the ledger and keeps it for epoch, unless
// a read that ended since the caller looked kept it already.
func (r *registry) read(ctx context.Context, epoch uint64) ([]challenge.Keeper, error) {
	ks, ok := r.kept(epoch)
	if ok {
		return ks, nil
	}
	accounts, err := r.ledger.Keepers(ctx)
	if err != nil {
		return nil, fmt.Errorf("node: keeper registry: %w", err)
	}
	for _, a := range accounts {
		if a.Staked() { // what a ledger answers is checked, not trusted
			ks = append(ks, challenge.Keeper{ID: a.ID, Stake: a.Stake})
		}
	}
	r.mu.Lock()
	defer r.mu.Unlock()
	for old := range r.epoch {
		if old+4 < epoch {
			delete(r.epoch, old)
		}
	}
	r.epoch[epoch] = ks
	return ks, nil
}

// startSettlement serves the ledger on the sequencer, the receipts and
// reports exchanges on keepers, and runs the settler on keepers and edges.
func (n *Node) startSettlement(ctx context.Context, wg *sync.WaitGroup) error {
	if n.local != nil {
		stop := remote.Serve(n.host, n.local, n.baseLog.With("component", "ledger"))
		context.AfterFunc(ctx, stop)
	}
	keeper, edge := n.cfg.HasRole(config.RoleKeeper), n.cfg.HasRole(config.RoleEdge)
	if n.engine == nil || (!keeper && !edge) {
		return nil
	}
	if n.ledger == nil {
		if keeper {
			n.log.Warn("no ledger: this keeper settles nothing; set ledger.sequencer in config.toml")
		}
		keeper = false
	}
	params, err := n.challengeParams()
	if err != nil {
		return err
	}
	var reg func(context.Context, uint64) ([]challenge.Keeper, error)
	if n.ledger != nil {
		reg = n.keepers.keepers
	}
	streams := n.routed()
	cfg := settle.Config{
		Key:           n.key,
		Params:        params,
		Rates:         n.network.Rates,
		KeeperReward:  n.network.KeeperReward,
		Grace:         n.network.BatchGrace,
		LeaderTimeout: n.network.LeaderTimeout,
		Beacon:        n.feed,
		Clock:         n.clock,
		DB:            n.db,
		Receipts:      n.receipts,
		Reports:       n.reports,
		Ledger:        n.ledger,
		Registry:      reg,
		Keeper:        keeper,
		Edge:          edge,
		Offers:        func() []proofs.Offer { return n.engine.Manifest().Offers },
		Answered:      n.engine.Answered,
		Committee: func(ctx context.Context, epoch uint64) ([]peer.ID, error) {
			return n.engine.CommitteeOf(ctx, epoch, n.host.ID())
		},
		Log: n.baseLog,
	}
	if n.challenges != nil {
		cfg.Evidence = map[proofs.Kind]proofs.EvidenceChecker{proofs.KindLiveness: liveness.NewEvidenceChecker()}
		cfg.Challenge = n.challenges.get
	}
	if reg != nil {
		cfg.CatchUp = func(ctx context.Context, epoch uint64, from []peer.ID) error {
			return n.catchUp(ctx, streams, epoch, from, keeper)
		}
	}
	var topics []*engineTopic
	join := func(kind string, spec TopicSpec, validate func(context.Context, Message) error) (*engineTopic, error) {
		t, err := n.joinTopic(kind, spec, keeper, func(ctx context.Context, m Message) pubsub.ValidationResult {
			switch err := validate(ctx, m); {
			case err == nil:
				return pubsub.ValidationAccept
			case settle.IsIgnored(err):
				return pubsub.ValidationIgnore
			}
			return pubsub.ValidationReject
		})
		if err == nil {
			topics = append(topics, t)
		}
		return t, err
	}
	// The settler validates; it exists once the topics are joined, so the
	// validators reach it through this variable.
	var s *settle.Settler
	cfg.ReportTopic, err = join(config.TopicReports, TopicSpec{Domain: proofs.ReportDomain, MaxSize: proofs.MaxReportSize, Repeats: true},
		func(_ context.Context, m Message) error { return s.ValidateReport(m.Payload, m.Signer) })
	if err != nil {
		return err
	}
	if keeper {
		cfg.BatchTopic, err = join(config.TopicBatches, TopicSpec{Domain: proofs.BatchDomain, MaxSize: proofs.MaxBatchSignatureSize, Repeats: true},
			func(ctx context.Context, m Message) error { return s.ValidateSignature(ctx, m.Payload, m.Signer) })
		if err != nil {
			return err
		}
	}
	s, err = settle.New(cfg)
	if err != nil {
		return err
	}
	n.settler = s
	if keeper {
		src := leavesFirst{Source: exchange.StoreSource(n.receipts), leaves: s.Leaves}
		context.AfterFunc(ctx, exchange.Serve(n.host, src))
		context.AfterFunc(ctx, settle.ServeReports(n.host, n.reports, n.baseLog.With("component", "settle")))
	}
	wg.Add(1)
	go func() {
		defer wg.Done()
		defer func() {
			for _, t := range topics {
				t.cancel()
			}
		}()
		if err := s.Run(ctx); err != nil && ctx.Err() == nil {
			n.log.Error("settlement stopped", "err", err)
		}
	}()
	return nil
}

// catchUp fetches from peers what this node lacks of epoch: a keeper the
// receipts and reports of everyone, an edge its own receipts.
func (n *Node) catchUp(ctx context.Context, streams *routedhost.RoutedHost, epoch uint64, from []peer.ID, keeper bool) error {
	var edge peer.ID
	if !keeper {
		edge = n.host.ID()
	}
	accept := func(r proofs.Receipt) error { return n.engine.CheckReceipt(ctx, r) }
	pctx := ctx // the catch-up with the peer in hand, which a lookup must not outlast
	if n.dht != nil {
		accept = withManifests(accept, func(of peer.ID) error { return fetchManifest(pctx, n.dht, n.engine, of) })
	}
	var errs []error
	for _, p := range from {
		if p == n.host.ID() {
			continue
		}
		var cancel context.CancelFunc
		pctx, cancel = context.WithTimeout(ctx, catchUpTimeout)
		added, err := exchange.Sync(pctx, streams, p, epoch, edge, n.receipts, accept)
		if err != nil {
			errs = append(errs, err)
		}
		reports := 0
		if keeper {
			reports, err = settle.FetchReports(pctx, streams, p, n.network.Name, epoch, n.reports)
			if err != nil {
				errs = append(errs, err)
			}
		}
		cancel()
		if added > 0 || reports > 0 {
			n.log.Info("caught up", "epoch", epoch, "from", p, "receipts", added, "reports", reports)
		}
	}
	return errors.Join(errs...)
}

// leavesFirst answers a keeper's catch-up with the leaves of the batch
// this keeper signed, once it signed one: receipts that came after it are
// in no batch.
type leavesFirst struct {
	exchange.Source
	leaves func(epoch uint64) ([]cid.Cid, error)
}

func (s leavesFirst) CIDs(epoch uint64, edge peer.ID) ([]cid.Cid, error) {
	if edge == "" {
		if ids, err := s.leaves(epoch); err == nil {
			return slices.Clone(ids), nil
		}
	}
	return s.Source.CIDs(epoch, edge)
}

// routed is the host that finds a peer's addresses through the DHT when
// the peerstore has none.
func (n *Node) routed() *routedhost.RoutedHost { return routedhost.Wrap(n.host, n.dht) }
