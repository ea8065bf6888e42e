package main

import (
	"bytes"
	"context"
	"encoding/json"
	"fmt"
	"math"
	"os"
	"os/exec"
	"path/filepath"
	"strings"
	"syscall"
	"testing"
	"time"

	"github.com/aropeer/aropeer/node/config"
	"github.com/aropeer/aropeer/proofs"
)

// netnsPair is two network namespaces joined by a veth pair whose both
// ends are shaped to one rate: a keeper's side (k, 10.213.0.1) and an
// edge's (e, 10.213.0.2). Its addresses exist only inside the
// namespaces, which are removed when the test ends, also on failure.
type netnsPair struct {
	k, e string
}

const (
	netnsKeeperIP = "10.213.0.1"
	netnsEdgeIP   = "10.213.0.2"
)

// newNetnsPair creates the namespaces with both ends of the link shaped
// by a token bucket (tc tbf) to mbit Mbit/s. Where the machine cannot,
// the test fails saying why: it must not pass without having run.
func newNetnsPair(t *testing.T, mbit int) *netnsPair {
	t.Helper()
	if os.Geteuid() != 0 {
		t.Fatal("creating network namespaces needs root (CI runs as root); run the tests as root, or with -short to leave this test out")
	}
	for _, tool := range []string{"ip", "tc"} {
		if _, err := exec.LookPath(tool); err != nil {
			t.Fatalf("%s not found: install iproute2 (apt-get install iproute2), which .ci/run does", tool)
		}
	}
	tag := fmt.Sprintf("aro%d", os.Getpid()%1_000_000)
	ns := &netnsPair{k: tag + "-k", e: tag + "-e"}
	t.Cleanup(func() {
		// Removing a namespace removes its end of the veth pair and so
		// the pair; nothing is left in the root namespace.
		for _, n := range []string{ns.k, ns.e} {
			_ = exec.Command("ip", "netns", "delete", n).Run()
		}
	})
	rate := fmt.Sprintf("%dmbit", mbit)
	steps := [][]string{
		{"ip", "netns", "add", ns.k},
		{"ip", "netns", "add", ns.e},
		// Created inside the keeper's namespace, with its peer moved
		// straight to the edge's: the pair never appears in the root one.
		{"ip", "-n", ns.k, "link", "add", "vk", "type", "veth", "peer", "name", "ve", "netns", ns.e},
		{"ip", "-n", ns.k, "addr", "add", netnsKeeperIP + "/30", "dev", "vk"},
		{"ip", "-n", ns.e, "addr", "add", netnsEdgeIP + "/30", "dev", "ve"},
		{"ip", "-n", ns.k, "link", "set", "lo", "up"},
		{"ip", "-n", ns.e, "link", "set", "lo", "up"},
		{"ip", "-n", ns.k, "link", "set", "vk", "up"},
		{"ip", "-n", ns.e, "link", "set", "ve", "up"},
		// Each end shapes what it sends: the edge's uplink and downlink.
		{"ip", "netns", "exec", ns.k, "tc", "qdisc", "add", "dev", "vk", "root", "tbf", "rate", rate, "burst", "32kb", "latency", "50ms"},
		{"ip", "netns", "exec", ns.e, "tc", "qdisc", "add", "dev", "ve", "root", "tbf", "rate", rate, "burst", "32kb", "latency", "50ms"},
	}
	for _, s := range steps {
		if out, err := exec.Command(s[0], s[1:]...).CombinedOutput(); err != nil {
			t.Fatalf("the kernel refused to set up the shaped link: %s: %v: %s", strings.Join(s, " "), err, bytes.TrimSpace(out))
		}
	}
	return ns
}

// start runs `aropeer run` for dataDir inside namespace n, with env added
// to the environment, until the test ends.
func (ns *netnsPair) start(t *testing.T, n, dataDir string, env ...string) {
	t.Helper()
	log, err := os.Create(filepath.Join(dataDir, "node.log"))
	if err != nil {
		t.Fatal(err)
	}
	// ip netns exec execs aropeer in place: the process is the node.
	cmd := exec.Command("ip", "netns", "exec", n, binary, "run", "--datadir", dataDir)
	cmd.Env = append(os.Environ(), env...)
	cmd.Stdout, cmd.Stderr = log, log
	if err := cmd.Start(); err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() {
		_ = cmd.Process.Signal(syscall.SIGTERM)
		done := make(chan struct{})
		go func() { _ = cmd.Wait(); close(done) }()
		select {
		case <-done:
		case <-time.After(10 * time.Second):
			_ = cmd.Process.Kill()
			<-done
		}
		log.Close()
		if t.Failed() {
			if b, err := os.ReadFile(log.Name()); err == nil {
				t.Logf("%s log (last 3000 bytes):\n%s", filepath.Base(dataDir), b[max(0, len(b)-3000):])
			}
		}
	})
}

