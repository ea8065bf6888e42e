package beacon

import (
	"encoding/hex"
	"encoding/json"
	"os"
	"path/filepath"
	"testing"
)

type seedVectorJSON struct {
	Name       string   `json:"name"`
	Beacon     string   `json:"beacon"`
	Randomness string   `json:"randomness"`
	Domain     string   `json:"domain"`
	Parts      []string `json:"parts"`
	Seed       string   `json:"seed"`
}

func TestSeedVectors(t *testing.T) {
	data, err := os.ReadFile(filepath.Join("testdata", "seed_vectors.json"))
	if err != nil {
		t.Fatal(err)
	}
	var file struct {
		Vectors []seedVectorJSON `json:"vectors"`
	}
	if err := json.Unmarshal(data, &file); err != nil {
		t.Fatal(err)
	}
	if len(file.Vectors) < 10 {
		t.Fatalf("only %d vectors", len(file.Vectors))
	}
	seen := map[string]string{}
	for _, v := range file.Vectors {
		t.Run(v.Name, func(t *testing.T) {
			b := readGoldenBeacon(t, v.Beacon)
			if hex.EncodeToString(b.Randomness) != v.Randomness {
				t.Fatalf("vector randomness %s is not %s's", v.Randomness, v.Beacon)
			}
			parts := make([][]byte, len(v.Parts))
			for i, p := range v.Parts {
				if parts[i], err = hex.DecodeString(p); err != nil {
					t.Fatal(err)
				}
			}
			got := Seed(b, v.Domain, parts...)
			if hex.EncodeToString(got[:]) != v.Seed {
				t.Fatalf("Seed = %x, want %s", got, v.Seed)
			}
			b.Randomness = nil // derived from the signature instead
			if again := Seed(b, v.Domain, parts...); again != got {
				t.Fatalf("Seed without Randomness = %x, want %x", again, got)
			}
			if other, dup := seen[v.Seed]; dup {
				t.Fatalf("same seed as %q", other)
			}
			seen[v.Seed] = v.Name
		})
	}
}

func TestSeedSeparatesFields(t *testing.T) {
	b := readGoldenBeacon(t, "quicknet_1000.json")
	other := readGoldenBeacon(t, "quicknet_10024141.json")
	pairs := []struct {
		name string
		a, b [32]byte
	}{
		{"domain ab part c / domain a part bc", Seed(b, "ab", []byte("c")), Seed(b, "a", []byte("bc"))},
		{"parts a,b / part ab", Seed(b, "x", []byte("a"), []byte("b")), Seed(b, "x", []byte("ab"))},
		{"no part / one empty part", Seed(b, "x"), Seed(b, "x", nil)},
		{"one empty part / two", Seed(b, "x", nil), Seed(b, "x", nil, nil)},
		{"domain x / domain x with NUL", Seed(b, "x"), Seed(b, "x\x00")},
		{"another round", Seed(b, "x", []byte("a")), Seed(other, "x", []byte("a"))},
	}
	for _, p := range pairs {
		if p.a == p.b {
			t.Errorf("%s: same seed %x", p.name, p.a)
		}
	}
}
