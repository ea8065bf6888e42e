package beacon

import (
	"math"
	"math/rand/v2"
	"testing"
	"time"

	"github.com/drand/drand/v2/common"
)

func TestRoundAt(t *testing.T) {
	q := Quicknet() // period 3 s
	d := Default()  // period 30 s
	sim := Info{Period: 250 * time.Millisecond, GenesisTime: 1_000_000}
	qg := time.Unix(q.GenesisTime, 0) // 2023-08-23T15:09:27Z
	simg := time.Unix(sim.GenesisTime, 0)
	cases := []struct {
		name string
		info Info
		t    time.Time
		want uint64
	}{
		{"long before genesis", q, time.Unix(0, 0), 0},
		{"one ns before genesis", q, qg.Add(-time.Nanosecond), 0},
		{"one s before genesis", q, qg.Add(-time.Second), 0},
		{"exactly at genesis", q, qg, 1},
		{"one ns after genesis", q, qg.Add(time.Nanosecond), 1},
		{"one ns before round 2", q, qg.Add(3*time.Second - time.Nanosecond), 1},
		{"exactly at round 2", q, qg.Add(3 * time.Second), 2},
		{"one ns before round 1000", q, qg.Add(999*3*time.Second - time.Nanosecond), 999},
		{"exactly at round 1000", q, qg.Add(999 * 3 * time.Second), 1000},
		{"quicknet round 10024141", q, time.Unix(1692803367+10024140*3, 0), 10024141},
		{"default at genesis", d, time.Unix(1595431050, 0), 1},
		{"default round 367 last ns", d, time.Unix(1595431050+367*30, 0).Add(-time.Nanosecond), 367},
		{"default round 367", d, time.Unix(1595431050+366*30, 0), 367},
		{"local time zone does not matter", q, qg.In(time.FixedZone("x", 5*3600+1800)), 1},
		{"far future", q, time.Unix(math.MaxInt64/2, 0), uint64(math.MaxInt64/2-q.GenesisTime)/3 + 1},
		{"sub-second: before genesis", sim, simg.Add(-time.Nanosecond), 0},
		{"sub-second: at genesis", sim, simg, 1},
		{"sub-second: last ns of round 4", sim, simg.Add(time.Second - time.Nanosecond), 4},
		{"sub-second: round 5", sim, simg.Add(time.Second), 5},
		{"no period", Info{GenesisTime: 0}, time.Unix(100, 0), 0},
		{"negative period", Info{Period: -time.Second}, time.Unix(100, 0), 0},
	}
	for _, c := range cases {
		t.Run(c.name, func(t *testing.T) {
			if got := c.info.RoundAt(c.t); got != c.want {
				t.Fatalf("RoundAt(%v) = %d, want %d", c.t, got, c.want)
			}
		})
	}
}

func TestTimeOf(t *testing.T) {
	q := Quicknet()
	sim := Info{Period: 250 * time.Millisecond, GenesisTime: 1_000_000}
	cases := []struct {
		name  string
		info  Info
		round uint64
		want  time.Time
	}{
		{"round 0 is genesis", q, 0, time.Unix(1692803367, 0)},
		{"round 1 is genesis", q, 1, time.Unix(1692803367, 0)},
		{"round 2", q, 2, time.Unix(1692803370, 0)},
		{"round 1000", q, 1000, time.Unix(1692803367+999*3, 0)},
		{"default round 367", Default(), 367, time.Unix(1595431050+366*30, 0)},
		{"sub-second round 5", sim, 5, time.Unix(1_000_001, 0)},
		{"sub-second round 6", sim, 6, time.Unix(1_000_001, 250e6)},
		{"saturates", q, math.MaxUint64, time.Unix(maxRoundTime, 0)},
		{"saturates sub-second", sim, math.MaxUint64, time.Unix(maxRoundTime, 0)},
	}
	for _, c := range cases {
		t.Run(c.name, func(t *testing.T) {
			if got := c.info.TimeOf(c.round); !got.Equal(c.want) {
				t.Fatalf("TimeOf(%d) = %v, want %v", c.round, got, c.want)
			}
		})
	}
}

// TestClockMatchesDrand compares with drand's own round arithmetic
// (common.CurrentRound, common.TimeOfRound) from genesis on; before
// genesis drand says round 1 where we say 0, on purpose.
func TestClockMatchesDrand(t *testing.T) {
	rng := rand.New(rand.NewPCG(1, 2))
	for _, info := range []Info{Quicknet(), Default(), DevnetSigner().Info()} {
		for range 10000 {
			now := info.GenesisTime + rng.Int64N(400_000_000)
			want := common.CurrentRound(now, info.Period, info.GenesisTime)
			got := info.RoundAt(time.Unix(now, rng.Int64N(1e9)))
			if got != want {
				t.Fatalf("%s: RoundAt(%d) = %d, drand says %d", info.BeaconID, now, got, want)
			}
			if tt := info.TimeOf(got).Unix(); tt != common.TimeOfRound(info.Period, info.GenesisTime, got) {
				t.Fatalf("%s: TimeOf(%d) = %d, drand says %d", info.BeaconID, got, tt, common.TimeOfRound(info.Period, info.GenesisTime, got))
			}
			if info.RoundAt(info.TimeOf(got)) != got || info.RoundAt(info.TimeOf(got+1).Add(-time.Nanosecond)) != got {
				t.Fatalf("%s: round %d does not start at TimeOf or end just before TimeOf(next)", info.BeaconID, got)
			}
		}
	}
}
