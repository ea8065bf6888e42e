// Package node wires an aropeer node: the libp2p host, the DHT, gossipsub,
// the store, the HTTP API and the role services, with one lifecycle.
package node

import (
	"context"
	"errors"
	"fmt"
	"io"
	"log/slog"
	"net"
	"slices"
	"sync"
	"time"

	"github.com/ipfs/go-cid"
	"github.com/libp2p/go-libp2p"
	dht "github.com/libp2p/go-libp2p-kad-dht"
	"github.com/libp2p/go-libp2p/core/crypto"
	"github.com/libp2p/go-libp2p/core/host"
	"github.com/libp2p/go-libp2p/core/peer"
	"github.com/prometheus/client_golang/prometheus"
	"github.com/prometheus/client_golang/prometheus/collectors"

	"github.com/aropeer/aropeer/beacon"
	"github.com/aropeer/aropeer/chain"
	"github.com/aropeer/aropeer/chain/local"
	"github.com/aropeer/aropeer/challenge"
	"github.com/aropeer/aropeer/compute"
	"github.com/aropeer/aropeer/node/api"
	"github.com/aropeer/aropeer/node/config"
	"github.com/aropeer/aropeer/proofs"
	"github.com/aropeer/aropeer/settle"
	"github.com/aropeer/aropeer/storage/pieces"
	"github.com/aropeer/aropeer/store"
)

// Version is the aropeer version, set at build time by the Makefile.
var Version = "dev"

// Node is one aropeer process's node. Build it with New and start it with
// Run; its accessors are valid once Ready is closed.
type Node struct {
	cfg     config.Config
	network config.Network
	key     crypto.PrivKey
	dataDir string
	baseLog *slog.Logger // each part adds its own component
	log     *slog.Logger

	registry    *prometheus.Registry
	hostOptions []libp2p.Option
	host        host.Host // injected, or built by Run
	db          *store.DB // injected, or opened by Run
	trusted     []*net.IPNet
	withAPI     bool
	dhtClient   bool      // the DHT as a client only (WithDHTClient)
	keeperRand  io.Reader // keys a keeper's checks (WithKeeperRand); nil: crypto/rand
	inspect     time.Duration
	clock       Clock

	beacon beacon.Source // injected, or built by Run
	feed   *beaconFeed   // the one Watch of beacon, shared

	receipts *proofs.ReceiptStore
	reports  *proofs.ReportStore
	engine   *challenge.Engine // on keepers and edges
	ledger   chain.Settlement  // the embedded ledger or a client of it; nil without one
	// computeExec, if set, replaces the configured compute executor.
	computeExec compute.Executor
	hideFaults  bool          // WithHiddenFaults
	challenges  *challengeLog // a keeper's gossiped challenges, for disputes
	// wrapVerifier and wrapResponder, if set, wrap each of a keeper's
	// verifiers and an edge's responders.
	wrapVerifier  func(proofs.Verifier) proofs.Verifier
	wrapResponder func(proofs.Responder) proofs.Responder
	local         *local.Ledger   // on the sequencer
	keepers       *registry       // the ledger's keepers, if there is a ledger
	settler       *settle.Settler // on keepers and edges
	pieces        *pieces.Store   // on edges offering storage

	manifestMu sync.Mutex // one manifest update at a time

	ready   chan struct{}
	started time.Time
	gossip  *Gossip
	dht     *dht.IpfsDHT
	api     *api.Server
}

// Option configures a Node.
type Option func(*Node) error

// WithLogger sets the logger; the default discards nothing and writes text
// to standard error.
func WithLogger(l *slog.Logger) Option {
	return func(n *Node) error { n.log = l; return nil }
}

// WithDataDir sets the directory holding the store and the API token.
func WithDataDir(dir string) Option {
	return func(n *Node) error { n.dataDir = dir; return nil }
}

