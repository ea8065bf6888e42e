package main

import (
	"context"
	"crypto/rand"
	"errors"
	"fmt"
	"io"
	"math"
	"net"
	"os"
	"os/exec"
	"os/signal"
	"path/filepath"
	"slices"
	"strconv"
	"strings"
	"syscall"
	"text/tabwriter"
	"time"

	"github.com/spf13/cobra"

	"github.com/aropeer/aropeer/node/api"
	"github.com/aropeer/aropeer/node/config"
	"github.com/aropeer/aropeer/storage/pieces"
	"github.com/aropeer/aropeer/store"
)

// devnetOptions are the flags of `aropeer devnet`.
type devnetOptions struct {
	nodes     int
	keepers   int
	dir       string
	timeout   time.Duration
	pieceSize string
	claimMbit uint64
	overclaim bool
	mtops     uint64
}

func newDevnetCmd() *cobra.Command {
	var o devnetOptions
	cmd := &cobra.Command{
		Use:   "devnet --nodes N",
		Short: "Run a local network of aropeer processes on loopback until Ctrl-C",
		Long: `devnet starts one bootstrap node, keepers and edges as separate aropeer
processes on 127.0.0.1 with free ports. Node i keeps its data directory,
config, log (node.log) and pid (node.pid) in DIR/node-<i>; node-0 is the
bootstrap node and runs the devnet's beacon.
Running devnet again on the same DIR restarts the same nodes.`,
		Args: cobra.NoArgs,
		RunE: func(cmd *cobra.Command, _ []string) error {
			ctx, stop := signal.NotifyContext(cmd.Context(), os.Interrupt, syscall.SIGTERM)
			defer stop()
			return runDevnet(ctx, o, cmd.OutOrStdout())
		},
	}
	f := cmd.Flags()
	f.IntVar(&o.nodes, "nodes", 4, "number of nodes, the bootstrap node included (at least 3)")
	f.IntVar(&o.keepers, "keepers", 0, "number of keepers (default: two fifths of the non-bootstrap nodes, at least 1)")
	f.StringVar(&o.dir, "dir", "devnet", "directory holding the nodes' data directories")
	f.DurationVar(&o.timeout, "timeout", time.Minute, "how long to wait for the nodes to connect")
	f.StringVar(&o.pieceSize, "piece-size", "4MiB", "size of the random piece each new edge stores and offers (0 for none)")
	f.Uint64Var(&o.claimMbit, "claim-mbit", 20, "bandwidth each new edge claims each way, in Mbit/s (0 offers none)")
	f.Uint64Var(&o.mtops, "compute-mtops", 2, "int8 throughput each new edge claims for its CPU, in milli-TOPS (1 = 1 GOPS; 0 offers no compute)")
	f.BoolVar(&o.overclaim, "overclaim", false, "the last new edge claims 1 Tbit/s, far above any link, and fails its bandwidth probes")
	return cmd
}

// devnetNode is one child process of a devnet.
type devnetNode struct {
	index   int
	role    config.Role
	dataDir string
	peerID  string
	apiAddr string
	cmd     *exec.Cmd
	exited  chan error
	gone    bool // exited while the devnet ran
}

func (o devnetOptions) roles() ([]config.Role, error) {
	if o.nodes < 3 {
		return nil, exitCode(2, fmt.Errorf("--nodes %d: a devnet needs at least 3 nodes (a bootstrap node, a keeper and an edge)", o.nodes))
	}
	keepers := o.keepers
	if keepers == 0 {
		keepers = max(1, (o.nodes-1)*2/5)
	}
	if keepers < 1 || keepers > o.nodes-2 {
		return nil, exitCode(2, fmt.Errorf("--keepers %d: want between 1 and %d for %d nodes, leaving room for an edge", keepers, o.nodes-2, o.nodes))
	}
	roles := []config.Role{config.RoleBootstrap}
	for i := 1; i < o.nodes; i++ {
		if i <= keepers {
			roles = append(roles, config.RoleKeeper)
		} else {
			roles = append(roles, config.RoleEdge)
		}
	}
	return roles, nil
}

