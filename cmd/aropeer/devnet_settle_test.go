package main

import (
	"bufio"
	"encoding/json"
	"fmt"
	"os"
	"os/exec"
	"path/filepath"
	"strconv"
	"strings"
	"syscall"
	"testing"
	"time"

	"github.com/aropeer/aropeer/node"
	"github.com/aropeer/aropeer/proofs"
)

// startDevnet runs `aropeer devnet` with args in a temporary directory
// until the test ends, and returns the directory once every node runs.
// If the test fails, the last lines of the named nodes' logs are shown.
func startDevnet(t *testing.T, logsOf []int, args ...string) string {
	t.Helper()
	dir := t.TempDir()
	devnet := exec.Command(binary, append([]string{"devnet", "--dir", dir}, args...)...)
	out, err := devnet.StdoutPipe()
	if err != nil {
		t.Fatal(err)
	}
	if err := devnet.Start(); err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() {
		devnet.Process.Signal(syscall.SIGTERM)
		devnet.Wait()
		if t.Failed() {
			for _, i := range logsOf {
				logText, _ := os.ReadFile(filepath.Join(dir, fmt.Sprintf("node-%d", i), "node.log"))
				lines := strings.Split(string(logText), "\n")
				t.Logf("last lines of node-%d/node.log:\n%s", i, strings.Join(lines[max(0, len(lines)-30):], "\n"))
			}
		}
	})
	running := make(chan struct{})
	go func() {
		s := bufio.NewScanner(out)
		for s.Scan() {
			if strings.Contains(s.Text(), "devnet running") {
				close(running)
			}
		}
	}()
	select {
	case <-running:
	case <-time.After(90 * time.Second):
		t.Fatal("devnet not running within 90s")
	}
	return dir
}

// waitFor polls cond every second until it holds, failing the test after
// timeout.
func waitFor(t *testing.T, what string, timeout time.Duration, cond func() bool) {
	t.Helper()
	deadline := time.Now().Add(timeout)
	for !cond() {
		if time.Now().After(deadline) {
			t.Fatalf("%s: not within %s", what, timeout)
		}
		time.Sleep(time.Second)
	}
}

// jsonOf runs aropeer with args and decodes its JSON output into v; it
// reports whether the command succeeded.
func jsonOf(t *testing.T, v any, args ...string) bool {
	t.Helper()
	code, stdout, _ := aropeer(t, nil, args...)
	if code != 0 {
		return false
	}
	if err := json.Unmarshal([]byte(stdout), v); err != nil {
		t.Fatalf("aropeer %v: not JSON: %v\n%s", args, err, stdout)
	}
	return true
}

func pidOf(t *testing.T, dataDir string) int {
	t.Helper()
	b, err := os.ReadFile(filepath.Join(dataDir, "node.pid"))
	if err != nil {
		t.Fatal(err)
	}
	p, err := strconv.Atoi(strings.TrimSpace(string(b)))
	if err != nil {
		t.Fatal(err)
	}
	return p
}

