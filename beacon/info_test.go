package beacon

import (
	"bytes"
	"encoding/json"
	"os"
	"path/filepath"
	"reflect"
	"strings"
	"testing"

	"github.com/drand/drand/v2/common/chain"
)

func TestParseInfoJSONGolden(t *testing.T) {
	for _, file := range goldenInfoFiles() {
		t.Run(file, func(t *testing.T) {
			data, err := os.ReadFile(filepath.Join("testdata", file))
			if err != nil {
				t.Fatal(err)
			}
			info, err := ParseInfoJSON(data)
			if err != nil {
				t.Fatal(err)
			}
			// drand's own decoder must agree on the hash.
			ci, err := chain.InfoFromJSON(bytes.NewReader(data))
			if err != nil {
				t.Fatal(err)
			}
			if got, want := info.HashString(), ci.HashString(); got != want {
				t.Fatalf("hash %s, drand computes %s", got, want)
			}
			// Round trip, byte for byte: the files are in drand's compact form.
			out, err := json.Marshal(info)
			if err != nil {
				t.Fatal(err)
			}
			if !bytes.Equal(out, bytes.TrimSpace(data)) {
				t.Fatalf("MarshalJSON:\n%s\nwant\n%s", out, data)
			}
			again, err := ParseInfoJSON(out)
			if err != nil {
				t.Fatal(err)
			}
			if !reflect.DeepEqual(again, info) {
				t.Fatalf("round trip: %+v, want %+v", again, info)
			}
		})
	}
}

func TestParseInfoJSONMatchesBuiltins(t *testing.T) {
	for file, want := range map[string]Info{"default_info.json": Default(), "quicknet_info.json": Quicknet()} {
		if got := readGoldenInfo(t, file); !reflect.DeepEqual(got, want) {
			t.Errorf("%s: %+v, want %+v", file, got, want)
		}
	}
}

func TestParseInfoJSONDrandDefaults(t *testing.T) {
	// Old drand relays omit schemeID and beaconID for the default chain.
	in := `{"public_key":"868f005eb8e6e4ca0a47c8a77ceaa5309a47978a7c71bc5cce96366b5d7a569937c529eeda66c7293784a9402801af31","period":30,"genesis_time":1595431050,"hash":"8990e7a9aaed2ffed73dbd7092123d6f289930540d7651336225dc172e51b2ce","groupHash":"176f93498eac9ca337150b46d21dd58673ea4e3581185f869672e59fa4cb390a"}`
	got, err := ParseInfoJSON([]byte(in))
	if err != nil {
		t.Fatal(err)
	}
	if !reflect.DeepEqual(got, Default()) {
		t.Fatalf("%+v, want %+v", got, Default())
	}
}

func TestParseInfoJSONRefuses(t *testing.T) {
	good, err := os.ReadFile(filepath.Join("testdata", "quicknet_info.json"))
	if err != nil {
		t.Fatal(err)
	}
	edit := func(old, new string) []byte {
		if !bytes.Contains(good, []byte(old)) {
			t.Fatalf("%q not in the golden file", old)
		}
		return bytes.Replace(good, []byte(old), []byte(new), 1)
	}
	cases := []struct {
		name, in, reason string
	}{
		{"hash of another chain", string(edit(quicknetHash, defaultHash)), "does not match"},
		{"one hash digit off", string(edit(`"hash":"52`, `"hash":"53`)), "does not match"},
		{"period changed", string(edit(`"period":3,`, `"period":4,`)), "does not match"},
		{"genesis changed", string(edit(`1692803367`, `1692803368`)), "does not match"},
		{"beacon ID changed", string(edit(`"quicknet"`, `"quicknet2"`)), "does not match"},
		{"beacon ID dropped", string(edit(`"quicknet"`, `""`)), "does not match"},
		// drand's hash does not cover the scheme; the built-in chain does.
		{"scheme swapped", string(edit(`bls-unchained-g1-rfc9380`, `bls-unchained-on-g1`)), "that chain uses"},
		{"unsupported scheme", string(edit(`bls-unchained-g1-rfc9380`, `bls-bn254-unchained-on-g1`)), "unsupported"},
		{"unknown scheme", string(edit(`bls-unchained-g1-rfc9380`, `rot13`)), "unsupported"},
		{"key of the wrong group", string(edit(`"bls-unchained-g1-rfc9380"`, `"pedersen-bls-chained"`)), "public key is 96 bytes"},
		{"bad hex", string(edit(`"hash":"52`, `"hash":"zz`)), "hash"},
		{"no hash", string(edit(`"hash":"`+quicknetHash+`",`, ``)), "hash is missing"},
		{"no public key", string(edit(`"public_key":"`+quicknetPublicKey+`",`, ``)), "public_key is missing"},
		{"no group hash", string(edit(`"groupHash":"`+quicknetGroupHash+`",`, ``)), "groupHash is missing"},
		{"zero period", string(edit(`"period":3,`, `"period":0,`)), "period is zero"},
		{"negative period", string(edit(`"period":3,`, `"period":-3,`)), "decode"},
		{"trailing data", string(good) + "{}", "trailing"},
		{"trailing bracket", string(good) + "]", "trailing"},
		{"not JSON", "period: 3", "decode"},
		{"empty", "", "decode"},
		{"too large", `{"public_key":"` + strings.Repeat("00", maxInfoJSON) + `"}`, "more than"},
	}
	for _, c := range cases {
		t.Run(c.name, func(t *testing.T) {
			_, err := ParseInfoJSON([]byte(c.in))
			if err == nil || !strings.Contains(err.Error(), c.reason) || !strings.HasPrefix(err.Error(), "beacon: ") {
				t.Fatalf("got %v, want a beacon error about %q", err, c.reason)
			}
		})
	}
}

