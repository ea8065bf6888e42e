package sim

import (
	"bytes"
	"context"
	"errors"
	"fmt"
	"os"
	"slices"
	"strings"
	"testing"
	"testing/synctest"
	"time"

	mocknet "github.com/libp2p/go-libp2p/p2p/net/mock"
	ma "github.com/multiformats/go-multiaddr"
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
		{"long rounds", func(s *Scenario) { s.RoundSeconds = 31 }, "round_seconds = 31: want 1 to 30"},
		{"negative rounds", func(s *Scenario) { s.RoundSeconds = -1 }, "round_seconds = -1"},
		{"claim over the link", func(s *Scenario) { s.BandwidthMbit = 80 }, "an honest claim must fit the link's 50 Mbit/s"},
		{"rate bounds reversed", func(s *Scenario) { s.Link.MbitMax = 20 }, "link.mbit_max = 20: want link.mbit (50, not 0)"},
		{"latency bounds reversed", func(s *Scenario) { s.Link.LatencyMS, s.Link.LatencyMSMax = 5, 1 }, "link.latency_ms_max = 1: want link.latency_ms (5)"},
	} {
		s := Default()
		c.mutate(&s)
		if err := s.Validate(); err == nil || !strings.Contains(err.Error(), c.want) {
			t.Errorf("%s: %v, want an error containing %q", c.name, err, c.want)
		}
	}
}

// TestAccessLinks: each node draws its access link between the
// scenario's bounds, from the seed, and two nodes are joined at the lower
// rate and the sum of the latencies.
func TestAccessLinks(t *testing.T) {
	s := Default()
	s.Link = Link{Mbit: 50, MbitMax: 100, LatencyMS: 5, LatencyMSMax: 15}
	members, err := s.members()
	if err != nil {
		t.Fatal(err)
	}
	again, err := s.members()
	if err != nil {
		t.Fatal(err)
	}
	rates := map[float64]bool{}
	for i, m := range members {
		if m.rate < s.Link.Mbit*1e6/8 || m.rate > s.Link.MbitMax*1e6/8 {
			t.Errorf("node %d: %v bytes/s, outside %v to %v Mbit/s", i, m.rate, s.Link.Mbit, s.Link.MbitMax)
		}
		if ms := int(m.latency / time.Millisecond); ms < s.Link.LatencyMS || ms > s.Link.LatencyMSMax {
			t.Errorf("node %d: %d ms, outside %d to %d", i, ms, s.Link.LatencyMS, s.Link.LatencyMSMax)
		}
		if again[i].rate != m.rate || again[i].latency != m.latency {
			t.Errorf("node %d: another link from the same seed", i)
		}
		rates[m.rate] = true
	}
	if len(rates) < len(members)/2 {
		t.Errorf("%d nodes share %d rates: want them drawn", len(members), len(rates))
	}

	mn := mocknet.New()
	defer mn.Close()
	a, b := members[1], members[2]
	for _, m := range []*member{a, b} {
		if _, err := mn.AddPeer(m.key, ma.StringCast(fmt.Sprintf("/ip4/100.64.0.%d/tcp/4001", m.index))); err != nil {
			t.Fatal(err)
		}
	}
	if err := linkPair(mn, a, b); err != nil {
		t.Fatal(err)
	}
	got := mn.LinksBetweenPeers(a.id, b.id)[0].Options()
	if got.Bandwidth != min(a.rate, b.rate) || got.Latency != a.latency+b.latency {
		t.Errorf("link of %v and %v bytes/s, %v and %v: got %v bytes/s, %v", a.rate, b.rate, a.latency, b.latency, got.Bandwidth, got.Latency)
	}
}

// TestSmallNetwork runs 12 edges, one of each edge strategy and five
// honest, with 5 keepers, an equivocator, a lazy one, a forger and two
// honest ones, over access links of 50 to 100 Mbit/s and 5 to 15 ms, for
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
		s.Edges, s.Keepers, s.Epochs = 12, 5, 4
		// Each node's access link drawn between bounds.
		s.Link = Link{Mbit: 50, MbitMax: 100, LatencyMS: 5, LatencyMSMax: 15}
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
		rep, err := Run(ctx, s, Options{VirtualClock: true})
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
			// A keeper's balance counts the stake it lost, so that a
			// slashed keeper ends below the honest ones.
			var balance int64
			for _, b := range n.Balance {
				balance += b
			}
			if want := int64(n.Reward) - int64(n.Penalty) - int64(n.Slashed); balance != want {
				t.Errorf("node %d (%s): balance %d over the epochs, want reward %d less penalty %d and stake slashed %d", n.Index, n.Strategy, balance, n.Reward, n.Penalty, n.Slashed)
			}
			if n.Slashed > 0 && balance >= int64(classOf(rep, n.Role, Honest).Balance[s.Epochs-1]) {
				t.Errorf("node %d (%s): slashed %d, and ends at %d, not below the honest keepers' mean", n.Index, n.Strategy, n.Slashed, balance)
			}
			b, ok := bound[n.Strategy]
			if !ok {
				continue
			}
			if !n.Detected || n.DetectedRound > int64(b) {
				t.Errorf("node %d (%s): detected %v in round %d, the formula's bound is %d", n.Index, n.Strategy, n.Detected, n.DetectedRound, b)
			}
			t.Logf("%s: detected in round %d; the formula expects %.1f on average, 99.9%% by %d", n.Strategy, n.DetectedRound, classOf(rep, n.Role, n.Strategy).ExpectedRounds, b)
		}
		if t.Failed() {
			rep.WriteMarkdown(os.Stderr)
		}
	})
}

