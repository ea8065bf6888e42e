package sim

import (
	"math"
	"math/rand/v2"
	"testing"
)

// TestDetectionFormulas: the mean and the 99% bound the formulas give
// match simulated edges caught each round with the formula's chance, a
// replayer on its second catching round and the others on their first.
func TestDetectionFormulas(t *testing.T) {
	s := Default()
	nw, err := s.network()
	if err != nil {
		t.Fatal(err)
	}
	rng := rand.New(rand.NewPCG(1, 2))
	for _, st := range s.Strategies {
		p, ok := s.detectionChance(nw, st)
		if !ok {
			continue
		}
		mean, _ := s.expectedRounds(nw, st)
		bound, _ := s.predictedRounds(nw, st, 0.99)
		const edges = 20000
		var sum float64
		within, before := 0, 0
		for range edges {
			rounds, caught := 0, 0
			for caught < catches(st) {
				rounds++
				if rng.Float64() < p {
					caught++
				}
			}
			sum += float64(rounds)
			if rounds <= bound {
				within++
			}
			if rounds < bound {
				before++
			}
		}
		if got := sum / edges; math.Abs(got-mean) > 0.05*mean {
			t.Errorf("%s: simulated mean %.2f rounds, the formula %.2f", st.Name, got, mean)
		}
		// The bound is the least that holds 99%: one round less does not.
		if share := float64(within) / edges; share < 0.985 {
			t.Errorf("%s: %.4f of edges caught within the formula's 99%% bound of %d rounds", st.Name, share, bound)
		}
		if share := float64(before) / edges; share > 0.995 {
			t.Errorf("%s: %.4f of edges caught within %d rounds, one less than the formula's 99%% bound", st.Name, share, bound-1)
		}
	}
}