func runDevnet(ctx context.Context, o devnetOptions, out io.Writer) (err error) {
	roles, err := o.roles()
	if err != nil {
		return err
	}
	self, err := os.Executable()
	if err != nil {
		return fmt.Errorf("find the aropeer binary: %w", err)
	}
	pieceSize, err := parseSize(o.pieceSize)
	if err != nil {
		return exitCode(2, fmt.Errorf("--piece-size %q: %w", o.pieceSize, err))
	}
	nodes, err := prepareDevnet(o.dir, roles, edgeOffer{pieceSize: pieceSize, claimMbit: o.claimMbit, overclaim: o.overclaim, mtops: o.mtops})
	if err != nil {
		return err
	}
	defer func() {
		if serr := stopDevnet(nodes, out); err == nil {
			err = serr
		}
	}()
	for _, n := range nodes {
		if err := n.start(self); err != nil {
			return err
		}
	}
	fmt.Fprintf(out, "started %d nodes in %s; waiting for them to connect...\n", len(nodes), o.dir)
	if err := waitConnected(ctx, nodes, o.timeout); err != nil {
		return err
	}
	printDevnet(out, nodes)
	fmt.Fprintln(out, "devnet running; press Ctrl-C to stop it")
	for {
		select {
		case <-ctx.Done():
			return nil
		case <-time.After(time.Second):
		}
		// A node that stops, say because its operator killed it to see
		// how the network treats an edge that goes down, is reported once;
		// the others go on.
		for _, n := range nodes {
			if n.gone {
				continue
			}
			select {
			case err := <-n.exited:
				n.gone = true
				fmt.Fprintf(out, "node-%d (%s) exited (%v); the devnet goes on without it; see %s\n", n.index, n.role, err, filepath.Join(n.dataDir, "node.log"))
			default:
			}
		}
	}
}

// prepareDevnet initialises each node's data directory, or reuses it when
// it exists, so a devnet can be stopped and started again.
// edgeOffer is what the new edges of a devnet offer.
type edgeOffer struct {
	pieceSize int64
	claimMbit uint64
	overclaim bool // the last edge claims 1 Tbit/s
	mtops     uint64
}

func prepareDevnet(dir string, roles []config.Role, offer edgeOffer) ([]*devnetNode, error) {
	nodes := make([]*devnetNode, len(roles))
	var bootstrap string
	for i, role := range roles {
		n := &devnetNode{index: i, role: role, dataDir: filepath.Join(dir, "node-"+strconv.Itoa(i)), exited: make(chan error, 1)}
		cfg, err := config.Read(config.Datadir(n.dataDir).ConfigPath())
		switch {
		case err == nil:
			if len(cfg.Roles) == 0 || cfg.Roles[0] != role {
				return nil, fmt.Errorf("%s holds a %v node, not a %s: remove %s or use another --dir", n.dataDir, cfg.Roles, role, dir)
			}
		case errors.Is(err, config.ErrNoConfig):
			port, err := freePort()
			if err != nil {
				return nil, err
			}
			apiPort, err := freePort()
			if err != nil {
				return nil, err
			}
			o := initOptions{
				dataDir: n.dataDir,
				role:    string(role),
				network: "devnet",
				listen: []string{
					fmt.Sprintf("/ip4/127.0.0.1/tcp/%d", port),
					fmt.Sprintf("/ip4/127.0.0.1/udp/%d/quic-v1", port),
				},
				apiAddr: net.JoinHostPort("127.0.0.1", strconv.Itoa(apiPort)),
				// The bootstrap node runs the devnet's beacon.
				local: i == 0,
			}
			if bootstrap != "" {
				o.bootstrap = []string{bootstrap}
			}
			if role == config.RoleEdge && offer.pieceSize > 0 {
				o.offers = append(o.offers, "storage")
			}
			if role == config.RoleEdge && offer.claimMbit > 0 {
				o.offers = append(o.offers, "bandwidth")
				o.upMbit, o.downMbit = offer.claimMbit, offer.claimMbit
				if offer.overclaim && i == len(roles)-1 {
					o.upMbit, o.downMbit = 1_000_000, 1_000_000
				}
			}
			if role == config.RoleEdge && offer.mtops > 0 {
				o.offers = append(o.offers, "compute")
				o.device, o.milliTOPS = "cpu", offer.mtops
			}
			if _, err := initDataDir(o); err != nil {
				return nil, fmt.Errorf("initialise %s: %w", n.dataDir, err)
			}
			if role == config.RoleEdge && offer.pieceSize > 0 {
				if err := addRandomPiece(n.dataDir, offer.pieceSize); err != nil {
					return nil, fmt.Errorf("give %s a piece: %w", n.dataDir, err)
				}
			}
			if cfg, err = config.Read(config.Datadir(n.dataDir).ConfigPath()); err != nil {
				return nil, err
			}
		default:
			return nil, err
		}
		key, err := config.LoadIdentity(config.Datadir(n.dataDir).IdentityPath())
		if err != nil {
			return nil, err
		}
		id, err := peerIDOf(key)
		if err != nil {
			return nil, err
		}
		n.peerID, n.apiAddr = id.String(), cfg.API.Addr
		if i == 0 {
			bootstrap = cfg.Listen[0] + "/p2p/" + n.peerID
		}
		nodes[i] = n
	}
	return nodes, writeGenesis(nodes)
}

