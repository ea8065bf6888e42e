package compute

import (
	"fmt"
	"math"
	"time"
)

// Params size a compute spot-check from an edge's claim. Keeper and edge
// must share them (they are network parameters): the edge checks that the
// n a keeper asks for is the one its own claim gives.
type Params struct {
	// Target is how long the claimed class should take for the 2n^3
	// operations of a product: n is chosen for it.
	Target time.Duration
	// MinN and MaxN bound n; MaxN bounds the memory (about 6n^2 bytes)
	// and the time an edge spends on a check.
	MinN, MaxN int
	// Rows is how many rows the keeper checks (m): an edge that computed
	// a share f of the rows passes with probability at most f^Rows.
	Rows int
	// Slack multiplies the time the claim needs: a device slower than
	// its claim by more than Slack misses the deadline.
	Slack float64
	// Overhead is added to every budget for what the claim does not
	// measure: generating A and B, hashing C and moving them, all
	// O(n^2). It bounds how fast a claim the check can tell apart: the
	// product must take the claimed class a fair share of it.
	Overhead time.Duration
}

// Defaults.
const (
	DefaultTarget   = 250 * time.Millisecond
	DefaultMinN     = 64
	DefaultMaxN     = 2048
	DefaultRows     = 8
	DefaultSlack    = 4
	DefaultOverhead = 100 * time.Millisecond
	// MaxRows caps the rows of one check, and so an answer's size.
	MaxRows = 64
	// maxN caps any network's MaxN: 4n^2 bytes of C must fit a frame-free
	// pipe and 31-bit offsets; 16384 is 1 GiB of C.
	maxN = 16384
	// blockN is what n is rounded to.
	blockN = 64
)

// DefaultParams are the defaults above.
func DefaultParams() Params {
	return Params{
		Target: DefaultTarget, MinN: DefaultMinN, MaxN: DefaultMaxN,
		Rows: DefaultRows, Slack: DefaultSlack, Overhead: DefaultOverhead,
	}
}

// Validate returns an error naming the first field that is out of range.
func (p Params) Validate() error {
	switch {
	case p.Target <= 0:
		return fmt.Errorf("compute: Target = %v: want a positive duration", p.Target)
	case p.MinN < blockN || p.MinN%blockN != 0:
		return fmt.Errorf("compute: MinN = %d: want a positive multiple of %d", p.MinN, blockN)
	case p.MaxN < p.MinN || p.MaxN > maxN || p.MaxN%blockN != 0:
		return fmt.Errorf("compute: MaxN = %d: want a multiple of %d from MinN (%d) to %d", p.MaxN, blockN, p.MinN, maxN)
	case p.Rows < 1 || p.Rows > MaxRows || p.Rows > p.MinN:
		return fmt.Errorf("compute: Rows = %d: want 1 to %d, and at most MinN", p.Rows, MaxRows)
	case !(p.Slack >= 1) || math.IsInf(p.Slack, 0):
		return fmt.Errorf("compute: Slack = %v: want a finite factor of at least 1", p.Slack)
	case p.Overhead < 0:
		return fmt.Errorf("compute: Overhead = %v: want zero or more", p.Overhead)
	}
	return nil
}

// Ops is the operation count of an n x n product, 2n^3 (a multiply and an
// add per term), as TOPS figures count them.
func Ops(n int) float64 { return 2 * float64(n) * float64(n) * float64(n) }

// opsPerSecond is a claim of milliTOPS in operations per second.
func opsPerSecond(milliTOPS uint64) float64 { return float64(milliTOPS) * 1e9 }

// N is the matrix size for a claim: the n whose 2n^3 operations take the
// claimed rate about Target, rounded to a multiple of 64 and clamped to
// [MinN, MaxN]. A claim of 0 gives MinN.
func (p Params) N(milliTOPS uint64) int {
	if milliTOPS == 0 {
		return p.MinN
	}
	n := math.Cbrt(p.Target.Seconds() * opsPerSecond(milliTOPS) / 2)
	r := int(math.Round(n/blockN)) * blockN
	return min(max(r, p.MinN), p.MaxN)
}

// Budget is how long an edge claiming milliTOPS has, from receiving the
// task to sending the root, for a product of size n: Slack times what
// the claim needs for Ops(n), plus Overhead. The keeper adds the round
// trip it measured. A claim of 0 has no budget.
func (p Params) Budget(n int, milliTOPS uint64) time.Duration {
	if milliTOPS == 0 {
		return 0
	}
	secs := p.Slack * Ops(n) / opsPerSecond(milliTOPS)
	return time.Duration(secs*float64(time.Second)) + p.Overhead
}