func classOf(rep *Report, role, strategy string) ClassReport {
	for _, c := range rep.Classes {
		if c.Role == role && c.Strategy == strategy {
			return c
		}
	}
	return ClassReport{}
}

// TestSameSeedSameReport: two runs of the built-in scenario in virtual
// time write byte-identical report.json files. Every choice a run makes
// derives from the seed (the cheaters, the pieces, who is offline when,
// the keepers' checks, the forger's key), the runner acts between the
// nodes' instants, and an offline edge answers an attempt by the round
// the schedule gives it, not by the instant it arrives at. Where the
// reports differ, the test names the verdicts first, as they matter most.
func TestSameSeedSameReport(t *testing.T) {
	s := Default()
	run := func() (*Report, []byte) {
		var rep *Report
		var out bytes.Buffer
		synctest.Test(t, func(t *testing.T) {
			ctx, cancel := context.WithTimeout(context.Background(), 10*time.Minute)
			defer cancel()
			var err error
			rep, err = Run(ctx, s, Options{VirtualClock: true})
			if err != nil {
				t.Fatal(err)
			}
			if err := rep.WriteJSON(&out); err != nil {
				t.Fatal(err)
			}
		})
		return rep, out.Bytes()
	}
	first, firstJSON := run()
	second, secondJSON := run()
	if first == nil || second == nil {
		return // the run failed, and said why
	}
	verdicts := func(rep *Report) string {
		var b strings.Builder
		for _, c := range rep.Classes {
			fmt.Fprintf(&b, "%s/%s: %d nodes, %d detected, %d honest penalised\n", c.Role, c.Strategy, c.Nodes, c.Detected, c.FalsePositives)
		}
		for _, n := range rep.Nodes {
			fmt.Fprintf(&b, "node %d (%s) detected %v\n", n.Index, n.Strategy, n.Detected)
		}
		return b.String()
	}
	if a, b := verdicts(first), verdicts(second); a != b {
		t.Fatalf("same seed, other verdicts:\n%s\nthen\n%s", a, b)
	}
	if first.Classes[0].Detected+first.FalsePositives() != 0 || !bytes.Contains(firstJSON, []byte(`"detected": true`)) {
		t.Fatalf("the run detected nobody, or penalised the honest:\n%s", firstJSON)
	}
	if !bytes.Equal(firstJSON, secondJSON) {
		a, b := strings.Split(string(firstJSON), "\n"), strings.Split(string(secondJSON), "\n")
		for i := range min(len(a), len(b)) {
			if a[i] != b[i] {
				t.Fatalf("same seed, same verdicts, but report.json differs: line %d is\n%s\nthen\n%s", i+1, a[i], b[i])
			}
		}
		t.Fatalf("same seed, same verdicts, but report.json differs: %d lines, then %d", len(a), len(b))
	}
}