func TestMarshalJSONRefusesInconsistentInfo(t *testing.T) {
	i := Quicknet()
	i.GenesisTime++
	if _, err := json.Marshal(i); err == nil || !strings.Contains(err.Error(), "does not match") {
		t.Fatalf("got %v, want a hash mismatch", err)
	}
	// Without a pinned hash, MarshalJSON computes it.
	i.Hash = nil
	out, err := json.Marshal(i)
	if err != nil {
		t.Fatal(err)
	}
	got, err := ParseInfoJSON(out)
	if err != nil {
		t.Fatal(err)
	}
	if got.GenesisTime != i.GenesisTime || bytes.Equal(got.Hash, Quicknet().Hash) {
		t.Fatalf("round trip of a new chain: %+v", got)
	}
}

func TestInfoJSONField(t *testing.T) {
	// Info inside another JSON document: drand's format both ways, checked
	// on the way in, and the zero Info as null.
	type config struct {
		Chain Info `json:"chain"`
		Spare Info `json:"spare"`
	}
	out, err := json.Marshal(config{Chain: Quicknet()})
	if err != nil {
		t.Fatal(err)
	}
	if !strings.Contains(string(out), `"hash":"`+quicknetHash+`"`) || !strings.Contains(string(out), `"spare":null`) {
		t.Fatalf("unexpected encoding %s", out)
	}
	var got config
	if err := json.Unmarshal(out, &got); err != nil {
		t.Fatal(err)
	}
	if !reflect.DeepEqual(got.Chain, Quicknet()) || !reflect.DeepEqual(got.Spare, Info{}) {
		t.Fatalf("round trip: %+v", got)
	}
	bad := strings.Replace(string(out), `"period":3`, `"period":4`, 1)
	if err := json.Unmarshal([]byte(bad), &got); err == nil || !strings.Contains(err.Error(), "does not match") {
		t.Fatalf("tampered chain info: got %v, want a hash mismatch", err)
	}
}

func FuzzParseInfoJSON(f *testing.F) {
	for _, file := range goldenInfoFiles() {
		data, err := os.ReadFile(filepath.Join("testdata", file))
		if err != nil {
			f.Fatal(err)
		}
		f.Add(data)
	}
	f.Add([]byte(`{"public_key":"c0","period":1,"genesis_time":-1,"hash":"00","groupHash":"00","schemeID":"pedersen-bls-chained"}`))
	f.Add([]byte(`{}`))
	f.Fuzz(func(t *testing.T, data []byte) {
		info, err := ParseInfoJSON(data)
		if err != nil {
			return
		}
		// Whatever parses is consistent, verifiable and re-encodes to itself.
		if _, err := NewVerifier(info); err != nil {
			t.Fatalf("parsed info refused by NewVerifier: %v", err)
		}
		out, err := json.Marshal(info)
		if err != nil {
			t.Fatal(err)
		}
		again, err := ParseInfoJSON(out)
		if err != nil {
			t.Fatal(err)
		}
		if !reflect.DeepEqual(again, info) {
			t.Fatalf("round trip: %+v, want %+v", again, info)
		}
	})
}
