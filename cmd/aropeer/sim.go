package main

import (
	"context"
	"fmt"
	"io"
	"os"
	"os/signal"
	"path/filepath"
	"runtime/pprof"
	"strings"
	"sync"
	"syscall"
	"time"

	"github.com/spf13/cobra"

	"github.com/aropeer/aropeer/sim"
)

// simOptions are the flags of `aropeer sim`; a zero number keeps the
// scenario's.
type simOptions struct {
	scenario string
	edges    int
	keepers  int
	epochs   int
	seed     uint64
	out      string
	logs     bool
	cpuProf  string
}

func newSimCmd() *cobra.Command {
	var o simOptions
	cmd := &cobra.Command{
		Use:   "sim [--scenario FILE] [--edges N] [--keepers K] [--epochs E] [--seed S] [--out DIR]",
		Short: "Simulate a whole network with cheaters in one process and report what it caught",
		Long: `sim runs a bootstrap node, keepers and edges as real aropeer nodes in one
process over simulated links, some of them cheating by the strategies the
scenario assigns, for a few epochs; then it reads the epoch batches from
the ledger and reports, per strategy, the nodes caught, how fast, and what
everyone earned. The report is printed and written to DIR as report.md and
report.json. Without --scenario the built-in scenario runs: about 40
edges, 6 keepers and every strategy.`,
		Args: cobra.NoArgs,
		RunE: func(cmd *cobra.Command, _ []string) error {
			ctx, stop := signal.NotifyContext(cmd.Context(), os.Interrupt, syscall.SIGTERM)
			defer stop()
			// The first interrupt stops the network and writes what it
			// found; a second quits at once.
			defer context.AfterFunc(ctx, stop)()
			return runSim(ctx, o, cmd.OutOrStdout())
		},
	}
	f := cmd.Flags()
	f.StringVar(&o.scenario, "scenario", "", "scenario TOML file (default: the built-in scenario)")
	f.IntVar(&o.edges, "edges", 0, "number of edges (default: the scenario's)")
	f.IntVar(&o.keepers, "keepers", 0, "number of keepers (default: the scenario's)")
	f.IntVar(&o.epochs, "epochs", 0, "number of epochs (default: the scenario's)")
	f.Uint64Var(&o.seed, "seed", 0, "seed of the run (default: the scenario's)")
	f.StringVar(&o.out, "out", "sim-report", "directory for report.md, report.json and the nodes' log")
	f.BoolVar(&o.logs, "logs", true, "write the nodes' logs to DIR/nodes.log")
	f.StringVar(&o.cpuProf, "cpuprofile", "", "write a CPU profile of the run to FILE")
	_ = f.MarkHidden("cpuprofile")
	return cmd
}

func runSim(ctx context.Context, o simOptions, stdout io.Writer) error {
	s := sim.Default()
	if o.scenario != "" {
		var err error
		if s, err = sim.Load(o.scenario); err != nil {
			return exitCode(2, err)
		}
	}
	if o.edges > 0 {
		s.Edges = o.edges
	}
	if o.keepers > 0 {
		s.Keepers = o.keepers
	}
	if o.epochs > 0 {
		s.Epochs = o.epochs
	}
	if o.seed > 0 {
		s.Seed = o.seed
	}
	if err := s.Validate(); err != nil {
		return exitCode(2, fmt.Errorf("sim: %w (check the flags against the scenario)", err))
	}
	if err := os.MkdirAll(o.out, 0o755); err != nil {
		return fmt.Errorf("sim: create %s: %w", o.out, err)
	}
	progress := newSimProgress(s.Period())
	opts := sim.Options{Progress: progress.update}
	if o.logs {
		logFile, err := os.Create(filepath.Join(o.out, "nodes.log"))
		if err != nil {
			return fmt.Errorf("sim: %w", err)
		}
		defer logFile.Close()
		opts.Log = logFile
	}
	fmt.Fprintf(os.Stderr, "simulating %d edges and %d keepers for %d epochs of %d rounds of %v (seed %d)\n", s.Edges, s.Keepers, s.Epochs, s.EpochRounds, s.Period(), s.Seed)
	if o.cpuProf != "" {
		pf, err := os.Create(o.cpuProf)
		if err != nil {
			return fmt.Errorf("sim: %w", err)
		}
		defer pf.Close()
		if err := pprof.StartCPUProfile(pf); err != nil {
			return fmt.Errorf("sim: %w", err)
		}
		defer pprof.StopCPUProfile()
	}
	start := time.Now()
	watchCtx, stopWatch := context.WithCancel(ctx)
	go progress.watch(watchCtx)
	stopping := context.AfterFunc(ctx, func() {
		fmt.Fprintln(os.Stderr, "\nstopping the network; the report will show what it found so far (interrupt again to quit at once)")
	})
	rep, runErr := sim.Run(ctx, s, opts)
	stopping()
	stopWatch()
	fmt.Fprintln(os.Stderr)
	if rep == nil {
		return runErr
	}
	fmt.Fprintf(os.Stderr, "ran in %s\n", time.Since(start).Round(time.Second))
	// A chart that fails to draw is no reason to lose the report.
	charts, err := rep.WriteCharts(o.out)
	if err != nil {
		fmt.Fprintln(os.Stderr, err)
	}
	rep.Charts = charts
	var md strings.Builder
	if err := rep.WriteMarkdown(&md); err != nil {
		return err
	}
	if err := os.WriteFile(filepath.Join(o.out, "report.md"), []byte(md.String()), 0o644); err != nil {
		return fmt.Errorf("sim: %w", err)
	}
	js, err := os.Create(filepath.Join(o.out, "report.json"))
	if err != nil {
		return fmt.Errorf("sim: %w", err)
	}
	if err := rep.WriteJSON(js); err != nil {
		js.Close()
		return fmt.Errorf("sim: %w", err)
	}
	if err := js.Close(); err != nil {
		return fmt.Errorf("sim: %w", err)
	}
	fmt.Fprint(stdout, md.String())
	fmt.Fprintf(stdout, "\nwritten to %s (%s)\n", o.out, strings.Join(append([]string{"report.md", "report.json"}, charts...), ", "))
	if runErr != nil {
		return runErr
	}
	if fp := rep.FalsePositives(); fp > 0 {
		return exitCode(1, fmt.Errorf("sim: %d honest node(s) were penalised", fp))
	}
	return nil
}

