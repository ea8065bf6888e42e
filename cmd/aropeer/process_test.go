package main

import (
	"bufio"
	"bytes"
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"net"
	"os"
	"os/exec"
	"path/filepath"
	"strconv"
	"strings"
	"syscall"
	"testing"
	"time"

	"github.com/aropeer/aropeer/node/api"
	"github.com/aropeer/aropeer/node/config"
	"github.com/aropeer/aropeer/store"
)

// binary is the aropeer binary built once for the tests that run it.
var binary string

func TestMain(m *testing.M) {
	dir, err := os.MkdirTemp("", "aropeer-bin-")
	if err != nil {
		fmt.Fprintln(os.Stderr, err)
		os.Exit(1)
	}
	binary = filepath.Join(dir, "aropeer")
	build := exec.Command("go", "build", "-o", binary, ".")
	build.Stdout, build.Stderr = os.Stderr, os.Stderr
	if err := build.Run(); err != nil {
		fmt.Fprintln(os.Stderr, "build aropeer:", err)
		os.Exit(1)
	}
	code := m.Run()
	os.RemoveAll(dir)
	os.Exit(code)
}

// aropeer runs the binary and returns its exit code, stdout and stderr.
func aropeer(t *testing.T, env []string, args ...string) (int, string, string) {
	t.Helper()
	ctx, cancel := context.WithTimeout(context.Background(), time.Minute)
	defer cancel()
	cmd := exec.CommandContext(ctx, binary, args...)
	cmd.Env = append(os.Environ(), env...)
	var stdout, stderr bytes.Buffer
	cmd.Stdout, cmd.Stderr = &stdout, &stderr
	err := cmd.Run()
	var exit *exec.ExitError
	switch {
	case err == nil:
		return 0, stdout.String(), stderr.String()
	case errors.As(err, &exit):
		return exit.ExitCode(), stdout.String(), stderr.String()
	default:
		t.Fatalf("aropeer %v: %v", args, err)
		return 0, "", ""
	}
}

func TestDevnetOfRealProcesses(t *testing.T) {
	dir := t.TempDir()
	devnet := exec.Command(binary, "devnet", "--nodes", "4", "--dir", dir)
	out, err := devnet.StdoutPipe()
	if err != nil {
		t.Fatal(err)
	}
	devnet.Stderr = devnet.Stdout
	if err := devnet.Start(); err != nil {
		t.Fatal(err)
	}
	stopped := false
	t.Cleanup(func() {
		if !stopped {
			devnet.Process.Signal(syscall.SIGTERM)
			devnet.Wait()
		}
	})

	// The devnet prints its table once every node has connected.
	lines := make(chan string, 100)
	go func() {
		s := bufio.NewScanner(out)
		for s.Scan() {
			lines <- s.Text()
		}
		close(lines)
	}()
	var printed []string
	timeout := time.After(90 * time.Second)
	for running := false; !running; {
		select {
		case l, ok := <-lines:
			if !ok {
				t.Fatalf("devnet exited before running:\n%s", strings.Join(printed, "\n"))
			}
			printed = append(printed, l)
			running = strings.Contains(l, "devnet running")
		case <-timeout:
			t.Fatalf("devnet not running within 90s:\n%s", strings.Join(printed, "\n"))
		}
	}

	// Within 30 seconds each node has a peer and a routing table.
	deadline := time.Now().Add(30 * time.Second)
	for i := range 4 {
		dataDir := filepath.Join(dir, fmt.Sprintf("node-%d", i))
		for {
			code, stdout, stderr := aropeer(t, nil, "status", "--json", "--datadir", dataDir)
			var st api.Status
			if code == 0 {
				if err := json.Unmarshal([]byte(stdout), &st); err != nil {
					t.Fatalf("node-%d status is not JSON: %v\n%s", i, err, stdout)
				}
				if st.ConnectedPeers >= 1 && st.DHTRoutingTableSize > 0 && st.LatestRound > 0 {
					break
				}
			}
			if time.Now().After(deadline) {
				t.Fatalf("node-%d not connected within 30s: exit %d, %s %s", i, code, stdout, stderr)
			}
			time.Sleep(200 * time.Millisecond)
		}
	}

	// An edge serves a verified round of the devnet's beacon, which the
	// offline verifier accepts too.
	code, stdout, stderr := aropeer(t, nil, "beacon", "get", "--json", "--datadir", filepath.Join(dir, "node-2"))
	if code != 0 {
		t.Fatalf("beacon get: exit %d: %s", code, stderr)
	}
	var got api.BeaconRound
	if err := json.Unmarshal([]byte(stdout), &got); err != nil || got.Round == 0 || got.Source == "" {
		t.Fatalf("beacon get = %+v, %v\n%s", got, err, stdout)
	}
	_, info, _ := aropeer(t, nil, "beacon", "info", "--json")
	var chain struct {
		Hash string `json:"hash"`
	}
	if err := json.Unmarshal([]byte(info), &chain); err != nil {
		t.Fatal(err)
	}
	if code, _, stderr := aropeer(t, nil, "beacon", "verify", "--chain-hash", chain.Hash, "--round", strconv.FormatUint(got.Round, 10), "--signature", got.Signature); code != 0 {
		t.Errorf("the devnet's round %d does not verify offline: %s", got.Round, stderr)
	}

	// SIGTERM stops every node cleanly: the devnet exits 0 only if each did.
	if err := devnet.Process.Signal(syscall.SIGTERM); err != nil {
		t.Fatal(err)
	}
	for l := range lines {
		printed = append(printed, l)
	}
	err = devnet.Wait()
	stopped = true
	if err != nil {
		t.Fatalf("devnet exited with %v:\n%s", err, strings.Join(printed, "\n"))
	}
	if !strings.Contains(strings.Join(printed, "\n"), "every node exited cleanly") {
		t.Errorf("devnet did not report clean exits:\n%s", strings.Join(printed, "\n"))
	}

	// Each node's store opens again: it was closed, not abandoned.
	for i := range 4 {
		dataDir := config.Datadir(filepath.Join(dir, fmt.Sprintf("node-%d", i)))
		db, err := store.Open(dataDir.StorePath())
		if err != nil {
			t.Fatalf("node-%d store does not open again: %v", i, err)
		}
		db.Close()
		logText, err := os.ReadFile(filepath.Join(string(dataDir), "node.log"))
		if err != nil {
			t.Fatal(err)
		}
		if !strings.Contains(string(logText), "stopped cleanly") {
			t.Errorf("node-%d log does not say it stopped cleanly:\n%s", i, logText)
		}
	}
}

