package main

import (
	"bytes"
	"fmt"
	"os"
	"path/filepath"
	"strconv"
	"strings"
	"testing"
	"time"

	"github.com/aropeer/aropeer/node"
	"github.com/aropeer/aropeer/proofs"
)

// TestDevnetResources runs the storage and bandwidth devnet: every edge
// gets a random piece; storage receipts with pass reach the keepers;
// after a few KiB in the middle of one edge's piece file are overwritten,
// its storage receipts fail naming the leaf, the edge declares the piece
// faulty, and its report shows the failures. Pieces are small (64 KiB)
// so that 8 KiB of damage is found within a few challenges. Bandwidth
// receipts carry measured rates; the last edge claims 1 Tbit/s and fails
// with both figures in the reason. Compute receipts of the edges' CPUs
// pass with the matrix size, the edge's time and the rows checked.
func TestDevnetResources(t *testing.T) {
	if testing.Short() {
		t.Skip("runs a devnet for a minute or two; skipped in -short mode")
	}
	// Probes at five times the devnet's rate: one in about 10 rounds.
	t.Setenv("ARO_DEVNET_PROBABILITY", "bandwidth=0.1")
	dir := startDevnet(t, []int{1, 4}, "--nodes", "5", "--keepers", "2", "--piece-size", "64KiB", "--overclaim")
	nodeDir := func(i int) string { return filepath.Join(dir, fmt.Sprintf("node-%d", i)) }
	_, stdout, _ := aropeer(t, nil, "id", "--datadir", nodeDir(4))
	victim := strings.TrimSpace(stdout)

	var held []node.PieceJSON
	if !jsonOf(t, &held, "store", "list", "--json", "--datadir", nodeDir(4)) || len(held) != 1 || held[0].Padded != 128<<10 {
		t.Fatalf("the edge's pieces: %+v", held)
	}
	storage := func(keeper int) []proofs.ReceiptJSON {
		var list []proofs.ReceiptJSON
		jsonOf(t, &list, "receipts", "list", "--json", "--kind", "storage", "--edge", victim, "--datadir", nodeDir(keeper))
		return list
	}
	waitFor(t, "a storage pass of the edge on a keeper", 3*time.Minute, func() bool {
		for _, k := range []int{1, 2} {
			for _, r := range storage(k) {
				if r.Outcome == "pass" && r.Measurements["leaves"] == 16 {
					return true
				}
			}
		}
		return false
	})

	// Overwrite 8 KiB in the middle of the piece's data file.
	files, err := filepath.Glob(filepath.Join(nodeDir(4), "pieces", "*"))
	if err != nil {
		t.Fatal(err)
	}
	var data string
	for _, f := range files {
		if fi, err := os.Stat(f); err == nil && fi.Size() == 64<<10 {
			data = f
		}
	}
	if data == "" {
		t.Fatalf("no 64 KiB data file among %v", files)
	}
	f, err := os.OpenFile(data, os.O_WRONLY, 0)
	if err != nil {
		t.Fatal(err)
	}
	if _, err := f.WriteAt(make([]byte, 8<<10), 28<<10); err != nil {
		t.Fatal(err)
	}
	f.Close()
	damaged := time.Now()

	var failed proofs.ReceiptJSON
	waitFor(t, "a storage fail naming a leaf", 3*time.Minute, func() bool {
		for _, k := range []int{1, 2} {
			for _, r := range storage(k) {
				if r.Outcome == "fail" && strings.Contains(r.Reason, "leaf ") {
					failed = r
					return true
				}
			}
		}
		return false
	})
	t.Logf("caught %s after the damage: %s", time.Since(damaged).Round(time.Second), failed.Reason)

	// The edge declared the piece faulty, and its report shows the fail.
	waitFor(t, "the damaged piece declared faulty", 30*time.Second, func() bool {
		return jsonOf(t, &held, "store", "list", "--json", "--datadir", nodeDir(4)) && len(held) == 1 && held[0].Faulty
	})
	var rep node.ReportJSON
	waitFor(t, "the fail in the edge's report", time.Minute, func() bool {
		if !jsonOf(t, &rep, "report", "--json", "--epoch", strconv.FormatUint(failed.Epoch, 10), "--datadir", nodeDir(4)) {
			return false
		}
		for _, r := range rep.Failures {
			if r.CID == failed.CID || (r.Kind == proofs.KindStorage && strings.Contains(r.Reason, "leaf ")) {
				return true
			}
		}
		return false
	})
	// The other edge's piece is whole; a second one added through its
	// API is offered too.
	if code, stdout, stderr := aropeer(t, nil, "store", "verify", "--datadir", nodeDir(3)); code != 0 || !strings.HasPrefix(stdout, "ok ") {
		t.Errorf("store verify on the healthy edge: exit %d: %s %s", code, stdout, stderr)
	}
	extra := filepath.Join(t.TempDir(), "extra.bin")
	if err := os.WriteFile(extra, bytes.Repeat([]byte("aropeer "), 40_000), 0o600); err != nil {
		t.Fatal(err)
	}
	code, stdout, stderr := aropeer(t, nil, "store", "add", extra, "--datadir", nodeDir(3))
	if code != 0 || !strings.HasPrefix(stdout, "baga6ea4sea") {
		t.Fatalf("store add through the API: exit %d: %s %s", code, stdout, stderr)
	}
	if !jsonOf(t, &held, "store", "list", "--json", "--datadir", nodeDir(3)) || len(held) != 2 {
		t.Errorf("after adding a second piece: %+v", held)
	}

	// Bandwidth: the honest edge (node-3, claiming 20 Mbit/s) passes with
	// its measured rates; the overclaiming one (node-4) fails.
	_, stdout, _ = aropeer(t, nil, "id", "--datadir", nodeDir(3))
	honest := strings.TrimSpace(stdout)
	probes := func(edge string) []proofs.ReceiptJSON {
		var out []proofs.ReceiptJSON
		for _, k := range []int{1, 2} {
			var list []proofs.ReceiptJSON
			jsonOf(t, &list, "receipts", "list", "--json", "--kind", "bandwidth", "--edge", edge, "--datadir", nodeDir(k))
			out = append(out, list...)
		}
		return out
	}
	waitFor(t, "a bandwidth pass of the honest edge with its rates", 3*time.Minute, func() bool {
		for _, r := range probes(honest) {
			if r.Outcome == "pass" && r.Measurements["up_mbit"] >= 20 && r.Measurements["down_mbit"] >= 20 && r.Measurements["bytes"] > 0 {
				return true
			}
		}
		return false
	})
	waitFor(t, "a bandwidth fail of the overclaiming edge naming both figures", 3*time.Minute, func() bool {
		for _, r := range probes(victim) {
			if r.Outcome == "fail" && strings.Contains(r.Reason, "measured") && strings.Contains(r.Reason, "claimed 1000000") {
				t.Log(r.Reason)
				return true
			}
		}
		return false
	})
	waitFor(t, "a compute pass of an edge's CPU with its figures", 2*time.Minute, func() bool {
		for _, k := range []int{1, 2} {
			var list []proofs.ReceiptJSON
			jsonOf(t, &list, "receipts", "list", "--json", "--kind", "compute", "--datadir", nodeDir(k))
			for _, r := range list {
				if r.Outcome == "pass" && r.Measurements["n"] >= 64 && r.Measurements["rows"] == 8 && r.Measurements["compute_us"] > 0 {
					t.Logf("compute pass: %v", r.Measurements)
					return true
				}
				if r.Outcome == "fail" {
					t.Errorf("an honest CPU failed its compute check: %s", r.Reason)
				}
			}
		}
		return false
	})
}
