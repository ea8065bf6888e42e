package sim

import (
	"context"
	"fmt"
	"os"
	"os/exec"
	"runtime/pprof"
	"strconv"
	"strings"
	"syscall"
	"testing"
	"testing/synctest"
	"time"
)

// BenchmarkScale runs networks of 100 and 1,000 edges and 10 keepers for
// one epoch of liveness and storage, in virtual time (testing/synctest),
// so that the wall time a round takes is the CPU the whole network needs
// for it. Each runs as TestScale in a process of its own, which gives it
// a peak memory of its own. It reports simulated rounds per second of
// wall time, the wall time of a round as a share of the round period
// (goal: under 1, the network keeps up in real time) over the whole run
// and over the epoch's own rounds, without the rounds before it and the
// settlement's after it, the start-up's wall time and the peak memory
// (goal at 1,000 edges: under 4 GiB).
//
// Rounds last the simulation's 1 s, and, for the network of 1,000 edges,
// a public network's 3 s as well: a round's work is its challenges,
// receipts and beacon, much the same at either period, and the second
// run tells whether a thousand edges on one machine keep up with a
// public network's clock.
//
// The network of 1,000 edges runs a third time with the Go runtime's
// soft memory limit (GOMEMLIMIT) at 3 GiB: its collector otherwise lets
// the heap grow to twice what is live. It is a setting of the runtime,
// not of aropeer, for a user who runs large simulations on a small
// machine.
func BenchmarkScale(b *testing.B) {
	for _, c := range []struct {
		edges, roundSeconds int
		memLimit            string
	}{{100, 1, ""}, {1000, 1, ""}, {1000, 3, ""}, {1000, 1, "3GiB"}} {
		name := fmt.Sprintf("edges=%d", c.edges)
		if c.roundSeconds != 1 {
			name += fmt.Sprintf(",round=%ds", c.roundSeconds)
		}
		if c.memLimit != "" {
			name += ",GOMEMLIMIT=" + c.memLimit
		}
		b.Run(name, func(b *testing.B) {
			for b.Loop() {
				cmd := exec.Command(os.Args[0], "-test.run=^TestScale$", "-test.v", "-test.timeout=2h")
				cmd.Env = append(os.Environ(), fmt.Sprintf("%s=%d", scaleEnv, c.edges), fmt.Sprintf("%s=%d", scaleRoundEnv, c.roundSeconds))
				if c.memLimit != "" {
					cmd.Env = append(cmd.Env, "GOMEMLIMIT="+c.memLimit)
				}
				out, err := cmd.CombinedOutput()
				if err != nil {
					b.Fatalf("%v\n%s", err, out)
				}
				var rounds, epochRounds int
				var wall, setup, epochWall float64
				for line := range strings.Lines(string(out)) {
					if i := strings.Index(line, "scale: "); i >= 0 {
						if _, err := fmt.Sscanf(line[i:], "scale: %d rounds in %f s after %f s, of them %d epoch rounds in %f s",
							&rounds, &wall, &setup, &epochRounds, &epochWall); err != nil {
							b.Fatalf("%q: %v", line, err)
						}
					}
				}
				if rounds == 0 || epochRounds == 0 {
					b.Fatalf("no figures in\n%s", out)
				}
				peak := cmd.ProcessState.SysUsage().(*syscall.Rusage).Maxrss << 10
				b.ReportMetric(float64(rounds)/wall, "rounds/s")
				period := float64(c.roundSeconds)
				b.ReportMetric(wall/float64(rounds)/period, "round-wall/period")
				b.ReportMetric(epochWall/float64(epochRounds)/period, "epoch-round-wall/period")
				b.ReportMetric(setup, "setup-s")
				b.ReportMetric(float64(peak)/(1<<20), "peak-MiB")
			}
		})
	}
}

// scaleEnv names the edges of TestScale's network, scaleRoundEnv the
// seconds its rounds last (1 if unset), and scaleProfileEnv a file for a
// CPU profile of the epoch's rounds alone, which a profile of the whole
// test would mix with the start-up and the settlement.
const (
	scaleEnv        = "ARO_SIM_SCALE_EDGES"
	scaleRoundEnv   = "ARO_SIM_SCALE_ROUND_SECONDS"
	scaleProfileEnv = "ARO_SIM_SCALE_PROFILE"
)