// TestBadInput checks that each mistake a user can make gives one line
// that says what is wrong, and a non-zero exit.
func TestBadInput(t *testing.T) {
	dir := t.TempDir()
	// A port held by another process, for the node to find in use.
	busy, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		t.Fatal(err)
	}
	defer busy.Close()
	busyAddr := fmt.Sprintf("/ip4/127.0.0.1/tcp/%d", busy.Addr().(*net.TCPAddr).Port)

	initNode := func(name string, extra ...string) string {
		dataDir := filepath.Join(dir, name)
		args := append([]string{"init", "--role", "edge", "--datadir", dataDir, "--api-addr", "127.0.0.1:0", "--listen", "/ip4/127.0.0.1/tcp/0"}, extra...)
		if code, _, stderr := aropeer(t, nil, args...); code != 0 {
			t.Fatalf("init %s: exit %d: %s", name, code, stderr)
		}
		return dataDir
	}
	good := initNode("good")
	corrupt := initNode("corrupt")
	if err := os.WriteFile(filepath.Join(corrupt, config.IdentityFile), []byte("not a key"), 0o600); err != nil {
		t.Fatal(err)
	}
	exposed := initNode("exposed")
	if err := os.Chmod(filepath.Join(exposed, config.IdentityFile), 0o644); err != nil {
		t.Fatal(err)
	}
	invalid := initNode("invalid")
	cfgPath := filepath.Join(invalid, config.ConfigFile)
	text, err := os.ReadFile(cfgPath)
	if err != nil {
		t.Fatal(err)
	}
	text = bytes.Replace(text, []byte("level = 'info'"), []byte("level = 'loud'"), 1)
	if err := os.WriteFile(cfgPath, text, 0o644); err != nil {
		t.Fatal(err)
	}
	inUse := initNode("in-use")
	if code, _, stderr := aropeer(t, nil, "init", "--force", "--role", "edge", "--datadir", inUse, "--api-addr", "127.0.0.1:0", "--listen", busyAddr); code != 0 {
		t.Fatalf("init --force: %s", stderr)
	}

	tests := []struct {
		name string
		env  []string
		args []string
		want string
	}{
		{"missing config", nil, []string{"run", "--datadir", filepath.Join(dir, "nothing")}, "does not exist: run `aropeer init`"},
		{"invalid config", nil, []string{"run", "--datadir", invalid}, `log.level = "loud": want one of debug, info, warn, error`},
		{"invalid environment", []string{"ARO_LIMITS_PEER_CONNS=many"}, []string{"run", "--datadir", good}, `limits.peer_conns = "many" (from ARO_LIMITS_PEER_CONNS): want an integer`},
		{"unknown environment key", []string{"ARO_COLOUR=blue"}, []string{"run", "--datadir", good}, "ARO_COLOUR"},
		{"invalid flag value", nil, []string{"run", "--datadir", good, "--log-format", "xml"}, `log.format = "xml"`},
		{"corrupt key", nil, []string{"run", "--datadir", corrupt}, "is corrupt"},
		{"key readable by others", nil, []string{"run", "--datadir", exposed}, "chmod 600"},
		{"port in use", nil, []string{"run", "--datadir", inUse}, "a listen address is already in use"},
		{"unknown role", nil, []string{"init", "--role", "miner", "--datadir", filepath.Join(dir, "miner")}, `--role "miner": want edge, keeper or bootstrap`},
		{"existing datadir", nil, []string{"init", "--role", "edge", "--datadir", good}, "use --force"},
		{"no node running", nil, []string{"status", "--datadir", good}, "no node is running"},
		{"unknown command", nil, []string{"mine"}, `unknown command "mine"`},
	}
	for _, tc := range tests {
		t.Run(tc.name, func(t *testing.T) {
			code, _, stderr := aropeer(t, tc.env, tc.args...)
			if code == 0 {
				t.Fatalf("exit 0; want non-zero")
			}
			lines := strings.Split(strings.TrimRight(stderr, "\n"), "\n")
			if len(lines) != 1 {
				t.Errorf("stderr has %d lines; want one:\n%s", len(lines), stderr)
			}
			if !strings.HasPrefix(lines[0], "aropeer: ") || !strings.Contains(lines[0], tc.want) {
				t.Errorf("stderr = %q; want one line with %q", stderr, tc.want)
			}
		})
	}
}
