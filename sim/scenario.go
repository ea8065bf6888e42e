// Package sim runs whole GPoW networks in one process: a local beacon,
// the embedded ledger, a bootstrap node, keepers and edges, each a real
// node.Node over in-memory links, some of them cheating by a strategy the
// scenario assigns, and reports what the network caught.
package sim

import (
	"bytes"
	_ "embed"
	"errors"
	"fmt"
	"math/rand/v2"
	"os"
	"slices"
	"strings"
	"time"

	"github.com/pelletier/go-toml/v2"

	"github.com/aropeer/aropeer/proofs"
)

// Scenario is what a simulation runs: the network's size and length, its
// links, what edges offer and how often they are challenged, and which
// nodes cheat.
type Scenario struct {
	// Seed makes the run repeatable: the choice of cheaters, the pieces'
	// bytes and who is offline when all derive from it.
	Seed        uint64 `toml:"seed"`
	Edges       int    `toml:"edges"`
	Keepers     int    `toml:"keepers"`
	Epochs      int    `toml:"epochs"`
	EpochRounds uint64 `toml:"epoch_rounds"`
	// RoundSeconds is the beacon's period; 0 means 1. A public network's
	// rounds are 3 s: a simulation runs in real time, so shorter rounds
	// finish it sooner, and longer ones give a large network's nodes the
	// time the machine's cores need to keep up with the clock.
	RoundSeconds int `toml:"round_seconds"`

	// Link bounds the nodes' access links.
	Link Link `toml:"link"`
	// BandwidthMbit is what an honest edge offering bandwidth claims
	// each way.
	BandwidthMbit uint64 `toml:"bandwidth_mbit"`
	// Offers is the share of edges offering each kind besides liveness.
	Offers map[string]float64 `toml:"offers"`
	// Probability is the chance per round that a committee keeper
	// challenges an edge on a kind.
	Probability map[string]float64 `toml:"probability"`
	// PieceKiB is the size of the random piece an edge offering storage
	// holds; ComputeMTOPS what an honest edge claims for its CPU.
	PieceKiB     int64  `toml:"piece_kib"`
	ComputeMTOPS uint64 `toml:"compute_mtops"`

	// Strategies assign cheating strategies to some edges and keepers;
	// every other node is honest.
	Strategies []Strategy `toml:"strategy"`
}

// Link bounds each node's access link: its rate and its one-way latency
// to the network's core are drawn from the seed, evenly between the
// bounds (a bound without its max is the value of every node). Two nodes
// are joined at the lower of their rates and the sum of their latencies.
// In-memory links join each pair of nodes on its own, so a rate limits
// each pair, not a node's traffic as a whole. A rate of 0 leaves the
// links unlimited, and probes then run as fast as the CPU allows.
type Link struct {
	Mbit         float64 `toml:"mbit"`
	MbitMax      float64 `toml:"mbit_max"`
	LatencyMS    int     `toml:"latency_ms"`
	LatencyMSMax int     `toml:"latency_ms_max"`
}

// access is the rate (bytes a second, 0 unlimited) and latency a node
// draws for its access link.
func (l Link) access(rng *rand.Rand) (bytesPerSecond float64, latency time.Duration) {
	mbit, ms := l.Mbit, float64(l.LatencyMS)
	if l.MbitMax > l.Mbit {
		mbit += rng.Float64() * (l.MbitMax - l.Mbit)
	}
	if l.LatencyMSMax > l.LatencyMS {
		// Drawn to the nanosecond: two paths of equal latency would
		// deliver at one instant, and which came first would be a race.
		ms += rng.Float64() * float64(l.LatencyMSMax-l.LatencyMS)
	}
	return mbit * 1e6 / 8, time.Duration(ms * float64(time.Millisecond))
}

// Strategy assigns a strategy to Nodes nodes. Share and Multiple are its
// parameters, where it takes them: the share of rounds an offline edge is
// away, of its piece a lazy edge keeps, of the rows a lazy edge computes;
// the multiple of its link a bandwidth liar claims.
type Strategy struct {
	Name     string  `toml:"name"`
	Nodes    int     `toml:"nodes"`
	Share    float64 `toml:"share"`
	Multiple float64 `toml:"multiple"`
}

//go:embed default.toml
var defaultScenario []byte

// Default is the built-in scenario: about 40 edges and 6 keepers for a
// few epochs, with every strategy the simulation knows present.
func Default() Scenario {
	s, err := Parse(defaultScenario)
	if err != nil {
		panic("sim: the built-in scenario does not parse: " + err.Error())
	}
	return s
}

// Load reads and validates a scenario file.
func Load(path string) (Scenario, error) {
	b, err := os.ReadFile(path)
	if err != nil {
		return Scenario{}, fmt.Errorf("sim: read scenario: %w", err)
	}
	s, err := Parse(b)
	if err != nil {
		return Scenario{}, fmt.Errorf("sim: scenario %s: %w", path, err)
	}
	return s, nil
}

// Parse decodes a scenario from TOML, refusing unknown keys, and
// validates it.
func Parse(b []byte) (Scenario, error) {
	var s Scenario
	dec := toml.NewDecoder(bytes.NewReader(b))
	dec.DisallowUnknownFields()
	if err := dec.Decode(&s); err != nil {
		var strict *toml.StrictMissingError
		if errors.As(err, &strict) {
			return Scenario{}, fmt.Errorf("unknown key: %s", strings.TrimSpace(strict.String()))
		}
		return Scenario{}, err
	}
	return s, s.Validate()
}

