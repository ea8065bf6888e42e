package challenge

import (
	"fmt"
	"math"
	"strings"
	"testing"
	"time"

	"github.com/aropeer/aropeer/proofs"
)

// validParams are small but complete network rules.
func validParams() Params {
	p := Params{
		Network:       "testnet",
		EpochRounds:   10,
		CommitteeSize: DefaultCommitteeSize,
		Probability: map[proofs.Kind]float64{
			proofs.KindLiveness: 1, proofs.KindStorage: 0.3, proofs.KindBandwidth: 0.05, proofs.KindCompute: 0,
		},
		Deadline: map[proofs.Kind]time.Duration{
			proofs.KindLiveness: time.Second, proofs.KindStorage: 2 * time.Second, proofs.KindBandwidth: 10 * time.Second,
		},
		Retries: DefaultRetries,
		Window:  DefaultRetries + 1,
	}
	for i := range 6 {
		p.Keepers = append(p.Keepers, Keeper{ID: syntheticID(fmt.Sprint("keeper ", i)), Stake: uint64(100 * (i + 1))})
	}
	return p
}

func TestParamsValidate(t *testing.T) {
	if err := validParams().Validate(); err != nil {
		t.Fatalf("valid params: %v", err)
	}
	cases := []struct {
		name   string
		change func(*Params)
		want   string // in the error: the field and the bad value
	}{
		{"no network", func(p *Params) { p.Network = "" }, `Network ""`},
		{"network with a slash", func(p *Params) { p.Network = "a/b" }, `Network "a/b"`},
		{"network too long", func(p *Params) { p.Network = strings.Repeat("n", proofs.MaxNetworkLen+1) }, "Network"},
		{"no epoch rounds", func(p *Params) { p.EpochRounds = 0 }, "EpochRounds is 0"},
		{"committee of 0", func(p *Params) { p.CommitteeSize = 0 }, "CommitteeSize 0"},
		{"negative committee", func(p *Params) { p.CommitteeSize = -2 }, "CommitteeSize -2"},
		{"probability above 1", func(p *Params) { p.Probability[proofs.KindStorage] = 1.5 }, "Probability[storage] = 1.5"},
		{"negative probability", func(p *Params) { p.Probability[proofs.KindStorage] = -0.1 }, "Probability[storage] = -0.1"},
		{"NaN probability", func(p *Params) { p.Probability[proofs.KindStorage] = math.NaN() }, "Probability[storage] = NaN"},
		{"unknown kind", func(p *Params) { p.Probability["gpu"] = 0.5 }, `Probability["gpu"]`},
		{"nothing challenged", func(p *Params) { p.Probability = map[proofs.Kind]float64{proofs.KindLiveness: 0} }, "challenges no kind"},
		{"no probabilities", func(p *Params) { p.Probability = nil }, "challenges no kind"},
		{"challenged kind without deadline", func(p *Params) { delete(p.Deadline, proofs.KindBandwidth) }, "Deadline[bandwidth] = 0s"},
		{"negative deadline", func(p *Params) { p.Deadline[proofs.KindCompute] = -time.Second }, "Deadline[compute] = -1s"},
		{"deadline of unknown kind", func(p *Params) { p.Deadline["gpu"] = time.Second }, `Deadline["gpu"]`},
		{"window too short", func(p *Params) { p.Window = uint64(p.Retries) }, "Window 3"},
		{"no keepers", func(p *Params) { p.Keepers = nil }, "Keepers is empty"},
		{"empty keeper ID", func(p *Params) { p.Keepers[2].ID = "" }, "Keepers[2]"},
		{"bad keeper ID", func(p *Params) { p.Keepers[1].ID = "not a multihash" }, "Keepers[1]"},
		{"duplicate keeper", func(p *Params) { p.Keepers[4].ID = p.Keepers[0].ID }, "Keepers[4]"},
		{"zero stake", func(p *Params) { p.Keepers[3].Stake = 0 }, "Keepers[3]"},
		{"stake overflow", func(p *Params) { p.Keepers[5].Stake = math.MaxUint64 }, "Keepers[5]: total stake overflows"},
	}
	for _, c := range cases {
		t.Run(c.name, func(t *testing.T) {
			p := validParams()
			c.change(&p)
			err := p.Validate()
			if err == nil {
				t.Fatal("Validate accepted it")
			}
			if !strings.Contains(err.Error(), c.want) || !strings.HasPrefix(err.Error(), "challenge: ") {
				t.Errorf("error %q does not start with \"challenge: \" and say %q", err, c.want)
			}
		})
	}
}

func TestEpochs(t *testing.T) {
	p := Params{EpochRounds: 100}
	for _, c := range []struct{ round, epoch uint64 }{
		{0, 0}, {1, 0}, {100, 0}, {101, 1}, {200, 1}, {201, 2}, {math.MaxUint64, (math.MaxUint64 - 1) / 100},
	} {
		if got := p.EpochOf(c.round); got != c.epoch {
			t.Errorf("EpochOf(%d) = %d, want %d", c.round, got, c.epoch)
		}
	}
	for e := range uint64(50) {
		first := p.FirstRound(e)
		if p.EpochOf(first) != e || (first > 1 && p.EpochOf(first-1) != e-1) {
			t.Errorf("FirstRound(%d) = %d is not where epoch %d begins", e, first, e)
		}
	}
	if got := (Params{}).EpochOf(5); got != 0 {
		t.Errorf("EpochOf without EpochRounds = %d, want 0, not a panic", got)
	}
}
