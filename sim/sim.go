package sim

import (
	"bytes"
	"context"
	"crypto/ed25519"
	"crypto/sha256"
	"encoding/binary"
	"errors"
	"fmt"
	"io"
	"log/slog"
	"math/rand/v2"
	"net"
	"os"
	"path/filepath"
	"slices"
	"strconv"
	"sync"
	"sync/atomic"
	"time"

	"github.com/libp2p/go-libp2p/core/crypto"
	"github.com/libp2p/go-libp2p/core/host"
	"github.com/libp2p/go-libp2p/core/peer"
	mocknet "github.com/libp2p/go-libp2p/p2p/net/mock"
	ma "github.com/multiformats/go-multiaddr"

	"github.com/aropeer/aropeer/beacon"
	"github.com/aropeer/aropeer/compute"
	"github.com/aropeer/aropeer/internal/mockhost"
	"github.com/aropeer/aropeer/node"
	"github.com/aropeer/aropeer/node/config"
	"github.com/aropeer/aropeer/proofs"
	"github.com/aropeer/aropeer/storage/pieces"
	"github.com/aropeer/aropeer/store"
)

// Progress is told, once a round, where the run is.
type Progress func(Where)

// Where is where a run is.
type Where struct {
	// Epoch is the scenario's epoch (from 1), of Epochs; 0 while the
	// network starts and waits for its first whole epoch, and Epochs+1
	// while the last batches settle.
	Epoch, Epochs int
	// Round is the round within the epoch (or within the settling), of
	// Rounds.
	Round, Rounds uint64
	// Late counts the rounds so far in which the machine fell behind the
	// network's clock (Report.LateRounds).
	Late int
	// Started counts the nodes started, of Nodes. In epoch 0 they start
	// one by one, which in real time takes a network of a thousand edges
	// minutes; the rounds are told once every node has.
	Started, Nodes int
}

// Starting reports whether the nodes are still starting: no round has
// been told yet.
func (w Where) Starting() bool { return w.Started < w.Nodes }

// Options are how a run is carried out, apart from what it simulates.
type Options struct {
	// Dir holds the nodes' data directories; a temporary directory,
	// removed after the run, if empty.
	Dir string
	// Log receives the nodes' logs; discarded if nil.
	Log io.Writer
	// Progress, if set, is told of each round.
	Progress Progress
	// VirtualClock says the run's clock waits for the machine, as a
	// testing/synctest bubble's does: the machine's delays then cost the
	// network nothing, and are not counted as late rounds (which would
	// also make a seed's report differ between runs).
	VirtualClock bool
}

// member is one node of the simulated network.
type member struct {
	index    int
	role     config.Role
	strategy Strategy // Name Honest for honest nodes
	key      crypto.PrivKey
	id       peer.ID
	host     host.Host
	dir      string
	node     *node.Node
	piece    string // the edge's piece CID, if it holds one
	// rate (bytes a second, 0 unlimited) and latency of its access link
	rate    float64
	latency time.Duration
	// presence keeps an offline edge away for a share of rounds.
	presence *presence
}

// linkPair joins a and b: at the lower of their access rates, with the
// sum of their latencies.
func linkPair(mn mocknet.Mocknet, a, b *member) error {
	l, err := mn.LinkPeers(a.id, b.id)
	if err != nil {
		return err
	}
	// A rate is 0 (unlimited) for every node or for none.
	l.SetOptions(mocknet.LinkOptions{Latency: a.latency + b.latency, Bandwidth: min(a.rate, b.rate)})
	return nil
}

// reachable reports whether a can dial b, or b a. Edges are home hosts
// behind NAT: they reach the public nodes, keepers and bootstrap, and are
// reached by them, never by each other. (Without the rule a thousand
// edges would be half a million links, and gossipsub's peer exchange
// would join them in a mesh of their own.)
func reachable(a, b *member) bool {
	return a.role != config.RoleEdge || b.role != config.RoleEdge
}

// simNet is the mocknet range the simulated hosts live in.
var simNet = &net.IPNet{IP: net.IPv4(100, 64, 0, 0), Mask: net.CIDRMask(10, 32)}