// WithStore gives the node an open store, which the caller closes.
func WithStore(db *store.DB) Option {
	return func(n *Node) error { n.db = db; return nil }
}

// WithHost gives the node a ready libp2p host (an in-memory one in tests),
// which the node closes when it stops.
func WithHost(h host.Host) Option {
	return func(n *Node) error { n.host = h; return nil }
}

// WithHostOptions adds libp2p options to the host the node builds, such as
// a simulated transport.
func WithHostOptions(opts ...libp2p.Option) Option {
	return func(n *Node) error { n.hostOptions = append(n.hostOptions, opts...); return nil }
}

// WithTrustedNets names networks whose peers are exempt from the DHT's
// diversity filter and gossipsub's IP colocation penalty. Loopback is
// always trusted: only this machine can connect from it.
func WithTrustedNets(nets ...*net.IPNet) Option {
	return func(n *Node) error { n.trusted = append(n.trusted, nets...); return nil }
}

// WithRegistry sets the Prometheus registry the node's collectors join.
func WithRegistry(r *prometheus.Registry) Option {
	return func(n *Node) error { n.registry = r; return nil }
}

// WithNetwork replaces the parameters of the config's network, as a test
// or simulation does to shorten epochs.
func WithNetwork(nw config.Network) Option {
	return func(n *Node) error { n.network = nw; return nil }
}

// WithBeacon gives the node its beacon source, in place of the gossip,
// HTTP and local sources it would build from its config.
func WithBeacon(src beacon.Source) Option {
	return func(n *Node) error { n.beacon = src; return nil }
}

// WithComputeExecutor answers compute checks with exec in place of the
// executor the config names, as a simulation's lazy edge does.
func WithComputeExecutor(exec compute.Executor) Option {
	return func(n *Node) error { n.computeExec = exec; return nil }
}

// WithHiddenFaults makes an edge that finds a piece damaged keep quiet
// rather than declare it faulty, as a simulation's lazy edge does.
func WithHiddenFaults() Option {
	return func(n *Node) error { n.hideFaults = true; return nil }
}

// WithVerifierWrapper has a keeper run its checks through wrap, as a
// simulation's lazy keeper does to sign passes without asking.
func WithVerifierWrapper(wrap func(proofs.Verifier) proofs.Verifier) Option {
	return func(n *Node) error { n.wrapVerifier = wrap; return nil }
}

// WithResponderWrapper has an edge answer through wrap, as a
// simulation's replaying edge does.
func WithResponderWrapper(wrap func(proofs.Responder) proofs.Responder) Option {
	return func(n *Node) error { n.wrapResponder = wrap; return nil }
}

// WithKeeperRand sets where a keeper draws the secret its compute checks
// are keyed by (crypto/rand by default): a simulation seeds it, so that a
// run repeats.
func WithKeeperRand(r io.Reader) Option {
	return func(n *Node) error { n.keeperRand = r; return nil }
}

// WithDHTClient runs the node's DHT as a client only, as an edge behind
// NAT ends up: it queries the DHT but serves no records and routes no
// queries, and so connects only to the DHT's servers. A simulation's
// edges run so.
func WithDHTClient() Option {
	return func(n *Node) error { n.dhtClient = true; return nil }
}

// WithoutAPI runs the node without its HTTP API, as a simulation does.
func WithoutAPI() Option {
	return func(n *Node) error { n.withAPI = false; return nil }
}

// WithScoreInspectInterval sets how often gossip scores are snapshotted.
func WithScoreInspectInterval(d time.Duration) Option {
	return func(n *Node) error {
		if d <= 0 {
			return fmt.Errorf("node: score inspect interval %s must be positive", d)
		}
		n.inspect = d
		return nil
	}
}

