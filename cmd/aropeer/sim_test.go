package main

import (
	"bytes"
	"context"
	"errors"
	"io"
	"os"
	"path/filepath"
	"strings"
	"testing"
	"testing/synctest"
	"time"

	"github.com/aropeer/aropeer/sim"
)

// TestSimProgress: off a terminal, the progress shows a line for the
// nodes' start and one per epoch, and says once, when the first late
// round comes, that the machine is falling behind; on one, the bar
// counts the nodes started and the late rounds as well.
func TestSimProgress(t *testing.T) {
	rounds := []sim.Where{
		{Epochs: 2, Rounds: 4, Started: 1, Nodes: 3},
		{Epochs: 2, Rounds: 4, Started: 2, Nodes: 3},
		{Epochs: 2, Rounds: 4, Started: 3, Nodes: 3},
		{Epoch: 0, Epochs: 2, Rounds: 4, Started: 3, Nodes: 3},
		{Epoch: 1, Epochs: 2, Round: 1, Rounds: 4, Started: 3, Nodes: 3},
		{Epoch: 1, Epochs: 2, Round: 2, Rounds: 4, Late: 1, Started: 3, Nodes: 3},
		{Epoch: 1, Epochs: 2, Round: 3, Rounds: 4, Late: 2, Started: 3, Nodes: 3},
		{Epoch: 2, Epochs: 2, Round: 1, Rounds: 4, Late: 2, Started: 3, Nodes: 3},
		{Epoch: 3, Epochs: 2, Round: 1, Rounds: 6, Late: 3, Started: 3, Nodes: 3},
	}
	for _, tty := range []bool{false, true} {
		var out bytes.Buffer
		p := &simProgress{w: &out, tty: tty, period: time.Second, stage: noStage}
		for _, w := range rounds {
			p.update(w)
		}
		got := out.String()
		if n := strings.Count(got, fallingBehind); n != 1 {
			t.Errorf("tty %v: said it fell behind %d times, want once:\n%s", tty, n, got)
		}
		if tty {
			if !strings.Contains(got, "starting nodes: 2 of 3") {
				t.Errorf("the bar does not count the nodes started:\n%q", got)
			}
			if !strings.HasSuffix(got, "settling the last batch: round 1 of at most 6, 3 late"+strings.Repeat(" ", 60-len("settling the last batch: round 1 of at most 6, 3 late"))) {
				t.Errorf("the bar ends %q", got[strings.LastIndex(got, "\r"):])
			}
			continue
		}
		want := strings.Join([]string{
			"starting 3 nodes",
			"starting: waiting for the first whole epoch",
			"epoch 1 of 2, round 1 of 4",
			fallingBehind,
			"epoch 2 of 2, round 1 of 4, 2 late",
			"settling the last batch: round 1 of at most 6, 3 late",
		}, "\n") + "\n"
		if got != want {
			t.Errorf("got\n%s\nwant\n%s", got, want)
		}
	}
}

// TestSimProgressStalled: a run that tells nothing for stalledRounds
// rounds, as one stalls that is far too large for the machine before
// its first round, is said to be falling behind, once; one that moves
// is not.
func TestSimProgressStalled(t *testing.T) {
	synctest.Test(t, func(t *testing.T) {
		var out bytes.Buffer
		p := newSimProgress(time.Second)
		p.w, p.tty = &out, false
		ctx, cancel := context.WithCancel(context.Background())
		defer cancel()
		go p.watch(ctx)
		for i := range 20 {
			p.update(sim.Where{Epochs: 1, Rounds: 12, Started: i + 1, Nodes: 30})
			time.Sleep(time.Second)
		}
		synctest.Wait()
		if strings.Contains(out.String(), fallingBehind) {
			t.Fatalf("a run that moves every round was said to fall behind:\n%s", out.String())
		}
		time.Sleep(3 * stalledRounds * time.Second)
		synctest.Wait()
		got := out.String()
		if n := strings.Count(got, fallingBehind); n != 1 {
			t.Fatalf("said it fell behind %d times, want once:\n%s", n, got)
		}
		if !strings.Contains(got, "the run has not moved for 10s") {
			t.Errorf("does not say how long the run stalled:\n%s", got)
		}
	})
}

// TestSimInterrupted: a run stopped midway, as by Ctrl-C, still writes
// its report, which says when it was stopped, and fails with the
// interrupt.
func TestSimInterrupted(t *testing.T) {
	dir := t.TempDir()
	scenario := filepath.Join(dir, "small.toml")
	const small = `seed = 7
edges = 6
keepers = 3
epochs = 3
epoch_rounds = 12
piece_kib = 64
compute_mtops = 1
bandwidth_mbit = 10
[link]
mbit = 50
latency_ms = 5
[offers]
storage = 0.5
[probability]
liveness = 0.1
storage = 0.1
`
	if err := os.WriteFile(scenario, []byte(small), 0o644); err != nil {
		t.Fatal(err)
	}
	out := filepath.Join(dir, "report")
	// An interrupt before the scenario's first round leaves an earlier
	// run's report as it was.
	earlier := []byte("an earlier run's report")
	if err := os.MkdirAll(out, 0o755); err != nil {
		t.Fatal(err)
	}
	if err := os.WriteFile(filepath.Join(out, "report.md"), earlier, 0o644); err != nil {
		t.Fatal(err)
	}
	synctest.Test(t, func(t *testing.T) {
		ctx, cancel := context.WithCancel(context.Background())
		time.AfterFunc(3*time.Second, cancel)
		if err := runSim(ctx, simOptions{scenario: scenario, out: out}, io.Discard); !errors.Is(err, context.Canceled) {
			t.Fatalf("run interrupted as it starts: error %v, want the interrupt", err)
		}
	})
	if md, err := os.ReadFile(filepath.Join(out, "report.md")); err != nil || !bytes.Equal(md, earlier) {
		t.Fatalf("a run interrupted as it starts replaced the earlier report with %q (%v)", md, err)
	}
	synctest.Test(t, func(t *testing.T) {
		interrupt := errors.New("interrupt signal received")
		ctx, cancel := context.WithCancelCause(context.Background())
		defer cancel(nil)
		// In the scenario's first epoch: the network waits at most an
		// epoch for its first whole one.
		time.AfterFunc(30*time.Second, func() { cancel(interrupt) })
		var stdout bytes.Buffer
		err := runSim(ctx, simOptions{scenario: scenario, out: out}, &stdout)
		if !errors.Is(err, interrupt) {
			t.Fatalf("interrupted run: error %v, want the interrupt", err)
		}
		md, err := os.ReadFile(filepath.Join(out, "report.md"))
		if err != nil {
			t.Fatalf("interrupted run wrote no report: %v", err)
		}
		if !strings.Contains(string(md), "The run was stopped early:** interrupt signal received, in round") {
			t.Errorf("report.md does not say when the run was stopped:\n%s", md)
		}
		if _, err := os.Stat(filepath.Join(out, "report.json")); err != nil {
			t.Error(err)
		}
		if !strings.Contains(stdout.String(), string(md)) {
			t.Error("the report was not printed")
		}
	})
}
