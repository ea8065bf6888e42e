package challenge

import (
	"testing"

	"github.com/aropeer/aropeer/beacon"
)

// TestSeederIsSeed checks that saving and restoring the hash state gives
// beacon.Seed's bytes, on a beacon with its randomness and on one that
// has only a signature.
func TestSeederIsSeed(t *testing.T) {
	keeper, edge := []byte(syntheticID("keeper")), []byte(syntheticID("edge"))
	b := syntheticBeacon(7)
	noRand := b
	noRand.Randomness = nil
	for _, bc := range []beacon.Beacon{b, noRand} {
		s := newSeeder()
		s.start(bc, challengeDomain)
		s.part(keeper)
		ks := s.save(nil)
		s.part(edge)
		es := s.save(nil)
		for _, kind := range []string{"liveness", "storage", "bandwidth", "compute", ""} {
			s.load(es)
			s.part([]byte(kind))
			if got, want := s.seed(), beacon.Seed(bc, challengeDomain, keeper, edge, []byte(kind)); got != want {
				t.Errorf("%q: seeder %x, Seed %x", kind, got, want)
			}
		}
		s.load(ks)
		if got, want := s.seed(), beacon.Seed(bc, challengeDomain, keeper); got != want {
			t.Errorf("restored keeper state: seeder %x, Seed %x", got, want)
		}
	}
}
