package main

import (
	"crypto/rand"
	"os"
	"path/filepath"
	"strings"
	"testing"

	"github.com/aropeer/aropeer/node"
)

// TestStoreCommands runs `aropeer store` on an edge whose node is not
// running, as an operator preparing it would: add prints the piece CID
// and padded size; list shows the piece; verify passes, then, after the
// data file is damaged, reports the piece and declares it faulty (exit
// 1); remove takes it away. Bad input gets a one-line error.
func TestStoreCommands(t *testing.T) {
	dir := t.TempDir()
	dataDir := filepath.Join(dir, "edge")
	if code, _, stderr := aropeer(t, nil, "init", "--role", "edge", "--offer", "storage", "--datadir", dataDir, "--api-addr", "127.0.0.1:0", "--listen", "/ip4/127.0.0.1/tcp/0"); code != 0 {
		t.Fatalf("init: exit %d: %s", code, stderr)
	}
	file := filepath.Join(dir, "data.bin")
	data := make([]byte, 300_000)
	rand.Read(data)
	if err := os.WriteFile(file, data, 0o600); err != nil {
		t.Fatal(err)
	}

	code, stdout, stderr := aropeer(t, nil, "store", "add", file, "--datadir", dataDir)
	if code != 0 || !strings.HasPrefix(stdout, "baga6ea4sea") || !strings.Contains(stdout, "padded size 524288") {
		t.Fatalf("store add: exit %d: %q %s", code, stdout, stderr)
	}
	if !strings.Contains(stderr, "100%") {
		t.Errorf("store add showed no progress: %q", stderr)
	}
	id := strings.Fields(stdout)[0]

	var list []node.PieceJSON
	if !jsonOf(t, &list, "store", "list", "--json", "--datadir", dataDir) || len(list) != 1 || list[0].CID != id || list[0].Payload != 300_000 || list[0].Faulty {
		t.Fatalf("store list: %+v", list)
	}
	if code, stdout, stderr := aropeer(t, nil, "store", "verify", "--datadir", dataDir); code != 0 || !strings.Contains(stdout, "ok "+id) {
		t.Fatalf("store verify of a whole piece: exit %d: %s %s", code, stdout, stderr)
	}

	stored, err := filepath.Glob(filepath.Join(dataDir, "pieces", id+"*.data"))
	if err != nil || len(stored) != 1 {
		t.Fatalf("the piece's data file: %v %v", stored, err)
	}
	f, err := os.OpenFile(stored[0], os.O_WRONLY, 0)
	if err != nil {
		t.Fatal(err)
	}
	f.WriteAt(make([]byte, 4096), 150_000)
	f.Close()
	code, stdout, stderr = aropeer(t, nil, "store", "verify", id, "--datadir", dataDir)
	if code != 1 || !strings.Contains(stdout, "DAMAGED "+id) || !strings.Contains(stderr, "1 of 1 pieces no longer match") {
		t.Fatalf("store verify of a damaged piece: exit %d: %s %s", code, stdout, stderr)
	}
	if !jsonOf(t, &list, "store", "list", "--json", "--datadir", dataDir) || len(list) != 1 || !list[0].Faulty || list[0].FaultRound == 0 {
		t.Fatalf("the damaged piece is not declared faulty: %+v", list)
	}

	if code, stdout, stderr := aropeer(t, nil, "store", "remove", id, "--datadir", dataDir); code != 0 || !strings.Contains(stdout, "removed "+id) {
		t.Fatalf("store remove: exit %d: %s %s", code, stdout, stderr)
	}
	if !jsonOf(t, &list, "store", "list", "--json", "--datadir", dataDir) || len(list) != 0 {
		t.Fatalf("after remove: %+v", list)
	}
	if _, err := os.Stat(stored[0]); !os.IsNotExist(err) {
		t.Errorf("the removed piece's data file is still there: %v", err)
	}

	for name, args := range map[string][]string{
		"missing file":   {"store", "add", filepath.Join(dir, "nope")},
		"tiny file":      {"store", "add", tiny(t, dir)},
		"bad CID":        {"store", "remove", "not-a-cid"},
		"unknown piece":  {"store", "remove", id},
		"verify bad CID": {"store", "verify", "nope"},
	} {
		code, _, stderr := aropeer(t, nil, append(args, "--datadir", dataDir)...)
		if code == 0 || strings.Count(strings.TrimSpace(stderr), "\n") != 0 || stderr == "" {
			t.Errorf("%s: exit %d, stderr %q: want a one-line error", name, code, stderr)
		}
	}
}

// tiny is a file under the 65 bytes Filecoin accepts.
func tiny(t *testing.T, dir string) string {
	p := filepath.Join(dir, "tiny")
	if err := os.WriteFile(p, []byte("too small"), 0o600); err != nil {
		t.Fatal(err)
	}
	return p
}