// Limits of a scenario: what one process simulates in reasonable time.
const (
	maxEdges        = 2000
	maxKeepers      = 100
	maxEpochs       = 100
	maxEpochRounds  = 1000
	maxRoundSeconds = 30
)

// Period is the time a round lasts.
func (s Scenario) Period() time.Duration {
	return time.Duration(max(s.RoundSeconds, 1)) * time.Second
}

// Validate checks every field, naming the one that is wrong.
func (s Scenario) Validate() error {
	switch {
	case s.Edges < 1 || s.Edges > maxEdges:
		return fmt.Errorf("edges = %d: want 1 to %d", s.Edges, maxEdges)
	case s.Keepers < 1 || s.Keepers > maxKeepers:
		return fmt.Errorf("keepers = %d: want 1 to %d", s.Keepers, maxKeepers)
	case s.Epochs < 1 || s.Epochs > maxEpochs:
		return fmt.Errorf("epochs = %d: want 1 to %d", s.Epochs, maxEpochs)
	case s.EpochRounds < 5 || s.EpochRounds > maxEpochRounds:
		return fmt.Errorf("epoch_rounds = %d: want 5 to %d", s.EpochRounds, maxEpochRounds)
	case s.RoundSeconds < 0 || s.RoundSeconds > maxRoundSeconds:
		return fmt.Errorf("round_seconds = %d: want 1 to %d, or leave it out for 1", s.RoundSeconds, maxRoundSeconds)
	case s.BandwidthMbit < 1 || s.BandwidthMbit > 1000:
		return fmt.Errorf("bandwidth_mbit = %d: want 1 to 1000", s.BandwidthMbit)
	case s.Link.Mbit < 0 || s.Link.Mbit > 10_000:
		return fmt.Errorf("link.mbit = %v: want 0 (unlimited) to 10000", s.Link.Mbit)
	case s.Link.Mbit > 0 && float64(s.BandwidthMbit) > s.Link.Mbit:
		return fmt.Errorf("bandwidth_mbit = %d: an honest claim must fit the link's %v Mbit/s", s.BandwidthMbit, s.Link.Mbit)
	case s.Link.MbitMax != 0 && (s.Link.Mbit == 0 || s.Link.MbitMax < s.Link.Mbit || s.Link.MbitMax > 10_000):
		return fmt.Errorf("link.mbit_max = %v: want link.mbit (%v, not 0) to 10000, or leave it out", s.Link.MbitMax, s.Link.Mbit)
	case s.Link.LatencyMS < 0 || s.Link.LatencyMS > 1000:
		return fmt.Errorf("link.latency_ms = %d: want 0 to 1000", s.Link.LatencyMS)
	case s.Link.LatencyMSMax != 0 && (s.Link.LatencyMSMax < s.Link.LatencyMS || s.Link.LatencyMSMax > 1000):
		return fmt.Errorf("link.latency_ms_max = %d: want link.latency_ms (%d) to 1000, or leave it out", s.Link.LatencyMSMax, s.Link.LatencyMS)
	case s.PieceKiB < 1 || s.PieceKiB > 64<<10:
		return fmt.Errorf("piece_kib = %d: want 1 to 65536", s.PieceKiB)
	case s.ComputeMTOPS < 1 || s.ComputeMTOPS > 1_000_000:
		return fmt.Errorf("compute_mtops = %d: want 1 to 1000000", s.ComputeMTOPS)
	}
	for k, v := range s.Offers {
		if _, err := proofs.ParseKind(k); err != nil || k == string(proofs.KindLiveness) {
			return fmt.Errorf("offers.%s: want storage, bandwidth or compute (every edge proves liveness)", k)
		}
		if !(v >= 0 && v <= 1) {
			return fmt.Errorf("offers.%s = %v: want a share from 0 to 1", k, v)
		}
	}
	for k, v := range s.Probability {
		if _, err := proofs.ParseKind(k); err != nil {
			return fmt.Errorf("probability.%s: %v", k, err)
		}
		if !(v >= 0 && v <= 1) {
			return fmt.Errorf("probability.%s = %v: want 0 to 1", k, v)
		}
	}
	edges, keepers := 0, 0
	for i, st := range s.Strategies {
		info, ok := strategies[st.Name]
		if !ok {
			return fmt.Errorf("strategy[%d].name = %q: want one of %s", i, st.Name, strings.Join(StrategyNames(), ", "))
		}
		if st.Nodes < 1 {
			return fmt.Errorf("strategy[%d] (%s).nodes = %d: want at least 1", i, st.Name, st.Nodes)
		}
		if info.usesShare && !(st.Share > 0 && st.Share < 1) {
			return fmt.Errorf("strategy[%d] (%s).share = %v: want between 0 and 1", i, st.Name, st.Share)
		}
		if info.usesMultiple && !(st.Multiple > 1 && st.Multiple <= 1e6) {
			return fmt.Errorf("strategy[%d] (%s).multiple = %v: want more than 1", i, st.Name, st.Multiple)
		}
		if info.keeper {
			keepers += st.Nodes
		} else {
			edges += st.Nodes
		}
	}
	if edges > s.Edges {
		return fmt.Errorf("strategies assign %d edges, the scenario has %d", edges, s.Edges)
	}
	if keepers >= s.Keepers {
		return fmt.Errorf("strategies assign %d keepers, the scenario has %d: at least one must be honest", keepers, s.Keepers)
	}
	return nil
}

// StrategyNames lists the strategies in a stable order.
func StrategyNames() []string {
	names := make([]string, 0, len(strategies))
	for n := range strategies {
		names = append(names, n)
	}
	slices.Sort(names)
	return names
}