// Run simulates s and returns its report. It fails only when the network
// cannot run at all; what the network catches, or fails to, is the
// report. A run that ctx stops in the scenario's epochs, or while their
// batches settle, returns what it found so far, with Report.Stopped set,
// along with the error: an interrupted run loses nothing the ledger
// already holds.
func Run(ctx context.Context, s Scenario, o Options) (*Report, error) {
	if err := s.Validate(); err != nil {
		return nil, fmt.Errorf("sim: %w", err)
	}
	dir := o.Dir
	if dir == "" {
		tmp, err := os.MkdirTemp("", "aropeer-sim-")
		if err != nil {
			return nil, fmt.Errorf("sim: %w", err)
		}
		defer os.RemoveAll(tmp)
		dir = tmp
	}
	// Without a writer the records are not even formatted: a thousand
	// nodes log a good deal.
	log := slog.New(slog.DiscardHandler)
	if o.Log != nil {
		log = slog.New(slog.NewTextHandler(o.Log, &slog.HandlerOptions{Level: slog.LevelInfo}))
	}

	nw, err := s.network()
	if err != nil {
		return nil, err
	}
	members, err := s.members()
	if err != nil {
		return nil, err
	}
	mn := mocknet.New()
	defer mn.Close()
	defer func() {
		// A node closes its host; this closes those of nodes that never ran.
		for _, m := range members {
			if m.host != nil {
				_ = m.host.Close()
			}
		}
	}()
	for _, m := range members {
		addr := ma.StringCast(fmt.Sprintf("/ip4/100.%d.%d.%d/tcp/4001", 64+m.index>>16, (m.index>>8)&0xff, m.index&0xff))
		h, err := mn.AddPeer(m.key, addr)
		if err != nil {
			return nil, fmt.Errorf("sim: add host %d: %w", m.index, err)
		}
		conns := config.Default(m.role).ConnMgr
		if m.index == 0 {
			// The ledger's node keeps a connection to every node, as a
			// chain's endpoint serving them would: each asks it for the
			// keeper registry when an epoch begins, and a thousand
			// edges it had trimmed redialled it at once.
			conns.Low, conns.High = max(conns.Low, len(members)+16), max(conns.High, 2*len(members))
		}
		if m.host, err = node.Managed(mockhost.Wrap(h), conns); err != nil {
			return nil, fmt.Errorf("sim: host %d: %w", m.index, err)
		}
		m.dir = filepath.Join(dir, fmt.Sprintf("node-%d", m.index))
	}
	for i, a := range members {
		for _, b := range members[i+1:] {
			if !reachable(a, b) {
				continue
			}
			if err := linkPair(mn, a, b); err != nil {
				return nil, fmt.Errorf("sim: link hosts: %w", err)
			}
		}
	}

	// The edges' stores are shares of one in memory: a thousand nodes'
	// commits would otherwise wait on the disk, and a pebble each would
	// cost each its log writer, manifest, commit pipeline and goroutines.
	// A keeper has one of its own: it keeps every receipt of the network,
	// and in a shared store each of its reads and writes searched the
	// other keepers' receipts too; its own store takes a quarter off the
	// time a keeper of a thousand edges' network spends storing receipts.
	// A run keeps nothing of them.
	openStore := func(name string) (*store.DB, error) {
		db, err := store.Open(filepath.Join(dir, name), store.InMemory(), store.WithCacheSize(storeCache), store.WithLogger(log))
		if err != nil {
			return nil, fmt.Errorf("sim: %w", err)
		}
		return db, nil
	}
	shared, err := openStore("store")
	if err != nil {
		return nil, err
	}
	defer shared.Close()
	dbs := make([]*store.DB, len(members))
	for i, m := range members {
		if m.role != config.RoleKeeper {
			dbs[i] = shared.Share(strconv.Itoa(m.index))
			continue
		}
		if dbs[i], err = openStore(fmt.Sprintf("store-%d", m.index)); err != nil {
			return nil, err
		}
		defer dbs[i].Close()
	}
	runCtx, stop := context.WithCancel(ctx)
	var wg sync.WaitGroup
	defer func() { stop(); wg.Wait() }()
	// from is the scenario's first round once the runner knows it:
	// strategies that act on earlier answers start from it.
	from := new(atomic.Uint64)
	for i, m := range members {
		if err := s.start(runCtx, &wg, nw, members, m, dbs[i], from, log); err != nil {
			return nil, err
		}
		if o.Progress != nil {
			o.Progress(Where{Epochs: s.Epochs, Rounds: s.EpochRounds, Started: i + 1, Nodes: len(members)})
		}
	}
	boot := members[0].node
	r := &runner{s: s, nw: nw, mn: mn, members: members, boot: boot, from: from, progress: o.Progress, log: log}
	if !o.VirtualClock {
		r.machine = newMachine()
	}
	runErr := r.run(runCtx)
	// The nodes stop before the report is read from the ledger and the
	// keepers' stores: a thousand of them would go on taking the
	// machine's cores from it for minutes.
	stop()
	wg.Wait()
	if r.firstEpoch == 0 || (runErr != nil && r.round < r.firstRound) {
		// Stopped before the scenario's first round: there is nothing to
		// report, and the caller keeps an earlier run's report.
		return nil, runErr
	}
	rep, err := r.collect(context.WithoutCancel(ctx))
	if err != nil {
		return nil, errors.Join(runErr, err)
	}
	if runErr != nil {
		rep.Stopped = fmt.Sprintf("%v, %s", context.Cause(ctx), r.where())
	}
	return rep, runErr
}

