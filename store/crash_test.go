package store_test

import (
	"bufio"
	"encoding/binary"
	"errors"
	"fmt"
	"os"
	"os/exec"
	"strconv"
	"syscall"
	"testing"

	"github.com/aropeer/aropeer/store"
)

// helperEnv names the directory the helper process writes to. It is not an
// ARO_* variable, which the node's config would reject as unknown.
const helperEnv = "AROPEER_STORE_HELPER_DIR"

// helperBatches bounds the helper in case its parent dies without killing it.
const helperBatches = 100000

// TestHelperProcess is the child of TestCrashDurability. It commits batches
// and prints each batch's number once Commit has returned, until killed.
func TestHelperProcess(t *testing.T) {
	dir := os.Getenv(helperEnv)
	if dir == "" {
		t.Skip("helper for TestCrashDurability; runs only in its child process")
	}
	db, err := store.Open(dir)
	if err != nil {
		fmt.Fprintln(os.Stderr, err)
		os.Exit(2)
	}
	a, c := db.Namespace("a"), db.Namespace("c")
	for i := range uint64(helperBatches) {
		b := a.Batch()
		b.Set(be(i), []byte("first"))
		b.In(c).Set(be(i), []byte("second"))
		if err := b.Commit(); err != nil {
			fmt.Fprintln(os.Stderr, err)
			os.Exit(2)
		}
		// Unbuffered: the parent sees the acknowledgement immediately.
		fmt.Fprintln(os.Stdout, i)
	}
	os.Exit(0)
}

// TestCrashDurability kills a writer with SIGKILL while it commits and
// checks that every batch it acknowledged is in the store, whole. SIGKILL
// leaves the kernel's page cache intact, so this proves that Commit has
// written the WAL before returning, not that the disk survives a power
// cut; the latter rests on pebble.Sync.
func TestCrashDurability(t *testing.T) {
	if testing.Short() {
		t.Skip("starts a child process; skipped in -short mode")
	}
	dir := t.TempDir()
	cmd := exec.Command(os.Args[0], "-test.run=^TestHelperProcess$")
	cmd.Env = append(os.Environ(), helperEnv+"="+dir)
	cmd.Stderr = os.Stderr
	out, err := cmd.StdoutPipe()
	if err != nil {
		t.Fatal(err)
	}
	if err := cmd.Start(); err != nil {
		t.Fatal(err)
	}

	const killAfter = 200
	acked := -1
	lines := bufio.NewScanner(out)
	for lines.Scan() {
		n, err := strconv.Atoi(lines.Text())
		if err != nil {
			t.Fatalf("helper printed %q", lines.Text())
		}
		acked = n
		if n == 0 {
			// While the child holds the store, another process cannot
			// open it: the cross-process branch of ErrLocked.
			if _, err := store.Open(dir); !errors.Is(err, store.ErrLocked) {
				t.Errorf("Open while the helper runs: err = %v; want ErrLocked", err)
			}
		}
		if n == killAfter {
			if err := cmd.Process.Signal(syscall.SIGKILL); err != nil {
				t.Fatal(err)
			}
		}
		// Keep reading: lines written before the kill landed are
		// acknowledged too.
	}
	err = cmd.Wait()
	var exit *exec.ExitError
	if !errors.As(err, &exit) || exit.Sys().(syscall.WaitStatus).Signal() != syscall.SIGKILL {
		t.Fatalf("helper ended with %v; want killed by SIGKILL", err)
	}
	if acked < killAfter {
		t.Fatalf("helper acknowledged %d batches; want at least %d", acked+1, killAfter+1)
	}

	db := open(t, dir)
	a, c := db.Namespace("a"), db.Namespace("c")
	for i := range uint64(acked + 1) {
		for _, ns := range []store.Namespace{a, c} {
			if has, err := ns.Has(be(i)); err != nil || !has {
				t.Fatalf("acknowledged batch %d: %s key missing (err %v)", i, ns.Name(), err)
			}
		}
	}
	// A batch the child did not get to acknowledge may or may not be
	// there, but never half of it.
	for i := uint64(acked + 1); i < helperBatches; i++ {
		ha, _ := a.Has(be(i))
		hc, _ := c.Has(be(i))
		if ha != hc {
			t.Fatalf("batch %d is torn: a=%v c=%v", i, ha, hc)
		}
		if !ha {
			break
		}
	}
	t.Logf("%d batches acknowledged before SIGKILL, all recovered", acked+1)
}

func be(i uint64) []byte { return binary.BigEndian.AppendUint64(nil, i) }
