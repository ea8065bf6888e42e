package beacon

import (
	"math"
	"time"
)

// maxRoundTime is the time TimeOf saturates at: about 1.5e11 years from
// now, later than any round yet within what time.Time represents.
const maxRoundTime = 1 << 62

// RoundAt returns the round current at t, as drand counts them:
// floor((t - genesis) / period) + 1 from genesis on, and 0 before genesis
// (no round has begun). A round's beacon is due at the start of the round.
// An Info without a positive Period has no rounds: RoundAt returns 0.
func (i Info) RoundAt(t time.Time) uint64 {
	if i.Period <= 0 || t.Unix() < i.GenesisTime {
		// t.Unix floors, and genesis is whole seconds: exact at the boundary.
		return 0
	}
	if i.Period%time.Second == 0 {
		// Whole-second periods (every drand chain): unsigned seconds, exact
		// and without overflow however far t is from genesis.
		secs := uint64(t.Unix()) - uint64(i.GenesisTime)
		return secs/uint64(i.Period/time.Second) + 1
	}
	// Sub-second periods, for simulations: t.Sub saturates about 292
	// years after genesis, far beyond any simulated network.
	return uint64(t.Sub(time.Unix(i.GenesisTime, 0))/i.Period) + 1
}

// TimeOf returns the time round starts: genesis + (round-1) * period.
// Round 0 and round 1 both give genesis. A round too far away to have a
// representable time gives a time about 1.5e11 years ahead, so that it
// still compares as in the future.
func (i Info) TimeOf(round uint64) time.Time {
	genesis := time.Unix(i.GenesisTime, 0)
	if round <= 1 || i.Period <= 0 {
		return genesis
	}
	n := round - 1
	if i.Period%time.Second == 0 {
		p := uint64(i.Period / time.Second)
		room := uint64(maxRoundTime - min(max(i.GenesisTime, 0), maxRoundTime))
		if n > room/p {
			return time.Unix(maxRoundTime, 0)
		}
		return time.Unix(i.GenesisTime+int64(n*p), 0)
	}
	if n > uint64(math.MaxInt64/int64(i.Period)) {
		return time.Unix(maxRoundTime, 0)
	}
	return genesis.Add(time.Duration(n) * i.Period)
}