// devnetStake is each devnet keeper's stake: equal stakes, equal shares.
const devnetStake = 100

// writeGenesis gives every node the devnet's keepers and its ledger: a
// devnet's keepers are born with it, so its genesis list lives in the
// nodes' configs, and its bootstrap node sequences the embedded ledger.
func writeGenesis(nodes []*devnetNode) error {
	var keepers []string
	sequencer := ""
	for _, n := range nodes {
		if n.role == config.RoleKeeper {
			keepers = append(keepers, fmt.Sprintf("%s=%d", n.peerID, devnetStake))
		}
		if n.role == config.RoleBootstrap && sequencer == "" {
			sequencer = n.peerID
		}
	}
	for _, n := range nodes {
		path := config.Datadir(n.dataDir).ConfigPath()
		cfg, err := config.Read(path)
		if err != nil {
			return err
		}
		ledger := config.Ledger{Sequencer: sequencer}
		if n.peerID == sequencer {
			ledger = config.Ledger{Serve: true}
		}
		if slices.Equal(cfg.Keepers, keepers) && cfg.Ledger == ledger {
			continue
		}
		cfg.Keepers, cfg.Ledger = keepers, ledger
		if err := config.Write(path, cfg); err != nil {
			return err
		}
	}
	return nil
}

// freePort finds a port free for both TCP and UDP on loopback, so one
// number serves a node's TCP and QUIC listeners.
func freePort() (int, error) {
	for range 50 {
		l, err := net.Listen("tcp", "127.0.0.1:0")
		if err != nil {
			return 0, fmt.Errorf("find a free port: %w", err)
		}
		port := l.Addr().(*net.TCPAddr).Port
		u, err := net.ListenPacket("udp", net.JoinHostPort("127.0.0.1", strconv.Itoa(port)))
		l.Close()
		if err == nil {
			u.Close()
			return port, nil
		}
	}
	return 0, errors.New("find a free port: none free for both TCP and UDP after 50 tries")
}

func (n *devnetNode) start(self string) error {
	logFile, err := os.OpenFile(filepath.Join(n.dataDir, "node.log"), os.O_CREATE|os.O_WRONLY|os.O_APPEND, 0o600)
	if err != nil {
		return fmt.Errorf("open log of node-%d: %w", n.index, err)
	}
	n.cmd = exec.Command(self, "run", "--datadir", n.dataDir)
	n.cmd.Stdout, n.cmd.Stderr = logFile, logFile
	// Its own process group: a Ctrl-C in the terminal reaches the devnet,
	// which stops the nodes in order, not all of them at once.
	n.cmd.SysProcAttr = &syscall.SysProcAttr{Setpgid: true}
	if err := n.cmd.Start(); err != nil {
		logFile.Close()
		return fmt.Errorf("start node-%d: %w", n.index, err)
	}
	// So that one node can be stopped by hand: kill $(cat DIR/node-5/node.pid)
	pidFile := filepath.Join(n.dataDir, "node.pid")
	if err := os.WriteFile(pidFile, []byte(strconv.Itoa(n.cmd.Process.Pid)+"\n"), 0o600); err != nil {
		return fmt.Errorf("write %s: %w", pidFile, err)
	}
	go func() {
		n.exited <- n.cmd.Wait()
		logFile.Close()
		os.Remove(pidFile)
	}()
	return nil
}