// storeCache is the block cache of each store of a run: it holds a
// keeper's epochs of receipts, which settlement reads over and over, once
// they leave the memtable.
const storeCache = 64 << 20

// network is the devnet's parameters with the scenario's epoch length,
// probabilities and committee size, and a beacon chain of its own whose
// first round is now, so that its epochs count from 1.
func (s Scenario) network() (config.Network, error) {
	nw, err := config.LookupNetwork("devnet")
	if err != nil {
		return config.Network{}, err
	}
	secret := sha256.Sum256(binary.BigEndian.AppendUint64([]byte("aropeer sim beacon "), s.Seed))
	signer, err := beacon.NewSigner(secret[:], s.Period(), time.Now().Unix(), "aropeer-sim")
	if err != nil {
		return config.Network{}, fmt.Errorf("sim: beacon: %w", err)
	}
	nw.Beacon, nw.BeaconRelays = signer.Info(), nil
	nw.LocalBeacon = func() *beacon.Signer { return signer }
	nw.EpochRounds = s.EpochRounds
	nw.CommitteeSize = min(nw.CommitteeSize, s.Keepers)
	// A CPU claiming a GPU's class is handed the largest product; 512
	// keeps its (doomed) checks to a fraction of a second of the
	// machine's cores, shared by the whole network.
	nw.Compute.MaxN = 512
	// Honest checks sized for 50 ms of the claimed class, not 250: the
	// simulated devices wait out their time, and the machine's cores are
	// what a whole network shares.
	nw.Compute.Target = 50 * time.Millisecond
	// Every node's checks share the machine's cores: an honest edge's
	// product can take several times what its claim says.
	nw.Compute.Slack = 10
	// Probes run at the CPU's speed in memory: a small cap keeps a liar's
	// probes from starving the honest edges' of the machine's cores.
	nw.ProbeMaxBytes = 8 << 20
	nw.Probability = map[proofs.Kind]float64{}
	for k, p := range s.Probability {
		nw.Probability[proofs.Kind(k)] = p
	}
	return nw, nil
}

