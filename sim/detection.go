package sim

import (
	"math"

	"github.com/aropeer/aropeer/node/config"
)

// The detection formulas: how soon the network should catch an edge
// playing a strategy, from the scenario's chances and the network's
// parameters. A run's report sets them beside what it saw.

// detectionChance is the chance, per round, that an edge playing st shows
// its cheating in a receipt: that its committee challenges it on the kind
// that catches the strategy, times the chance that such a challenge does.
// ok is false for strategies not caught round by round (keepers, whose
// cheating shows in disputes and gossip scores, and an edge that
// declares its faults).
func (s Scenario) detectionChance(nw config.Network, st Strategy) (p float64, ok bool) {
	committee := float64(min(nw.CommitteeSize, s.Keepers))
	challenged := func(kind string) float64 {
		return 1 - math.Pow(1-s.Probability[kind], committee)
	}
	switch st.Name {
	case "offline":
		// A challenge that times out is retried in the next rounds; it
		// fails only if the edge is away for every attempt.
		return challenged("liveness") * math.Pow(st.Share, float64(nw.Retries+1)), true
	case "lazy-storage":
		// Each checked leaf is one it kept with its share as chance.
		return challenged("storage") * (1 - math.Pow(st.Share, float64(nw.StorageLeaves))), true
	case "lazy-compute":
		return challenged("compute") * (1 - math.Pow(st.Share, float64(nw.Compute.Rows))), true
	case "slow-compute":
		return challenged("compute"), true
	case "bandwidth-liar":
		// The committee probes together, in one round of ProbeRounds, at
		// ProbeRounds times the chance, up to one.
		slots := float64(max(nw.ProbeRounds, 1))
		return min(s.Probability["bandwidth"]*slots, 1) / slots, true
	case "replayer":
		// Every liveness challenge after its first finds the old answer.
		return challenged("liveness"), true
	}
	return 0, false
}

// catches is how many rounds with a challenge that catches st it takes
// to show its cheating: two for a replayer, whose first answer of the
// scenario is honest (the one it keeps to replay), one for the others.
func catches(st Strategy) int {
	if st.Name == "replayer" {
		return 2
	}
	return 1
}

// expectedRounds is the mean rounds to detection by the formula: the
// mean wait for catches(st) rounds each of chance p.
func (s Scenario) expectedRounds(nw config.Network, st Strategy) (float64, bool) {
	p, ok := s.detectionChance(nw, st)
	if !ok || p <= 0 {
		return 0, false
	}
	return float64(catches(st)) / p, true
}

// predictedRounds is the rounds within which an edge playing st is caught
// with the given confidence (0.99: 99 of 100 such edges), by the
// formula; ok as for detectionChance, and false when it is never caught.
func (s Scenario) predictedRounds(nw config.Network, st Strategy, confidence float64) (int, bool) {
	p, ok := s.detectionChance(nw, st)
	if !ok || p <= 0 {
		return 0, false
	}
	if catches(st) == 1 {
		if p >= 1 {
			return 1, true
		}
		return int(math.Ceil(math.Log(1-confidence) / math.Log(1-p))), true
	}
	// Two catching rounds within n: all but none or one of n rounds.
	for n := 2; ; n++ {
		q := math.Pow(1-p, float64(n-1))
		if 1-q*(1-p)-float64(n)*p*q >= confidence {
			return n, true
		}
	}
}
