package challenge

import (
	"fmt"
	"math"
	"math/bits"
	"time"

	"github.com/libp2p/go-libp2p/core/peer"

	"github.com/aropeer/aropeer/proofs"
)

// Defaults a network config starts from.
const (
	DefaultCommitteeSize = 3
	DefaultRetries       = 3
)

// Keeper is a staked keeper: it sits on committees in proportion to its
// stake.
type Keeper struct {
	ID    peer.ID
	Stake uint64
}

// Params are the network's challenge rules. Every peer must hold the same
// ones: the committees and the schedule are pure functions of them and
// of the beacon.
type Params struct {
	Network     string
	EpochRounds uint64 // rounds per epoch
	// CommitteeSize is k, the keepers on each edge's committee.
	CommitteeSize int
	// Probability is the chance per round that a committee keeper
	// challenges an edge on a kind, in [0, 1]. A kind absent is never
	// challenged.
	Probability map[proofs.Kind]float64
	// Deadline is how long an edge has to answer a challenge of a kind.
	Deadline map[proofs.Kind]time.Duration
	// Retries is how many times a timed-out challenge is retried, one
	// round apart, before it fails.
	Retries uint32
	// Window is how many rounds after its round a challenge, or any of
	// its retries, is still accepted. It must leave room for every retry:
	// Window >= Retries+1.
	Window uint64
	// Keepers is the genesis keeper list; the settlement issue moves it
	// to the ledger.
	Keepers []Keeper
	// ProbeRounds is how many rounds a challenge of a kind the committee
	// runs Together may take from its round. An edge is due for such a
	// challenge only in every ProbeRounds-th round (its slots, offset per
	// edge), at ProbeRounds times the probability, so that the rate is
	// the same and two probes of one edge never overlap and split its
	// link. 0 or 1: every round.
	ProbeRounds uint64
}

// Validate checks every field, naming the field and the bad value.
func (p Params) Validate() error {
	if err := checkNetwork(p.Network); err != nil {
		return err
	}
	if p.EpochRounds == 0 {
		return fmt.Errorf("challenge: EpochRounds is 0: an epoch needs at least one round")
	}
	if p.CommitteeSize < 1 {
		return fmt.Errorf("challenge: CommitteeSize %d: want at least 1 (default %d)", p.CommitteeSize, DefaultCommitteeSize)
	}
	if err := p.checkKinds(); err != nil {
		return err
	}
	if p.Window < uint64(p.Retries)+1 {
		return fmt.Errorf("challenge: Window %d rounds leaves no room for %d retries: want Window >= Retries+1 = %d", p.Window, p.Retries, uint64(p.Retries)+1)
	}
	return checkKeepers(p.Keepers)
}

// checkKinds checks Probability and Deadline: known kinds, chances in
// [0, 1], and a positive deadline for every kind that can be challenged.
func (p Params) checkKinds() error {
	challenged := 0
	for k, v := range p.Probability {
		if _, err := proofs.ParseKind(string(k)); err != nil {
			return fmt.Errorf("challenge: Probability[%q]: %w", k, err)
		}
		// The negated test also catches NaN.
		if !(v >= 0 && v <= 1) {
			return fmt.Errorf("challenge: Probability[%s] = %v: want a chance per round in [0, 1]", k, v)
		}
		if v == 0 {
			continue
		}
		challenged++
		if d := p.Deadline[k]; d <= 0 {
			return fmt.Errorf("challenge: Deadline[%s] = %v: a kind challenged with probability %v needs a positive deadline", k, d, v)
		}
	}
	if challenged == 0 {
		return fmt.Errorf("challenge: Probability %v challenges no kind: set a chance per round above 0 for at least one", p.Probability)
	}
	for k, d := range p.Deadline {
		if _, err := proofs.ParseKind(string(k)); err != nil {
			return fmt.Errorf("challenge: Deadline[%q]: %w", k, err)
		}
		if d < 0 {
			return fmt.Errorf("challenge: Deadline[%s] = %v: want a positive duration", k, d)
		}
	}
	return nil
}

// checkNetwork applies the rule proofs applies to the network name of
// every message, so a config that could never sign one fails at start.
func checkNetwork(n string) error {
	if n == "" || len(n) > proofs.MaxNetworkLen {
		return fmt.Errorf("challenge: Network %q: want 1 to %d characters", n, proofs.MaxNetworkLen)
	}
	for i := 0; i < len(n); i++ {
		c := n[i]
		if !('a' <= c && c <= 'z' || 'A' <= c && c <= 'Z' || '0' <= c && c <= '9' || c == '-' || c == '_' || c == '.') {
			return fmt.Errorf("challenge: Network %q: want letters, digits, '-', '_' or '.'", n)
		}
	}
	return nil
}

// checkKeepers wants at least one keeper, each a valid peer ID once, with
// a positive stake, and a total stake that fits in a uint64 so that
// stake fractions can be computed without overflow.
func checkKeepers(keepers []Keeper) error {
	if len(keepers) == 0 {
		return fmt.Errorf("challenge: Keepers is empty: a network needs at least one staked keeper")
	}
	seen := make(map[peer.ID]int, len(keepers))
	var total uint64
	for i, k := range keepers {
		if k.ID == "" {
			return fmt.Errorf("challenge: Keepers[%d] has no ID", i)
		}
		if _, err := peer.IDFromBytes([]byte(k.ID)); err != nil {
			return fmt.Errorf("challenge: Keepers[%d]: ID %q: %w", i, k.ID, err)
		}
		if j, dup := seen[k.ID]; dup {
			return fmt.Errorf("challenge: Keepers[%d]: %s is also Keepers[%d]: list each keeper once", i, k.ID, j)
		}
		seen[k.ID] = i
		if k.Stake == 0 {
			return fmt.Errorf("challenge: Keepers[%d]: %s has stake 0: want a positive stake", i, k.ID)
		}
		var carry uint64
		if total, carry = bits.Add64(total, k.Stake, 0); carry != 0 {
			return fmt.Errorf("challenge: Keepers[%d]: total stake overflows %d", i, uint64(math.MaxUint64))
		}
	}
	return nil
}

// EpochOf returns the epoch of round: rounds 1..E are epoch 0, E+1..2E
// epoch 1, and so on. Round 0 (before genesis) is epoch 0, as is every
// round under params without EpochRounds.
func (p Params) EpochOf(round uint64) uint64 {
	if round == 0 || p.EpochRounds == 0 {
		return 0
	}
	return (round - 1) / p.EpochRounds
}

// FirstRound returns the first round of epoch, whose beacon draws the
// epoch's committees.
func (p Params) FirstRound(epoch uint64) uint64 {
	return epoch*p.EpochRounds + 1
}
