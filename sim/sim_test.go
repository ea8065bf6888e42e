package sim

import (
	"context"
	"fmt"
	"io"
	"os"
	"slices"
	"strings"
	"testing"
	"testing/synctest"
	"time"
)

// TestDefaultScenarioIsValid: the built-in scenario parses, validates and
// plays every strategy the simulation knows.
func TestDefaultScenarioIsValid(t *testing.T) {
	s := Default()
	played := map[string]bool{}
	for _, st := range s.Strategies {
		played[st.Name] = true
	}
	for _, name := range StrategyNames() {
		if !played[name] {
			t.Errorf("the default scenario does not play %s", name)
		}
	}
}

// TestScenarioErrors: a scenario with a mistake is refused with the
// field named.
func TestScenarioErrors(t *testing.T) {
	if _, err := Parse(append([]byte("colour = 3\n"), defaultScenario...)); err == nil || !strings.Contains(err.Error(), "unknown key") {
		t.Errorf("an unknown key: %v", err)
	}
	for _, c := range []struct {
		name   string
		mutate func(*Scenario)
		want   string
	}{
		{"no edges", func(s *Scenario) { s.Edges = 0 }, "edges = 0: want 1 to 2000"},
		{"unknown strategy", func(s *Scenario) { s.Strategies[0].Name = "miner" }, `strategy[0].name = "miner": want one of`},
		{"share out of range", func(s *Scenario) { s.Strategies[0].Share = 2 }, "strategy[0] (offline).share = 2"},
		{"too many cheaters", func(s *Scenario) { s.Strategies[0].Nodes = 100 }, "strategies assign 113 edges, the scenario has 40"},
		{"unknown kind", func(s *Scenario) { s.Probability["gpu"] = 0.5 }, "probability.gpu"},
		{"liveness offered", func(s *Scenario) { s.Offers["liveness"] = 1 }, "offers.liveness"},
		{"short epochs", func(s *Scenario) { s.EpochRounds = 2 }, "epoch_rounds = 2"},
		{"claim over the link", func(s *Scenario) { s.BandwidthMbit = 80 }, "an honest claim must fit the link's 50 Mbit/s"},
	} {
		s := Default()
		c.mutate(&s)
		if err := s.Validate(); err == nil || !strings.Contains(err.Error(), c.want) {
			t.Errorf("%s: %v, want an error containing %q", c.name, err, c.want)
		}
	}
}

// TestSmallNetwork runs 12 edges, one of each edge strategy and five
// honest, with 4 keepers, an equivocator, a lazy one and a forger, for
// four epochs of real nodes in virtual time (testing/synctest): every
// edge cheater is caught within the rounds the detection formulas give
// for 999 of 1,000 such edges, every keeper cheater is slashed or
// shunned, no honest node is penalised, and every epoch settles. The
// chances of challenge are raised from the default scenario's, so that
// the formulas' bounds fit the run. The nodes' clocks, deadlines, links
// and simulated devices all run on the bubble's clock, so the machine's
// speed does not change the verdicts.
func TestSmallNetwork(t *testing.T) {
	synctest.Test(t, func(t *testing.T) {
		s := Default()
		s.Edges, s.Keepers, s.Epochs = 12, 4, 4
		for i := range s.Strategies {
			s.Strategies[i].Nodes = 1
			if s.Strategies[i].Name == "offline" {
				s.Strategies[i].Share = 0.8
			}
		}
		s.Probability = map[string]float64{"liveness": 0.5, "storage": 0.3, "compute": 0.3, "bandwidth": 0.15}
		nw, err := s.network()
		if err != nil {
			t.Fatal(err)
		}
		bound := map[string]int{}
		for _, st := range s.Strategies {
			if n, ok := s.predictedRounds(nw, st, 0.999); ok {
				bound[st.Name] = n
				if n > s.Epochs*int(s.EpochRounds) {
					t.Fatalf("%s: the formula gives %d rounds, more than the run's %d", st.Name, n, s.Epochs*int(s.EpochRounds))
				}
			}
		}
		ctx, cancel := context.WithTimeout(context.Background(), 10*time.Minute)
		defer cancel()
		rep, err := Run(ctx, s, Options{Log: io.Discard})
		if err != nil {
			t.Fatal(err)
		}
		if rep.Batches != s.Epochs {
			t.Errorf("%d of %d epochs settled (missing %v)", rep.Batches, s.Epochs, rep.Missing)
		}
		for _, c := range rep.Classes {
			if c.Strategy == Honest {
				if c.FalsePositives > 0 {
					t.Errorf("%d honest %s(s) penalised", c.FalsePositives, c.Role)
				}
				continue
			}
			// A forger's penalty is its gossip shunned: forging costs no
			// stake, and its forgeries never reach an edge.
			penalised := c.Penalties+c.Slashed > 0 || strategies[c.Strategy].caughtBy == "shunned"
			if c.Detected != c.Nodes || !penalised {
				t.Errorf("%s: %d of %d detected, penalties %d, slashed %d", c.Strategy, c.Detected, c.Nodes, c.Penalties, c.Slashed)
			}
		}
		for _, n := range rep.Nodes {
			b, ok := bound[n.Strategy]
			if !ok {
				continue
			}
			if !n.Detected || n.DetectedRound > int64(b) {
				t.Errorf("node %d (%s): detected %v in round %d, the formula's bound is %d", n.Index, n.Strategy, n.Detected, n.DetectedRound, b)
			}
			t.Logf("%s: detected in round %d; the formula expects %.1f on average, 99.9%% by %d", n.Strategy, n.DetectedRound, classOf(rep, n.Strategy).ExpectedRounds, b)
		}
		if t.Failed() {
			rep.WriteMarkdown(os.Stderr)
		}
	})
}

func classOf(rep *Report, strategy string) ClassReport {
	for _, c := range rep.Classes {
		if c.Strategy == strategy {
			return c
		}
	}
	return ClassReport{}
}

// TestSameSeedSameVerdicts: two runs of one scenario in virtual time
// reach the same verdicts: the same cheaters detected, in each class the
// same counts, and no honest node penalised. (Rewards and the rounds of
// detection may still differ by a receipt: see the note of issue 9.)
func TestSameSeedSameVerdicts(t *testing.T) {
	type verdict struct {
		Class    []string
		Detected []bool
	}
	run := func() verdict {
		var v verdict
		synctest.Test(t, func(t *testing.T) {
			s := Default()
			s.Edges, s.Keepers, s.Epochs = 12, 4, 1
			for i := range s.Strategies {
				s.Strategies[i].Nodes = 1
			}
			ctx, cancel := context.WithTimeout(context.Background(), 10*time.Minute)
			defer cancel()
			rep, err := Run(ctx, s, Options{Log: io.Discard})
			if err != nil {
				t.Fatal(err)
			}
			for _, c := range rep.Classes {
				v.Class = append(v.Class, fmt.Sprintf("%s/%s: %d nodes, %d detected, %d honest penalised", c.Role, c.Strategy, c.Nodes, c.Detected, c.FalsePositives))
			}
			for _, n := range rep.Nodes {
				v.Detected = append(v.Detected, n.Detected)
			}
		})
		return v
	}
	first, second := run(), run()
	if !slices.Equal(first.Class, second.Class) || !slices.Equal(first.Detected, second.Detected) {
		t.Errorf("same seed, other verdicts:\n%s\n%v\nthen\n%s\n%v", strings.Join(first.Class, "\n"), first.Detected, strings.Join(second.Class, "\n"), second.Detected)
	}
}
