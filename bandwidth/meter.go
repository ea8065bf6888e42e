package bandwidth

import (
	"errors"
	"fmt"
	"time"
)

// Arrival is a chunk of probe bytes that arrived At after the probe's
// start.
type Arrival struct {
	At    time.Duration
	Bytes int64
}

// DefaultInterval is the width of the intervals a probe is metered in.
const DefaultInterval = 100 * time.Millisecond

// rampShare is the share of a transfer's full intervals, in percent,
// that Meter leaves out as ramp-up.
const rampShare = 20

// minSteady is the fewest steady intervals a measure stands on.
const minSteady = 3

// ErrTooShort means a transfer too short to leave steady intervals.
var ErrTooShort = errors.New("bandwidth: transfer too short to meter")

// Throughput is the rate of a transfer over its steady part.
type Throughput struct {
	// Mbit is the steady rate in Mbit/s (10^6 bits per second).
	Mbit float64
	// Bytes and Duration are the whole transfer's: all bytes, and the
	// time from the start to the last arrival.
	Bytes    int64
	Duration time.Duration
	// Intervals is how many intervals the steady rate is taken over.
	Intervals int
	// Rates are the Mbit/s of every full interval, ramp-up included.
	Rates []float64
}

// Meter measures the throughput of a transfer from its arrivals, which
// must be in time order.
//
// The method: bytes are summed into intervals of width interval from the
// start, giving the per-interval rates; the last interval, which the
// transfer ends inside, is dropped; the first 20% of the remaining
// intervals (at least one) are left out as ramp-up (TCP slow start, a
// link's initial burst); what is left is the steady window. The rate is
// taken over the arrivals inside the window, from the first to the last
// of them: the bytes of all but the first over the time between them.
// Measuring between arrivals rather than over the window's edges keeps
// the chunk size from biasing the figure (at 10 Mbit/s a 64 KiB chunk
// takes 52 ms, half an interval), and a mean over the window rather than
// a median of interval rates lets a stall inside it lower the rate, as
// it should.
func Meter(arrivals []Arrival, interval time.Duration) (Throughput, error) {
	return MeterUntil(arrivals, interval, 0)
}

// MeterUntil is Meter with the steady window ending by until from the
// start (0: no end), for keepers probing together: their flows share the
// edge's link only while all of them run, and one that gets more than
// its share ends early and hands its share to the others, whose later
// intervals would count it twice. A window early in the probe, the same
// for all, is one they all fill.
func MeterUntil(arrivals []Arrival, interval, until time.Duration) (Throughput, error) {
	if interval <= 0 {
		interval = DefaultInterval
	}
	var t Throughput
	if len(arrivals) == 0 {
		return t, ErrTooShort
	}
	last := arrivals[len(arrivals)-1].At
	t.Duration = last
	full := int(last / interval) // intervals that ended before the last arrival
	if until > 0 {
		full = min(full, int(until/interval))
	}
	bins := make([]int64, full)
	for i, a := range arrivals {
		if i > 0 && a.At < arrivals[i-1].At {
			return Throughput{}, fmt.Errorf("bandwidth: arrival %d at %s before the previous one", i, a.At)
		}
		if a.At < 0 || a.Bytes < 0 {
			return Throughput{}, fmt.Errorf("bandwidth: arrival %d of %d bytes at %s", i, a.Bytes, a.At)
		}
		t.Bytes += a.Bytes
		if b := int(a.At / interval); b < full {
			bins[b] += a.Bytes
		}
	}
	t.Rates = make([]float64, full)
	for i, b := range bins {
		t.Rates[i] = mbit(b, interval)
	}
	ramp := max(1, (full*rampShare+99)/100)
	steady := full - ramp
	if steady < minSteady {
		return t, fmt.Errorf("%w: %d full intervals of %s, want at least %d", ErrTooShort, full, interval, ramp+minSteady)
	}
	from, to := time.Duration(ramp)*interval, time.Duration(full)*interval
	first, end := -1, -1
	var sum int64
	for i, a := range arrivals {
		if a.At < from || a.At >= to {
			continue
		}
		if first < 0 {
			first = i
		} else {
			sum += a.Bytes
		}
		end = i
	}
	// Arrivals must span half the window at least, or the chunks are too
	// coarse for it.
	if first < 0 || arrivals[end].At-arrivals[first].At < (to-from)/2 {
		return t, fmt.Errorf("%w: arrivals too sparse in the steady %s", ErrTooShort, to-from)
	}
	t.Intervals = steady
	t.Mbit = mbit(sum, arrivals[end].At-arrivals[first].At)
	return t, nil
}

func mbit(bytes int64, d time.Duration) float64 {
	return float64(bytes) * 8 / d.Seconds() / 1e6
}