// TestRoundSeconds: a scenario's rounds last its round_seconds, on the
// beacon and so on the nodes' clocks, and its network still settles
// every epoch without penalising the honest. Progress is told of each
// node started, then of the rounds.
func TestRoundSeconds(t *testing.T) {
	synctest.Test(t, func(t *testing.T) {
		s := Default()
		s.Edges, s.Keepers, s.Epochs, s.RoundSeconds = 6, 3, 1, 3
		s.Strategies = nil
		var times []time.Time
		started := 0
		progress := func(w Where) {
			if w.Starting() || w.Started == started+1 {
				if w.Started != started+1 || w.Nodes != 1+s.Keepers+s.Edges || len(times) > 0 {
					t.Errorf("told of node %d of %d started after %d of them and %d rounds", w.Started, w.Nodes, started, len(times))
				}
				started = w.Started
				return
			}
			times = append(times, time.Now())
		}
		ctx, cancel := context.WithTimeout(context.Background(), 10*time.Minute)
		defer cancel()
		rep, err := Run(ctx, s, Options{Progress: progress, VirtualClock: true})
		if err != nil {
			t.Fatal(err)
		}
		if rep.Batches != s.Epochs || rep.FalsePositives() != 0 || rep.LateRounds != 0 {
			t.Errorf("%d of %d epochs settled, %d honest penalised, %d rounds late", rep.Batches, s.Epochs, rep.FalsePositives(), rep.LateRounds)
		}
		if started != 1+s.Keepers+s.Edges {
			t.Errorf("told of %d nodes started, want %d", started, 1+s.Keepers+s.Edges)
		}
		if len(times) < int(s.EpochRounds) {
			t.Fatalf("told of %d rounds, want at least %d", len(times), s.EpochRounds)
		}
		for i := 1; i < len(times); i++ {
			if d := times[i].Sub(times[i-1]); d != s.Period() {
				t.Fatalf("round %d began %v after the last, want %v", i, d, s.Period())
			}
		}
	})
}

// TestLateRounds: a run that falls behind its network's clock counts the
// rounds it saw late, and its report says the machine fell behind. The
// progress callback stalls the runner for two rounds, as an overloaded
// machine would.
func TestLateRounds(t *testing.T) {
	synctest.Test(t, func(t *testing.T) {
		s := Default()
		s.Edges, s.Keepers, s.Epochs = 6, 3, 1
		s.Strategies = nil
		stalled, told := false, 0
		progress := func(w Where) {
			if w.Epoch == 1 && w.Round == 3 && !stalled {
				stalled = true
				time.Sleep(2 * s.Period())
			}
			told = w.Late
		}
		ctx, cancel := context.WithTimeout(context.Background(), 10*time.Minute)
		defer cancel()
		rep, err := Run(ctx, s, Options{Progress: progress, VirtualClock: true})
		if err != nil {
			t.Fatal(err)
		}
		if !stalled || rep.LateRounds == 0 {
			t.Fatalf("stalled %v: %d rounds late, want some", stalled, rep.LateRounds)
		}
		if told != rep.LateRounds {
			t.Errorf("progress was last told of %d late rounds, the report counts %d", told, rep.LateRounds)
		}
		var md bytes.Buffer
		if err := rep.WriteMarkdown(&md); err != nil {
			t.Fatal(err)
		}
		if !strings.Contains(md.String(), "The machine fell behind") {
			t.Errorf("report.md does not say the run fell behind:\n%s", md.String())
		}
	})
}

// TestStopped: a run stopped midway, as by an interrupt, still reports
// what the ledger holds: the batches settled before the stop, the
// epochs missing after it, and when it stopped.
func TestStopped(t *testing.T) {
	synctest.Test(t, func(t *testing.T) {
		s := Default()
		s.Edges, s.Keepers, s.Epochs = 6, 3, 3
		s.Strategies = nil
		interrupted := errors.New("interrupt signal received")
		ctx, cancel := context.WithCancelCause(context.Background())
		defer cancel(nil)
		progress := func(w Where) {
			// Epoch 1's batch settles within the grace and a leader's
			// timeout of its end, before this round; epoch 3's cannot.
			if w.Epoch == 3 && w.Round == 10 {
				cancel(interrupted)
			}
		}
		rep, err := Run(ctx, s, Options{Progress: progress, VirtualClock: true})
		if !errors.Is(err, interrupted) {
			t.Fatalf("stopped run: error %v, want the interrupt", err)
		}
		if rep == nil {
			t.Fatal("stopped run: no report")
		}
		if rep.Batches < 1 || rep.Batches+len(rep.Missing) != s.Epochs || !slices.Contains(rep.Missing, rep.FirstEpoch+2) {
			t.Errorf("stopped in epoch 3: %d batches, missing %v (first epoch %d)", rep.Batches, rep.Missing, rep.FirstEpoch)
		}
		if fp := rep.FalsePositives(); fp != 0 {
			t.Errorf("%d honest nodes penalised", fp)
		}
		want := fmt.Sprintf("interrupt signal received, in round %d of the scenario's %d", 2*s.EpochRounds+10, 3*s.EpochRounds)
		if rep.Stopped != want {
			t.Errorf("Stopped = %q, want %q", rep.Stopped, want)
		}
		var md bytes.Buffer
		if err := rep.WriteMarkdown(&md); err != nil {
			t.Fatal(err)
		}
		if !strings.Contains(md.String(), "The run was stopped early") || !strings.Contains(md.String(), want) {
			t.Errorf("report.md does not say the run was stopped:\n%s", md.String())
		}
	})
}