// New checks the configuration and prepares a node. It starts nothing.
func New(cfg config.Config, key crypto.PrivKey, opts ...Option) (*Node, error) {
	if err := cfg.Validate(); err != nil {
		return nil, err
	}
	network, err := cfg.NetworkParams()
	if err != nil {
		return nil, err
	}
	if key == nil {
		return nil, errors.New("node: no identity key")
	}
	n := &Node{
		cfg:     cfg,
		network: network,
		key:     key,
		log:     slog.Default(),
		withAPI: true,
		inspect: 5 * time.Second,
		clock:   beacon.SystemClock(),
		trusted: loopbackNets(),
		ready:   make(chan struct{}),
	}
	for _, opt := range opts {
		if err := opt(n); err != nil {
			return nil, err
		}
	}
	if n.db == nil && n.dataDir == "" {
		return nil, errors.New("node: neither a data directory nor a store was given")
	}
	if n.withAPI && n.dataDir == "" {
		return nil, errors.New("node: the API needs a data directory for its token")
	}
	if n.registry == nil {
		n.registry = prometheus.NewRegistry()
	}
	n.baseLog, n.log = n.log, n.log.With("component", "node")
	return n, nil
}

func loopbackNets() []*net.IPNet {
	return []*net.IPNet{
		{IP: net.IPv4(127, 0, 0, 0), Mask: net.CIDRMask(8, 32)},
		{IP: net.IPv6loopback, Mask: net.CIDRMask(128, 128)},
	}
}

// Ready is closed once the node has started and its accessors are valid.
func (n *Node) Ready() <-chan struct{} { return n.ready }

// Host returns the libp2p host.
func (n *Node) Host() host.Host { return n.host }

// Gossip returns the gossipsub router.
func (n *Node) Gossip() *Gossip { return n.gossip }

// DHT returns the Kademlia DHT.
func (n *Node) DHT() *dht.IpfsDHT { return n.dht }

// Store returns the node's store.
func (n *Node) Store() *store.DB { return n.db }

// Network returns the parameters of the node's network.
func (n *Node) Network() config.Network { return n.network }

// Beacon returns the node's source of verified beacon rounds. Its Watch
// may be called by any number of services.
func (n *Node) Beacon() beacon.Source { return n.feed }

// Receipts returns the node's receipt store.
func (n *Node) Receipts() *proofs.ReceiptStore { return n.receipts }

// Ledger returns the settlement the node submits to and reads: the
// embedded ledger on its sequencer, a client of it elsewhere; nil before
// Run has opened it, or without one.
func (n *Node) Ledger() chain.Settlement { return n.ledger }

// Engine returns the challenge engine, or nil on a node that is neither
// keeper nor edge.
func (n *Node) Engine() *challenge.Engine { return n.engine }

// Registry returns the registry the node's metrics are served from.
func (n *Node) Registry() *prometheus.Registry { return n.registry }

// API returns the HTTP API server, or nil when the node runs without one.
// Services add their endpoints to it before Ready.
func (n *Node) API() *api.Server { return n.api }