// simProgress shows the nodes starting, then epochs and rounds: a bar on
// a terminal, a line per stage elsewhere; and says, once, when the
// machine falls behind the network's clock, since the run then takes
// longer and settles less, and the user may rather stop it and change
// the scenario.
type simProgress struct {
	w      io.Writer
	tty    bool
	period time.Duration // of a round

	mu     sync.Mutex
	stage  int // the epoch of the last line, or startingStage; initially noStage
	warned bool
	moved  time.Time // when the run last told where it is
}

const (
	noStage       = -2
	startingStage = -1
)

func newSimProgress(period time.Duration) *simProgress {
	fi, err := os.Stderr.Stat()
	return &simProgress{
		w: os.Stderr, tty: err == nil && fi.Mode()&os.ModeCharDevice != 0, period: period,
		stage: noStage, moved: time.Now(),
	}
}

// stalledRounds is how many rounds may pass without a word of the run
// before simProgress says the machine is falling behind: a network far
// too large for the machine stalls before its first round reaches the
// run, where no late round can be counted.
const stalledRounds = 10

// watch says, once, that the machine is falling behind if the run tells
// nothing for stalledRounds rounds, until ctx ends.
func (p *simProgress) watch(ctx context.Context) {
	tick := time.NewTicker(p.period)
	defer tick.Stop()
	for {
		select {
		case <-ctx.Done():
			return
		case <-tick.C:
		}
		p.mu.Lock()
		if still := time.Since(p.moved); !p.warned && still >= stalledRounds*p.period {
			p.warned = true
			fmt.Fprintf(p.w, "\nthe run has not moved for %v: %s\n", still.Round(time.Second), fallingBehind)
		}
		p.mu.Unlock()
	}
}

// fallingBehind is what simProgress says, once, at the first late round
// or stall, whichever comes first.
const fallingBehind = "the machine is falling behind the network's clock: challenges time out and epochs may not settle; " +
	"longer rounds (round_seconds in the scenario) or fewer nodes keep up"

func (p *simProgress) update(w sim.Where) {
	p.mu.Lock()
	defer p.mu.Unlock()
	p.moved = time.Now()
	var what string
	stage := w.Epoch
	switch {
	case w.Starting() && p.tty:
		stage, what = startingStage, fmt.Sprintf("starting nodes: %d of %d", w.Started, w.Nodes)
	case w.Starting():
		stage, what = startingStage, fmt.Sprintf("starting %d nodes", w.Nodes)
	case w.Epoch == 0:
		what = "starting: waiting for the first whole epoch"
	case w.Epoch > w.Epochs:
		what = fmt.Sprintf("settling the last batch: round %d of at most %d", w.Round, w.Rounds)
	default:
		what = fmt.Sprintf("epoch %d of %d, round %d of %d", w.Epoch, w.Epochs, w.Round, w.Rounds)
	}
	if w.Late > 0 {
		what += fmt.Sprintf(", %d late", w.Late)
	}
	warn := w.Late > 0 && !p.warned
	p.warned = p.warned || warn
	if p.tty {
		if warn {
			fmt.Fprintf(p.w, "\n%s\n", fallingBehind)
		}
		done := 0.0
		if w.Epoch > 0 {
			done = min(float64(w.Epoch-1)+float64(w.Round)/float64(max(w.Rounds, 1)), float64(w.Epochs)) / float64(w.Epochs)
		}
		const width = 30
		bar := strings.Repeat("#", int(done*width)) + strings.Repeat(" ", width-int(done*width))
		fmt.Fprintf(p.w, "\r[%s] %-60s", bar, what)
		return
	}
	if stage != p.stage {
		p.stage = stage
		fmt.Fprintln(p.w, what)
	}
	if warn {
		fmt.Fprintln(p.w, fallingBehind)
	}
}