// members lays out the network: node 0 is the bootstrap node (beacon and
// ledger), then the keepers, then the edges; strategies go to nodes
// drawn from the seed.
func (s Scenario) members() ([]*member, error) {
	rng := rand.New(rand.NewPCG(s.Seed, 0x5151))
	var out []*member
	add := func(role config.Role) error {
		seed := make([]byte, ed25519.SeedSize)
		for i := range seed {
			seed[i] = byte(rng.Uint32())
		}
		key, err := crypto.UnmarshalEd25519PrivateKey(ed25519.NewKeyFromSeed(seed))
		if err != nil {
			return err
		}
		id, err := peer.IDFromPrivateKey(key)
		if err != nil {
			return err
		}
		out = append(out, &member{index: len(out), role: role, key: key, id: id, strategy: Strategy{Name: Honest}})
		return nil
	}
	if err := add(config.RoleBootstrap); err != nil {
		return nil, err
	}
	for range s.Keepers {
		if err := add(config.RoleKeeper); err != nil {
			return nil, err
		}
	}
	for range s.Edges {
		if err := add(config.RoleEdge); err != nil {
			return nil, err
		}
	}
	for _, m := range out {
		m.rate, m.latency = s.Link.access(rand.New(rand.NewPCG(s.Seed, 0x11ec<<32|uint64(m.index))))
	}
	keepers, edges := out[1:1+s.Keepers], out[1+s.Keepers:]
	kOrder, eOrder := rng.Perm(len(keepers)), rng.Perm(len(edges))
	for _, st := range s.Strategies {
		pool, order := &eOrder, edges
		if strategies[st.Name].keeper {
			pool, order = &kOrder, keepers
		}
		for range st.Nodes {
			order[(*pool)[0]].strategy = st
			*pool = (*pool)[1:]
		}
	}
	return out, nil
}

// offers is what edge m offers besides liveness: each kind to the share
// of edges the scenario says, spread over the edges by index, and always
// what its strategy cheats on.
func (s Scenario) offers(m *member, edgeIndex int) []string {
	var out []string
	for i, k := range []string{"storage", "bandwidth", "compute"} {
		spread := (edgeIndex*37 + i*29) % 100
		if float64(spread) < s.Offers[k]*100 || strategies[m.strategy.Name].needs == k {
			out = append(out, k)
		}
	}
	return out
}