// Run starts the node and blocks until ctx ends, then stops everything in
// reverse order of start. It returns an error only if start-up failed or a
// part stopped unexpectedly.
func (n *Node) Run(ctx context.Context) (err error) {
	var stack closers
	defer func() {
		if cerr := stack.closeAll(); cerr != nil && err == nil {
			err = cerr
		}
	}()
	n.started = n.clock.Now()

	if n.db == nil {
		dir := config.Datadir(n.dataDir).StorePath()
		db, err := store.Open(dir, store.WithLogger(n.baseLog))
		if err != nil {
			return err
		}
		n.db = db
		stack.push("store", db.Close)
	}

	if n.host == nil {
		params, err := n.hostParams()
		if err != nil {
			return err
		}
		h, err := newHost(params)
		if err != nil {
			return err
		}
		n.host = h
	}
	stack.push("libp2p host", n.host.Close)

	// Services stop through this context before the parts they use close.
	svcCtx, stopServices := context.WithCancel(ctx)
	var wg sync.WaitGroup
	stack.push("services", func() error { stopServices(); wg.Wait(); return nil })

	bootstrap, err := n.cfg.BootstrapPeers()
	if err != nil {
		return err
	}
	gp := gossipParams{trusted: n.trusted, bootstrap: peerIDs(bootstrap), exchange: n.cfg.HasRole(config.RoleBootstrap), keeper: n.cfg.HasRole(config.RoleKeeper) && !n.cfg.HasRole(config.RoleBootstrap), scoreInspect: n.inspect}
	n.gossip, err = newGossip(svcCtx, n.host, gp, n.baseLog.With("component", "gossip"))
	if err != nil {
		return err
	}

	mode := dht.ModeAuto
	switch {
	case n.cfg.HasRole(config.RoleKeeper) || n.cfg.HasRole(config.RoleBootstrap):
		mode = dht.ModeServer
	case n.dhtClient:
		mode = dht.ModeClient
	}
	n.dht, err = newDHT(n.host, mode, n.trusted, n.network.Name)
	if err != nil {
		return err
	}
	stack.push("DHT", n.dht.Close)

	if err := n.registerMetrics(); err != nil {
		return err
	}

	if n.beacon == nil {
		if err := n.startBeacon(svcCtx, &wg); err != nil {
			return err
		}
	}
	n.feed = newBeaconFeed(n.beacon)
	wg.Add(1)
	go func() { defer wg.Done(); n.feed.run(svcCtx) }()

	n.receipts = proofs.NewReceiptStore(n.db)
	n.reports = proofs.NewReportStore(n.db)
	if err := n.openPieces(); err != nil {
		return err
	}
	if err := n.openLedger(); err != nil {
		return err
	}
	if n.ledger != nil {
		n.keepers = &registry{ledger: n.ledger, log: n.log, epoch: make(map[uint64][]challenge.Keeper)}
	}
	if err := n.startChallenges(svcCtx, &wg); err != nil {
		return err
	}
	if err := n.startSettlement(svcCtx, &wg); err != nil {
		return err
	}

	failed := make(chan error, 1)
	if n.withAPI {
		if err := n.startAPI(svcCtx, &wg, failed); err != nil {
			return err
		}
	}

	boot := &bootstrapper{
		h: n.host, d: n.dht, peers: bootstrap, log: n.log, clock: n.clock,
		minBackoff: time.Second, maxBackoff: time.Minute, checkEvery: 2 * time.Second,
	}
	adv := &advertiser{d: n.dht, keys: n.resourceKeys(), log: n.log, clock: n.clock, every: 10 * time.Minute, retry: 2 * time.Second}
	for _, run := range []func(context.Context){boot.run, adv.run} {
		wg.Add(1)
		go func() { defer wg.Done(); run(svcCtx) }()
	}

	n.log.Info("node started", "peer", n.host.ID(), "roles", n.cfg.Roles, "network", n.network.Name, "addrs", n.host.Addrs())
	close(n.ready)

	select {
	case <-ctx.Done():
		n.log.Info("node stopping")
		return nil
	case err := <-failed:
		return err
	}
}

