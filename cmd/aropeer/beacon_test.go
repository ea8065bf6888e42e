package main

import (
	"encoding/json"
	"os"
	"path/filepath"
	"strconv"
	"strings"
	"testing"
)

// golden reads a real drand beacon recorded in the beacon package.
func golden(t *testing.T, name string) (round uint64, sig, prev string) {
	t.Helper()
	data, err := os.ReadFile(filepath.Join("..", "..", "beacon", "testdata", name))
	if err != nil {
		t.Fatal(err)
	}
	var b struct {
		Round     uint64 `json:"round"`
		Signature string `json:"signature"`
		Previous  string `json:"previous_signature"`
	}
	if err := json.Unmarshal(data, &b); err != nil {
		t.Fatal(err)
	}
	return b.Round, b.Signature, b.Previous
}

func TestBeaconVerifyCommand(t *testing.T) {
	const quicknet = "52db9ba70e0cc0f6eaf7803dd07447a1f5477735fd3f661792ba94600c84e971"
	const defaultChain = "8990e7a9aaed2ffed73dbd7092123d6f289930540d7651336225dc172e51b2ce"
	qRound, qSig, _ := golden(t, "quicknet_1000.json")
	dRound, dSig, dPrev := golden(t, "default_2634945.json")
	flipped := "0" + qSig[1:]
	if flipped == qSig {
		flipped = "1" + qSig[1:]
	}
	r := strconv.FormatUint
	infoFile := filepath.Join("..", "..", "beacon", "testdata", "default_info.json")

	tests := []struct {
		name string
		args []string
		code int
		want string
	}{
		{"quicknet round verifies", []string{"--chain-hash", quicknet, "--round", r(qRound, 10), "--signature", qSig}, 0, "verifies"},
		{"default round verifies", []string{"--chain-hash", defaultChain, "--round", r(dRound, 10), "--signature", dSig, "--previous-signature", dPrev}, 0, "verifies"},
		{"chain info file", []string{"--chain-info", infoFile, "--round", r(dRound, 10), "--signature", dSig, "--previous-signature", dPrev}, 0, "verifies"},
		{"flipped signature", []string{"--chain-hash", quicknet, "--round", r(qRound, 10), "--signature", flipped}, 1, "does not verify"},
		{"wrong round", []string{"--chain-hash", quicknet, "--round", r(qRound+1, 10), "--signature", qSig}, 1, "does not verify"},
		{"other chain", []string{"--chain-hash", defaultChain, "--round", r(qRound, 10), "--signature", qSig, "--previous-signature", dPrev}, 1, "does not verify"},
		{"missing previous signature", []string{"--chain-hash", defaultChain, "--round", r(dRound, 10), "--signature", dSig}, 1, "without previous signature"},
		{"unknown chain", []string{"--chain-hash", strings.Repeat("ab", 32), "--round", "1", "--signature", qSig}, 2, "not a chain aropeer knows"},
		{"bad hex", []string{"--chain-hash", quicknet, "--round", "1", "--signature", "xyz"}, 2, "want the round's signature in hex"},
		{"no round", []string{"--chain-hash", quicknet, "--signature", qSig}, 2, "--round is required"},
		{"info file of another chain", []string{"--chain-info", infoFile, "--chain-hash", quicknet, "--round", "1", "--signature", qSig}, 2, "not --chain-hash"},
	}
	for _, tc := range tests {
		t.Run(tc.name, func(t *testing.T) {
			code, stdout, stderr := aropeer(t, nil, append([]string{"beacon", "verify"}, tc.args...)...)
			if code != tc.code {
				t.Fatalf("exit %d; want %d\nstdout: %s\nstderr: %s", code, tc.code, stdout, stderr)
			}
			out := stdout + stderr
			if !strings.Contains(out, tc.want) || strings.Count(strings.TrimSpace(out), "\n") != 0 {
				t.Errorf("output %q; want one line with %q", out, tc.want)
			}
		})
	}
}

func TestBeaconInfoCommand(t *testing.T) {
	code, stdout, stderr := aropeer(t, nil, "beacon", "info", "--json")
	if code != 0 {
		t.Fatalf("exit %d: %s", code, stderr)
	}
	var info struct {
		Hash     string `json:"hash"`
		SchemeID string `json:"schemeID"`
		Period   int    `json:"period"`
	}
	if err := json.Unmarshal([]byte(stdout), &info); err != nil {
		t.Fatalf("not drand's chain info JSON: %v\n%s", err, stdout)
	}
	if info.SchemeID != "bls-unchained-g1-rfc9380" || info.Period != 1 || len(info.Hash) != 64 {
		t.Errorf("devnet chain info = %+v", info)
	}
	if code, _, stderr := aropeer(t, nil, "beacon", "info", "--network", "mainnet"); code != 2 || !strings.Contains(stderr, "unknown network") {
		t.Errorf("unknown network: exit %d, %q", code, stderr)
	}
}