// waitConnected polls every node's API until each has a peer, a
// non-empty routing table and a verified beacon round.
func waitConnected(ctx context.Context, nodes []*devnetNode, timeout time.Duration) error {
	ctx, cancel := context.WithTimeout(ctx, timeout)
	defer cancel()
	for _, n := range nodes {
		client := api.NewClient(n.apiAddr, "")
		for {
			st, err := client.Status(ctx)
			if err == nil && st.ConnectedPeers > 0 && st.DHTRoutingTableSize > 0 && st.LatestRound > 0 {
				break
			}
			select {
			case err := <-n.exited:
				n.exited <- err
				return fmt.Errorf("node-%d (%s) exited during start-up (%v); see %s", n.index, n.role, err, filepath.Join(n.dataDir, "node.log"))
			case <-ctx.Done():
				if errors.Is(ctx.Err(), context.DeadlineExceeded) {
					return fmt.Errorf("node-%d did not connect within %s; see %s", n.index, timeout, filepath.Join(n.dataDir, "node.log"))
				}
				return ctx.Err()
			case <-time.After(200 * time.Millisecond):
			}
		}
	}
	return nil
}

func printDevnet(w io.Writer, nodes []*devnetNode) {
	tw := tabwriter.NewWriter(w, 0, 0, 2, ' ', 0)
	fmt.Fprintln(tw, "NODE\tROLE\tPEER ID\tAPI\tDATADIR")
	for _, n := range nodes {
		role := string(n.role)
		if n.index == 0 {
			role += " + beacon"
		}
		fmt.Fprintf(tw, "node-%d\t%s\t%s\t%s\t%s\n", n.index, role, n.peerID, n.apiAddr, n.dataDir)
	}
	tw.Flush()
}

// stopDevnet stops the edges first and the bootstrap node last, each with
// SIGTERM, and kills what has not exited after the node's grace period. It
// fails when any node did not exit cleanly.
func stopDevnet(nodes []*devnetNode, out io.Writer) error {
	for i := len(nodes) - 1; i >= 0; i-- {
		if n := nodes[i]; n.started() {
			_ = n.cmd.Process.Signal(syscall.SIGTERM)
		}
	}
	deadline := time.Now().Add(shutdownGrace + 2*time.Second)
	unclean := 0
	for _, n := range nodes {
		if !n.started() {
			continue
		}
		select {
		case err := <-n.exited:
			if err != nil {
				unclean++
				fmt.Fprintf(out, "node-%d stopped with %v; see %s\n", n.index, err, filepath.Join(n.dataDir, "node.log"))
			}
		case <-time.After(time.Until(deadline)):
			unclean++
			_ = n.cmd.Process.Kill()
			fmt.Fprintf(out, "node-%d did not stop in time and was killed\n", n.index)
		}
	}
	if unclean > 0 {
		return fmt.Errorf("%d nodes did not stop cleanly", unclean)
	}
	fmt.Fprintln(out, "devnet stopped; every node exited cleanly")
	return nil
}

func (n *devnetNode) started() bool {
	return n != nil && n.cmd != nil && n.cmd.Process != nil && !n.gone
}

// addRandomPiece stores a piece of size random bytes in a new edge's piece
// store, before the edge runs.
func addRandomPiece(dataDir string, size int64) error {
	return openPieces(dataDir, func(_ *store.DB, ps *pieces.Store) error {
		_, err := ps.Add(context.Background(), io.LimitReader(rand.Reader, size), size, "devnet-random", nil)
		return err
	})
}

// parseSize reads a byte count: a number with an optional KiB, MiB or GiB
// suffix.
func parseSize(s string) (int64, error) {
	units := []struct {
		suffix string
		factor int64
	}{{"GiB", 1 << 30}, {"MiB", 1 << 20}, {"KiB", 1 << 10}, {"B", 1}, {"", 1}}
	for _, u := range units {
		num, ok := strings.CutSuffix(s, u.suffix)
		if !ok {
			continue
		}
		n, err := strconv.ParseInt(strings.TrimSpace(num), 10, 64)
		if err != nil || n < 0 || n > math.MaxInt64/u.factor {
			return 0, errors.New("want a size like 4MiB, 512KiB or 1000000")
		}
		return n * u.factor, nil
	}
	return 0, errors.New("want a size like 4MiB, 512KiB or 1000000")
}