func (n *Node) startAPI(ctx context.Context, wg *sync.WaitGroup, failed chan<- error) error {
	token, err := config.LoadOrCreateToken(config.Datadir(n.dataDir).TokenPath())
	if err != nil {
		return err
	}
	srv, err := api.New(n.cfg.API.Addr, token,
		api.WithLogger(n.baseLog),
		api.WithStatus(n.Status),
		api.WithMetrics(n.registry),
	)
	if err != nil {
		return err
	}
	if err := srv.Listen(); err != nil {
		return err
	}
	srv.Handle("GET "+BeaconPath+"{round}", n.beaconHandler())
	srv.Handle("GET "+ChallengesPath, n.challengesHandler())
	srv.Handle("GET "+ReceiptsPath, n.receiptsHandler())
	srv.Handle("GET "+ReceiptsPath+"/{cid}", n.receiptHandler())
	srv.Handle("GET "+LedgerPath, n.ledgerHandler())
	srv.Handle("GET "+LedgerAccountsPath, n.ledgerAccountsHandler())
	srv.Handle("GET "+LedgerBatchPath+"{epoch}", n.ledgerBatchHandler())
	srv.Handle("GET "+LedgerVerifyPath, n.ledgerVerifyHandler())
	srv.Handle("GET "+ReportPath, n.reportHandler())
	srv.Handle("GET "+ProofPath+"{cid}", n.proofHandler())
	srv.Handle("GET "+PiecesPath, n.listPiecesHandler())
	srv.HandleMutating("POST "+PiecesPath, n.addPieceHandler())
	srv.HandleMutating("DELETE "+PiecesPath+"/{cid}", n.removePieceHandler())
	srv.HandleMutating("POST "+VerifyPiecesPath, n.verifyPiecesHandler())
	n.api = srv
	wg.Add(1)
	go func() {
		defer wg.Done()
		if err := srv.Serve(ctx); err != nil {
			select {
			case failed <- err:
			default:
			}
		}
	}()
	return nil
}

// Status reports what `aropeer status` shows.
func (n *Node) Status(context.Context) (api.Status, error) {
	addrs := n.host.Addrs()
	listen := make([]string, 0, len(addrs))
	for _, a := range addrs {
		listen = append(listen, fmt.Sprintf("%s/p2p/%s", a, n.host.ID()))
	}
	slices.Sort(listen)
	return api.Status{
		PeerID:              n.host.ID().String(),
		Roles:               roleNames(n.cfg.Roles),
		Network:             n.network.Name,
		ListenAddrs:         listen,
		ConnectedPeers:      len(n.host.Network().Peers()),
		DHTRoutingTableSize: n.dht.RoutingTable().Size(),
		Topics:              n.gossip.MeshSizes(),
		Version:             Version,
		UptimeSeconds:       n.clock.Now().Sub(n.started).Seconds(),
		LatestRound:         n.feed.latest.Load(),
	}, nil
}

func (n *Node) registerMetrics() error {
	cs := []prometheus.Collector{newNodeCollector(n)}
	if n.withAPI {
		// One process, one node: the process's own figures belong here.
		cs = append(cs, collectors.NewGoCollector(), collectors.NewProcessCollector(collectors.ProcessCollectorOpts{}))
	}
	for _, c := range cs {
		if err := n.registry.Register(c); err != nil {
			return fmt.Errorf("node: register metrics: %w", err)
		}
	}
	return nil
}

// resourceKeys are the provider records an edge keeps: one per kind offered.
func (n *Node) resourceKeys() map[string]cid.Cid {
	if !n.cfg.HasRole(config.RoleEdge) {
		return nil
	}
	keys := make(map[string]cid.Cid)
	for _, kind := range n.cfg.Offered() {
		keys[kind] = ResourceKey(n.network.Name, kind)
	}
	return keys
}

func peerIDs(infos []peer.AddrInfo) []peer.ID {
	ids := make([]peer.ID, len(infos))
	for i, p := range infos {
		ids[i] = p.ID
	}
	return ids
}

func roleNames(roles []config.Role) []string {
	out := make([]string, len(roles))
	for i, r := range roles {
		out[i] = string(r)
	}
	return out
}

// closers stops the parts of a node in reverse order of start.
type closers struct {
	names []string
	fns   []func() error
}

func (c *closers) push(name string, fn func() error) {
	c.names = append(c.names, name)
	c.fns = append(c.fns, fn)
}

func (c *closers) closeAll() error {
	var errs []error
	for i := len(c.fns) - 1; i >= 0; i-- {
		if err := c.fns[i](); err != nil {
			errs = append(errs, fmt.Errorf("node: close %s: %w", c.names[i], err))
		}
	}
	return errors.Join(errs...)
}
