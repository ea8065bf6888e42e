package sim

import (
	"runtime/metrics"
	"time"
)

// schedLatencies is the runtime's histogram of how long goroutines
// waited for a core once they could run.
const schedLatencies = "/sched/latencies:seconds"

// machine tells, round by round, whether this machine kept up with the
// network's clock, from how long the process's goroutines waited for a
// core once they could run.
//
// A beacon late to the run is the plain sign, but the rarer one: the
// beacon's goroutines wake on timers, which the scheduler serves first.
// A run of 1,000 edges of the built-in mix on 3 s rounds, on 2 cores, saw
// 18 of its 57 rounds' beacons late. In nearly every round, 1.8 to 5.5% of
// its goroutines' wake-ups waited over 100 ms for a core, the slowest in
// a hundred 0.3 to 4.3 s; thousands of challenges timed out, and its
// epoch did not settle. In `make sim` on the same machine, the slowest
// in a hundred waited 2 to 21 ms, and none over 50 ms.
type machine struct {
	samples []metrics.Sample
	counts  []uint64 // the histogram's counts at the last look
}

// newMachine returns a machine that has not looked yet, or nil where the
// runtime keeps no scheduling latencies.
func newMachine() *machine {
	s := []metrics.Sample{{Name: schedLatencies}}
	metrics.Read(s)
	if s[0].Value.Kind() != metrics.KindFloat64Histogram {
		return nil
	}
	return &machine{samples: s}
}

// behind reports whether, since its last call, more than one in a hundred
// goroutine wake-ups waited over limit for a core: a challenge's answer
// takes a chain of them, on both nodes, and the chain's slowest link sets
// its pace. The first call only looks.
func (m *machine) behind(limit time.Duration) bool {
	if m == nil {
		return false
	}
	metrics.Read(m.samples)
	h := m.samples[0].Value.Float64Histogram()
	first := m.counts == nil
	if len(m.counts) != len(h.Counts) {
		m.counts = make([]uint64, len(h.Counts))
	}
	var woken, waited uint64
	for i, n := range h.Counts {
		d := n - m.counts[i]
		m.counts[i] = n
		woken += d
		// Buckets[i] is bucket i's lower bound: only waits surely over
		// limit count.
		if h.Buckets[i] >= limit.Seconds() {
			waited += d
		}
	}
	return !first && waited*100 > woken
}
