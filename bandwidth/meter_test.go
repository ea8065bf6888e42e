package bandwidth

import (
	"errors"
	"math"
	"math/rand/v2"
	"testing"
	"time"
)

// series builds arrivals of chunk bytes each at rate Mbit/s from start
// to end.
func series(start, end time.Duration, mbitRate float64, chunk int64) []Arrival {
	var out []Arrival
	step := time.Duration(float64(chunk) * 8 / mbitRate / 1e6 * float64(time.Second))
	for at := start + step; at <= end; at += step {
		out = append(out, Arrival{At: at, Bytes: chunk})
	}
	return out
}

func TestMeter(t *testing.T) {
	ms := time.Millisecond
	jitter := func(in []Arrival, d time.Duration) []Arrival {
		r := rand.New(rand.NewPCG(1, 2))
		out := make([]Arrival, len(in))
		prev := time.Duration(0)
		for i, a := range in {
			at := max(prev, a.At+time.Duration(r.Int64N(int64(2*d)))-d)
			out[i] = Arrival{At: at, Bytes: a.Bytes}
			prev = at
		}
		return out
	}
	cat := func(parts ...[]Arrival) []Arrival {
		var out []Arrival
		for _, p := range parts {
			out = append(out, p...)
		}
		return out
	}
	for name, tc := range map[string]struct {
		arrivals  []Arrival
		want      float64 // Mbit/s
		tolerance float64 // share
		intervals int
	}{
		"steady":            {series(0, 2000*ms, 50, 16<<10), 50, 0.02, 15},
		"ramp then steady":  {cat(series(0, 300*ms, 5, 4<<10), series(300*ms, 2000*ms, 100, 32<<10)), 100, 0.02, 15},
		"burst then steady": {cat([]Arrival{{At: 10 * ms, Bytes: 4 << 20}}, series(10*ms, 2000*ms, 10, 8<<10)), 10, 0.03, 15},
		"jitter":            {jitter(series(0, 2000*ms, 200, 64<<10), 5*ms), 200, 0.03, 15},
		// A 400 ms stall in the steady part costs its share of the time
		// (steady window 500 to 2300 ms).
		"stall": {cat(series(0, 1000*ms, 50, 16<<10), series(1400*ms, 2400*ms, 50, 16<<10)), 50 * 1.4 / 1.8, 0.03, 18},
	} {
		got, err := Meter(tc.arrivals, DefaultInterval)
		if err != nil {
			t.Fatalf("%s: %v", name, err)
		}
		if math.Abs(got.Mbit-tc.want)/tc.want > tc.tolerance || got.Intervals != tc.intervals {
			t.Errorf("%s: %.2f Mbit/s over %d intervals, want %.2f ± %.0f%% over %d", name, got.Mbit, got.Intervals, tc.want, tc.tolerance*100, tc.intervals)
		}
		var sum int64
		for _, a := range tc.arrivals {
			sum += a.Bytes
		}
		if got.Bytes != sum || got.Duration != tc.arrivals[len(tc.arrivals)-1].At {
			t.Errorf("%s: %d bytes in %s, want %d in %s", name, got.Bytes, got.Duration, sum, tc.arrivals[len(tc.arrivals)-1].At)
		}
	}
}

func TestMeterRefuses(t *testing.T) {
	ms := time.Millisecond
	if _, err := Meter(nil, 0); !errors.Is(err, ErrTooShort) {
		t.Errorf("no arrivals: %v", err)
	}
	if _, err := Meter(series(0, 350*ms, 50, 1000), DefaultInterval); !errors.Is(err, ErrTooShort) {
		t.Errorf("350 ms: %v", err)
	}
	if _, err := Meter([]Arrival{{At: 5 * ms, Bytes: 1}, {At: 4 * ms, Bytes: 1}}, DefaultInterval); err == nil {
		t.Error("out of order arrivals metered")
	}
}

// TestMeterUntil: intervals after until are left out, so a flow that
// speeds up once another keeper's flow has ended is metered at the rate
// it had while they shared the link.
func TestMeterUntil(t *testing.T) {
	shared := series(0, 1400*time.Millisecond, 50, 16<<10)
	alone := series(1400*time.Millisecond, 2*time.Second, 150, 16<<10)
	arrivals := append(shared, alone...)
	whole, err := Meter(arrivals, 100*time.Millisecond)
	if err != nil {
		t.Fatal(err)
	}
	early, err := MeterUntil(arrivals, 100*time.Millisecond, 1400*time.Millisecond)
	if err != nil {
		t.Fatal(err)
	}
	if math.Abs(early.Mbit-50) > 1 || whole.Mbit < 60 {
		t.Errorf("until 1.4 s: %.1f Mbit/s, want 50; whole transfer %.1f, want above 60", early.Mbit, whole.Mbit)
	}
	if early.Bytes != whole.Bytes || early.Intervals >= whole.Intervals {
		t.Errorf("until 1.4 s: %d bytes over %d intervals; whole: %d over %d", early.Bytes, early.Intervals, whole.Bytes, whole.Intervals)
	}
}