// TestDevnetSettlement runs the devnet: epoch batches signed by a
// quorum of keepers reach the ledger; honest edges earn, an edge stopped
// halfway earns less; a keeper killed with SIGKILL while receipts stream
// in keeps every receipt it had acknowledged; every node verifies the
// ledger's blocks. It takes two to three minutes of one-second rounds.
func TestDevnetSettlement(t *testing.T) {
	if testing.Short() {
		t.Skip("runs a devnet for two epochs or more; skipped in -short mode")
	}
	// A bootstrap node (the sequencer), three keepers of equal stake (two
	// make a quorum) and three edges.
	dir := startDevnet(t, []int{0, 1, 3}, "--nodes", "7", "--keepers", "3")
	nodeDir := func(i int) string { return filepath.Join(dir, fmt.Sprintf("node-%d", i)) }
	ids := make([]string, 7)
	for i := range ids {
		_, stdout, _ := aropeer(t, nil, "id", "--datadir", nodeDir(i))
		ids[i] = strings.TrimSpace(stdout)
	}

	// The first batch.
	var st node.LedgerStatus
	waitFor(t, "a first epoch batch on the ledger", 3*time.Minute, func() bool {
		return jsonOf(t, &st, "ledger", "status", "--json", "--datadir", nodeDir(1)) && st.LastBatch != nil
	})
	first := *st.LastBatch
	var b node.BatchJSON
	if !jsonOf(t, &b, "ledger", "batch", "latest", "--json", "--datadir", nodeDir(4)) || b.Epoch != first {
		t.Fatalf("ledger batch %d fails on an edge", first)
	}
	if len(b.Signers) < 2 || b.Status != "applied" || len(b.ReceiptsRoot) != 64 {
		t.Fatalf("batch %d: %d signers, status %s, root %q", first, len(b.Signers), b.Status, b.ReceiptsRoot)
	}

	// Kill keeper node-3 with SIGKILL while receipts stream in, just after
	// it acknowledged some through its API; stop edge node-6 for good.
	var acked []proofs.ReceiptJSON
	waitFor(t, "five receipts acknowledged by keeper node-3", 2*time.Minute, func() bool {
		return jsonOf(t, &acked, "receipts", "list", "--json", "--datadir", nodeDir(3)) && len(acked) >= 5
	})
	if err := syscall.Kill(pidOf(t, nodeDir(3)), syscall.SIGKILL); err != nil {
		t.Fatal(err)
	}
	if err := syscall.Kill(pidOf(t, nodeDir(6)), syscall.SIGTERM); err != nil {
		t.Fatal(err)
	}
	stoppedIn := st.Epoch
	// Restarted, the keeper lists every receipt it had acknowledged.
	restarted := exec.Command(binary, "run", "--datadir", nodeDir(3))
	if err := restarted.Start(); err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() {
		restarted.Process.Signal(syscall.SIGTERM)
		restarted.Wait()
	})
	var after []proofs.ReceiptJSON
	waitFor(t, "the killed keeper restarted", 30*time.Second, func() bool {
		var s node.LedgerStatus
		return jsonOf(t, &s, "ledger", "status", "--json", "--datadir", nodeDir(3)) &&
			jsonOf(t, &after, "receipts", "list", "--json", "--datadir", nodeDir(3))
	})
	have := make(map[string]bool, len(after))
	for _, r := range after {
		have[r.CID] = true
	}
	for _, r := range acked {
		if !have[r.CID] {
			t.Errorf("receipt %s, acknowledged before SIGKILL, is gone after the restart", r.CID)
		}
	}
	t.Logf("killed keeper: %d receipts acknowledged, %d listed after the restart", len(acked), len(after))

	// A batch of an epoch after the edge stopped.
	waitFor(t, "a batch of an epoch after the stop", 3*time.Minute, func() bool {
		return jsonOf(t, &st, "ledger", "status", "--json", "--datadir", nodeDir(1)) && st.LastBatch != nil && *st.LastBatch > stoppedIn
	})
	var accounts []node.AccountJSON
	if !jsonOf(t, &accounts, "ledger", "accounts", "--json", "--datadir", nodeDir(5)) {
		t.Fatal("ledger accounts fails on an edge")
	}
	balance := map[string]int64{}
	for _, a := range accounts {
		balance[a.ID] = a.Balance
	}
	for _, i := range []int{4, 5} {
		if balance[ids[i]] <= 0 || balance[ids[i]] <= balance[ids[6]] {
			t.Errorf("honest edge node-%d holds %d, the stopped edge %d", i, balance[ids[i]], balance[ids[6]])
		}
	}
	t.Logf("balances: honest %d and %d, stopped halfway %d", balance[ids[4]], balance[ids[5]], balance[ids[6]])

	// An edge's report shows its claims and its settled result.
	var rep node.ReportJSON
	if !jsonOf(t, &rep, "report", "--json", "--datadir", nodeDir(4)) || !rep.Settled || rep.Result == nil || len(rep.Claims) == 0 {
		t.Errorf("report on an honest edge: %+v", rep)
	}

	// Every running node replays the ledger's blocks to its head.
	for _, i := range []int{0, 1, 2, 3, 4, 5} {
		code, stdout, stderr := aropeer(t, nil, "ledger", "verify", "--datadir", nodeDir(i))
		if code != 0 || !strings.HasPrefix(stdout, "ok: ") {
			t.Errorf("ledger verify on node-%d: exit %d: %s %s", i, code, stdout, stderr)
		}
	}

	// A receipt of the latest batch proves on an edge and verifies
	// against the ledger on a keeper.
	var list []proofs.ReceiptJSON
	if !jsonOf(t, &list, "receipts", "list", "--json", "--epoch", strconv.FormatUint(*st.LastBatch, 10), "--datadir", nodeDir(4)) || len(list) == 0 {
		t.Fatalf("the honest edge holds no receipt of epoch %d, the latest batch's", *st.LastBatch)
	}
	proof := filepath.Join(t.TempDir(), "proof.json")
	if code, _, stderr := aropeer(t, nil, "receipts", "prove", list[0].CID, "-o", proof, "--datadir", nodeDir(4)); code != 0 {
		t.Fatalf("receipts prove: exit %d: %s", code, stderr)
	}
	if code, stdout, stderr := aropeer(t, nil, "receipts", "verify-proof", proof, "--datadir", nodeDir(1)); code != 0 || !strings.HasPrefix(stdout, "ok: ") {
		t.Errorf("receipts verify-proof: exit %d: %s %s", code, stdout, stderr)
	}
}