// profileOutside profiles the CPU into path while true is sent on the
// channel it returns, acknowledging each toggle on it. The profiler runs
// in a goroutine outside the bubble: its writer, started in the bubble,
// would never be durably blocked, and the bubble's clock would stop.
func profileOutside(t *testing.T, path string) chan bool {
	f, err := os.Create(path)
	if err != nil {
		t.Fatal(err)
	}
	toggle, done := make(chan bool), make(chan struct{})
	go func() {
		defer close(done)
		defer pprof.StopCPUProfile() // still on if the run ended in the epoch
		for on := range toggle {
			if !on {
				pprof.StopCPUProfile()
			} else if err := pprof.StartCPUProfile(f); err != nil {
				t.Error(err)
			}
			toggle <- on
		}
	}()
	t.Cleanup(func() {
		close(toggle)
		<-done
		f.Close()
	})
	return toggle
}

// TestScale is BenchmarkScale's network: it prints how many rounds it
// timed, their wall time, the wall time of the start-up before them, and
// how many of them were the scenario's epoch's, and their wall time.
// Rounds are timed from the first one every node has started for. It
// fails if an epoch did not settle or an honest node was penalised.
func TestScale(t *testing.T) {
	edges, err := strconv.Atoi(os.Getenv(scaleEnv))
	if err != nil {
		t.Skipf("run by BenchmarkScale (make bench) with %s set to the edges", scaleEnv)
	}
	roundSeconds := 1
	if v := os.Getenv(scaleRoundEnv); v != "" {
		if roundSeconds, err = strconv.Atoi(v); err != nil {
			t.Fatalf("%s=%q: %v", scaleRoundEnv, v, err)
		}
	}
	var rounds, epochRounds int
	var first, last time.Time
	var epochWall time.Duration
	var profile chan bool
	if path := os.Getenv(scaleProfileEnv); path != "" {
		profile = profileOutside(t, path)
	}
	start := wallNow()
	synctest.Test(t, func(t *testing.T) {
		s := scaleScenario(edges)
		s.RoundSeconds = roundSeconds
		if err := s.Validate(); err != nil {
			t.Fatal(err)
		}
		inEpoch := false // whether the last round begun is one of the scenario's epochs
		progress := func(w Where) {
			if w.Starting() {
				return
			}
			now := wallNow()
			if rounds == 0 {
				first = now
			}
			if inEpoch {
				epochRounds++
				epochWall += now.Sub(last)
			}
			rounds++
			last = now
			was := inEpoch
			inEpoch = w.Epoch >= 1 && w.Epoch <= w.Epochs
			if profile != nil && inEpoch != was {
				profile <- inEpoch
				<-profile
			}
		}
		ctx, cancel := context.WithTimeout(context.Background(), 2*time.Hour)
		defer cancel()
		rep, err := Run(ctx, s, Options{Progress: progress, VirtualClock: true})
		if err != nil {
			t.Fatal(err)
		}
		if rep.Batches != s.Epochs {
			t.Errorf("%d of %d epochs settled", rep.Batches, s.Epochs)
		}
		if fp := rep.FalsePositives(); fp != 0 {
			t.Errorf("%d honest nodes penalised", fp)
		}
	})
	if rounds < 2 {
		t.Fatalf("%d rounds", rounds)
	}
	t.Logf("scale: %d rounds in %.3f s after %.3f s, of them %d epoch rounds in %.3f s",
		rounds-1, last.Sub(first).Seconds(), first.Sub(start).Seconds(), epochRounds, epochWall.Seconds())
}

// scaleScenario is the scale test's network: edges honest edges offering
// liveness and storage, and 10 honest keepers, for one epoch. Its links
// have no latency. Latency makes work for the simulated links, not for
// the nodes: a timer for every write and a pump for every pipelined
// stream that has one in flight. On the built-in 10 ms links, the
// epoch's rounds took 16.4 s against 13.9 s without, one run each.
func scaleScenario(edges int) Scenario {
	s := Default()
	s.Edges, s.Keepers, s.Epochs = edges, 10, 1
	s.Strategies = nil
	s.Offers = map[string]float64{"storage": 1}
	s.Probability = map[string]float64{"liveness": 0.1, "storage": 0.1}
	s.Link.LatencyMS, s.Link.LatencyMSMax = 0, 0
	return s
}

// wallNow is the real time, which the bubble's clock does not show.
func wallNow() time.Time {
	var tv syscall.Timeval
	if err := syscall.Gettimeofday(&tv); err != nil {
		panic(err)
	}
	return time.Unix(tv.Unix())
}