// start prepares m's data directory and config and runs its node, on
// db, until ctx ends. The caller closes db once wg is done: the report is
// read from the stores of stopped nodes.
func (s Scenario) start(ctx context.Context, wg *sync.WaitGroup, nw config.Network, members []*member, m *member, db *store.DB, from *atomic.Uint64, log *slog.Logger) error {
	boot := members[0]
	cfg := config.Default(m.role)
	cfg.Listen = []string{m.host.Addrs()[0].String()}
	if m.index > 0 {
		cfg.Bootstrap = []string{fmt.Sprintf("%s/p2p/%s", boot.host.Addrs()[0], boot.id)}
		cfg.Ledger.Sequencer = boot.id.String()
	} else {
		cfg.Beacon.Local = true
		cfg.Ledger.Serve = true
	}
	for _, k := range members[1 : 1+s.Keepers] {
		cfg.Keepers = append(cfg.Keepers, fmt.Sprintf("%s=100", k.id))
	}
	// A keeper's compute checks draw from the seed, so a run repeats.
	keeperSeed := sha256.Sum256(binary.BigEndian.AppendUint64([]byte("aropeer sim keeper "), s.Seed^uint64(m.index)))
	opts := []node.Option{node.WithKeeperRand(rand.NewChaCha8(keeperSeed))}
	if m.strategy.Name == "lazy-keeper" {
		opts = append(opts, node.WithVerifierWrapper(func(v proofs.Verifier) proofs.Verifier { return lazyVerifier{v} }))
	}
	if m.role == config.RoleEdge {
		// Edges are DHT clients, as home hosts behind NAT end up: they
		// connect to the keepers and the bootstrap node, not to each
		// other.
		opts = append(opts, node.WithDHTClient())
		edgeIndex := m.index - 1 - s.Keepers
		cfg.Offers = s.offers(m, edgeIndex)
		cfg.Bandwidth.UpMbit, cfg.Bandwidth.DownMbit = s.BandwidthMbit, s.BandwidthMbit
		cfg.Compute.Device, cfg.Compute.MilliTOPS = "cpu", s.ComputeMTOPS
		switch m.strategy.Name {
		case "bandwidth-liar":
			cfg.Bandwidth.UpMbit = uint64(float64(s.BandwidthMbit) * m.strategy.Multiple)
			cfg.Bandwidth.DownMbit = cfg.Bandwidth.UpMbit
		case "slow-compute":
			cfg.Compute.Device = "gpu-class"
			cfg.Compute.MilliTOPS = uint64(float64(s.ComputeMTOPS) * m.strategy.Multiple)
		}
		// Each edge's accelerator is simulated: the product is computed
		// on one core (a whole network's checks share the machine), and
		// takes at least the time the edge's device needs, its claim for
		// an honest edge, a CPU's for a slow one.
		device := device{gops: float64(s.ComputeMTOPS), exec: &compute.CPU{Workers: 1}}
		if m.strategy.Name == "lazy-compute" {
			device.exec = lazyExecutor{share: m.strategy.Share, seed: s.Seed + uint64(m.index)}
		}
		opts = append(opts, node.WithComputeExecutor(device))
		switch m.strategy.Name {
		case "replayer":
			opts = append(opts, node.WithResponderWrapper(replaying(from)))
		case "offline":
			m.presence = &presence{}
			opts = append(opts, node.WithResponderWrapper(m.presence.wrap))
		}
		if m.strategy.Name == "lazy-storage" {
			// It answers what it can and never owns up to the rest.
			opts = append(opts, node.WithHiddenFaults())
		}
		if slices.Contains(cfg.Offers, "storage") {
			if err := s.givePiece(m, db); err != nil {
				return err
			}
		}
	}
	if err := cfg.Validate(); err != nil {
		return fmt.Errorf("sim: node %d: %w", m.index, err)
	}
	opts = append(opts,
		node.WithHost(m.host),
		node.WithDataDir(m.dir),
		node.WithStore(db),
		node.WithoutAPI(),
		node.WithTrustedNets(simNet),
		node.WithNetwork(nw),
		node.WithLogger(log.With("node", m.index, "role", m.role, "strategy", m.strategy.Name)),
	)
	n, err := node.New(cfg, m.key, opts...)
	if err != nil {
		return fmt.Errorf("sim: node %d: %w", m.index, err)
	}
	m.node = n
	done := make(chan error, 1)
	wg.Add(1)
	go func() {
		defer wg.Done()
		done <- n.Run(ctx)
	}()
	select {
	case <-n.Ready():
	case err := <-done:
		return fmt.Errorf("sim: node %d stopped while starting: %v", m.index, err)
	case <-ctx.Done():
		return ctx.Err()
	}
	if m.strategy.Name == "fault-declarer" && m.piece != "" {
		p, err := n.Pieces().List()
		if err == nil && len(p) > 0 {
			err = n.DeclareFault(ctx, p[0].CID, errors.New("lost part of the piece"))
		}
		if err != nil {
			return fmt.Errorf("sim: node %d: declare its fault: %w", m.index, err)
		}
	}
	return nil
}

// givePiece stores a random piece in m's data directory and store before
// its node starts, damaged as its strategy says.
func (s Scenario) givePiece(m *member, db *store.DB) error {
	cfgDir := config.Datadir(m.dir)
	ps, err := pieces.Open(db, cfgDir.PiecesPath(), pieces.WithLogger(slog.New(slog.DiscardHandler)))
	if err != nil {
		return err
	}
	rng := rand.New(rand.NewPCG(s.Seed, uint64(m.index)))
	data := make([]byte, s.PieceKiB<<10)
	for i := range data {
		data[i] = byte(rng.Uint32())
	}
	p, err := ps.Add(context.Background(), bytes.NewReader(data), int64(len(data)), "sim", nil)
	if err != nil {
		return fmt.Errorf("sim: node %d: add its piece: %w", m.index, err)
	}
	m.piece = p.CID.String()
	switch m.strategy.Name {
	case "lazy-storage", "fault-declarer":
		return damagePiece(ps.Path(p.CID), m.strategy.Share)
	}
	return nil
}