// jsonIn runs aropeer inside namespace n and decodes its JSON output.
func (ns *netnsPair) jsonIn(t *testing.T, n string, v any, args ...string) bool {
	t.Helper()
	ctx, cancel := context.WithTimeout(context.Background(), time.Minute)
	defer cancel()
	out, err := exec.CommandContext(ctx, "ip", append([]string{"netns", "exec", n, binary}, args...)...).Output()
	if err != nil {
		return false
	}
	if err := json.Unmarshal(out, v); err != nil {
		t.Fatalf("aropeer %v: not JSON: %v\n%s", args, err, out)
	}
	return true
}

// TestBandwidthOverShapedLink runs a keeper and an edge claiming 50 Mbit/s
// each way as real aropeer processes in two network namespaces joined by
// a link shaped to 50 Mbit/s, and checks that the keeper's bandwidth
// receipts show 50 Mbit/s each way within 10%: the real kernel's TCP or
// QUIC, not a simulation, with the probe's own overheads.
func TestBandwidthOverShapedLink(t *testing.T) {
	if testing.Short() {
		t.Skip("-short: the shaped-link test creates network namespaces and runs real nodes for about a minute")
	}
	const mbit = 50
	ns := newNetnsPair(t, mbit)
	dir := t.TempDir()
	type spec struct {
		name, role, ns, ip string
		port               int
	}
	specs := []spec{
		{"bootstrap", "bootstrap", ns.k, netnsKeeperIP, 4101},
		{"keeper", "keeper", ns.k, netnsKeeperIP, 4102},
		{"edge", "edge", ns.e, netnsEdgeIP, 4103},
	}
	nodes := make([]*devnetNode, len(specs))
	var bootstrap string
	for i, s := range specs {
		o := initOptions{
			dataDir: filepath.Join(dir, s.name),
			role:    s.role,
			network: "devnet",
			listen: []string{
				fmt.Sprintf("/ip4/%s/tcp/%d", s.ip, s.port),
				fmt.Sprintf("/ip4/%s/udp/%d/quic-v1", s.ip, s.port),
			},
			// Each namespace has its own loopback.
			apiAddr: fmt.Sprintf("127.0.0.1:%d", s.port+1000),
			local:   s.role == "bootstrap",
		}
		if bootstrap != "" {
			o.bootstrap = []string{bootstrap}
		}
		if s.role == "edge" {
			o.offers, o.upMbit, o.downMbit = []string{"bandwidth"}, mbit, mbit
		}
		id, err := initDataDir(o)
		if err != nil {
			t.Fatal(err)
		}
		if s.role == "bootstrap" {
			bootstrap = o.listen[0] + "/p2p/" + id
		}
		nodes[i] = &devnetNode{index: i, role: config.Role(s.role), dataDir: o.dataDir, peerID: id}
	}
	if err := writeGenesis(nodes); err != nil {
		t.Fatal(err)
	}
	// A probe in about one round of four, each in its own slot of seven:
	// the first comes within half a minute of the nodes meeting.
	env := "ARO_DEVNET_PROBABILITY=bandwidth=0.25"
	// The bootstrap node first: it runs the beacon, and an edge that
	// cannot reach it misses rounds; one that misses an epoch's first
	// round cannot check that epoch's challenges, and refuses them.
	// Lists must go through the running keeper's API: one run before it
	// has started would open its store first.
	for i, s := range specs {
		ns.start(t, s.ns, nodes[i].dataDir, env)
		waitFor(t, s.name+" started", time.Minute, func() bool {
			var st map[string]any
			return ns.jsonIn(t, s.ns, &st, "status", "--json", "--datadir", nodes[i].dataDir)
		})
	}
	keeper, edge := nodes[1], nodes[2]
	var probes []proofs.ReceiptJSON
	waitFor(t, "two bandwidth receipts of the edge on the keeper", 3*time.Minute, func() bool {
		var list []proofs.ReceiptJSON
		ns.jsonIn(t, ns.k, &list, "receipts", "list", "--json", "--kind", "bandwidth", "--edge", edge.peerID, "--datadir", keeper.dataDir)
		probes = list
		return len(list) >= 2
	})
	for _, r := range probes {
		t.Logf("receipt: %s %s %v", r.Outcome, r.Reason, r.Measurements)
		if r.Outcome != "pass" {
			t.Errorf("an honest edge claiming the link's %d Mbit/s: %s: %s", mbit, r.Outcome, r.Reason)
			continue
		}
		for _, key := range []string{"up_kbit", "down_kbit"} {
			got := float64(r.Measurements[key]) / 1000
			if math.Abs(got-mbit) > 0.1*mbit {
				t.Errorf("%s %.2f Mbit/s over a link shaped to %d: more than 10%% off", key, got, mbit)
			}
		}
	}
}
