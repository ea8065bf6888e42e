package main

import (
	"encoding/json"
	"fmt"
	"os"
	"path/filepath"
	"strconv"
	"strings"
	"syscall"
	"testing"
	"time"

	"github.com/aropeer/aropeer/node/api"
	"github.com/aropeer/aropeer/node/config"
	"github.com/aropeer/aropeer/proofs"
)

// TestDevnetChallenges runs the devnet: liveness receipts with
// outcome pass reach the keepers, and an edge whose process is killed gets
// timeout receipts and then a fail once containment runs out. It takes a
// minute or two: challenges start with the first epoch (30 one-second
// rounds) whose beacon the devnet saw begin.
func TestDevnetChallenges(t *testing.T) {
	if testing.Short() {
		t.Skip("runs a devnet for a minute or two; skipped in -short mode")
	}
	dir := startDevnet(t, []int{1, 5}, "--nodes", "6")

	keeper := filepath.Join(dir, "node-1")
	receipts := func(args ...string) []proofs.ReceiptJSON {
		code, stdout, stderr := aropeer(t, nil, append([]string{"receipts", "list", "--json", "--datadir", keeper}, args...)...)
		if code != 0 {
			t.Fatalf("receipts list: exit %d: %s", code, stderr)
		}
		var list []proofs.ReceiptJSON
		if err := json.Unmarshal([]byte(stdout), &list); err != nil {
			t.Fatalf("receipts list --json: %v\n%s", err, stdout)
		}
		return list
	}
	// Pass receipts of liveness challenges reach the keeper.
	idOf := func(i int) string {
		_, stdout, _ := aropeer(t, nil, "id", "--datadir", filepath.Join(dir, fmt.Sprintf("node-%d", i)))
		return strings.TrimSpace(stdout)
	}
	victim := idOf(5)
	var issuer string
	waitFor(t, "a liveness pass of the victim edge on the keeper", 2*time.Minute, func() bool {
		for _, r := range receipts("--edge", victim) {
			if r.Outcome == "pass" && r.Kind == "liveness" {
				issuer = r.Keeper
				return true
			}
		}
		return false
	})
	// The keeper that issued it lists it among its challenges (the
	// receipt may have reached node-1 from node-2 by gossip).
	issuerDir := keeper
	if issuer == idOf(2) {
		issuerDir = filepath.Join(dir, "node-2")
	}
	if code, stdout, _ := aropeer(t, nil, "challenges", "--json", "--datadir", issuerDir); code != 0 || !strings.Contains(stdout, victim) {
		t.Errorf("challenges on the issuing keeper: exit %d, %s", code, stdout)
	}
	cfg, err := config.Read(config.Datadir(issuerDir).ConfigPath())
	if err != nil {
		t.Fatal(err)
	}
	metrics, err := api.NewClient(cfg.API.Addr, "").Metrics(t.Context())
	if err != nil || !strings.Contains(metrics, `aro_receipts_signed_total{result="pass"}`) {
		t.Errorf("the issuing keeper's metrics lack its pass receipts: %v", err)
	}

	// Kill the edge: its challenges time out, then fail.
	pid, err := os.ReadFile(filepath.Join(dir, "node-5", "node.pid"))
	if err != nil {
		t.Fatal(err)
	}
	p, err := strconv.Atoi(strings.TrimSpace(string(pid)))
	if err != nil {
		t.Fatal(err)
	}
	if err := syscall.Kill(p, syscall.SIGKILL); err != nil {
		t.Fatal(err)
	}
	killed := time.Now()
	var seen []string
	t.Cleanup(func() {
		if t.Failed() {
			t.Logf("receipts of the killed edge:\n%s", strings.Join(seen, "\n"))
		}
	})
	waitFor(t, "timeouts and then a fail for the killed edge", 2*time.Minute, func() bool {
		timeout, fail := false, false
		seen = seen[:0]
		for _, r := range receipts("--edge", victim) {
			seen = append(seen, fmt.Sprintf("round %d attempt %d %s %s", r.Round, r.Attempt, r.Outcome, r.Reason))
			timeout = timeout || r.Outcome == "timeout"
			fail = fail || (r.Outcome == "fail" && strings.Contains(r.Reason, "no answer after"))
		}
		return timeout && fail
	})
	t.Logf("killed edge failed %s after the kill", time.Since(killed).Round(time.Second))

	// One receipt shown in full.
	list := receipts("--edge", victim)
	code, stdout, stderr := aropeer(t, nil, "receipts", "show", "--datadir", keeper, list[0].CID)
	if code != 0 || !strings.Contains(stdout, list[0].CID) || !strings.Contains(stdout, `"outcome"`) {
		t.Errorf("receipts show: exit %d: %s %s", code, stdout, stderr)
	}
}
