package proofs

import (
	"encoding/json"
	"testing"

	"github.com/aropeer/aropeer/wire"
)

func TestReceiptViewJSON(t *testing.T) {
	r := testReceipt(t)
	_, id, err := wire.MarshalCID(r)
	if err != nil {
		t.Fatal(err)
	}
	b, err := json.Marshal(ReceiptView(id, r))
	if err != nil {
		t.Fatal(err)
	}
	var got map[string]any
	if err := json.Unmarshal(b, &got); err != nil {
		t.Fatal(err)
	}
	want := map[string]any{
		"cid":          id.String(),
		"network":      "devnet",
		"epoch":        float64(7),
		"round":        float64(701),
		"keeper":       r.Keeper.String(),
		"edge":         r.Edge.String(),
		"kind":         "storage",
		"challenge":    r.Challenge.String(),
		"attempt":      float64(1),
		"outcome":      "fail",
		"reason":       r.Reason,
		"measurements": map[string]any{"leaves": float64(8), "rtt_ms": float64(42)},
		"evidence":     "0101010101010101010101010101010101010101010101010101010101010101",
		"attestation":  "696e7365637572652d646576206174746573746174696f6e",
	}
	if len(got) != len(want) {
		t.Errorf("keys: got %v", got)
	}
	for k, w := range want {
		if g, _ := json.Marshal(got[k]); string(g) != mustJSON(t, w) {
			t.Errorf("%s = %s, want %s", k, g, mustJSON(t, w))
		}
	}

	// A bare pass: no evidence or attestation keys, reason "", measurements {}.
	r.Result, r.Reason, r.Measurements, r.Evidence, r.Attestation = Pass, "", nil, nil, nil
	b, err = json.Marshal(ReceiptView(id, r))
	if err != nil {
		t.Fatal(err)
	}
	got = nil
	if err := json.Unmarshal(b, &got); err != nil {
		t.Fatal(err)
	}
	if _, ok := got["evidence"]; ok {
		t.Errorf("bare pass has evidence: %s", b)
	}
	if _, ok := got["attestation"]; ok {
		t.Errorf("bare pass has attestation: %s", b)
	}
	if m, ok := got["measurements"].(map[string]any); !ok || len(m) != 0 {
		t.Errorf("bare pass measurements = %v, want {}", got["measurements"])
	}
	if reason, ok := got["reason"]; !ok || reason != "" {
		t.Errorf("bare pass reason = %v, want \"\"", reason)
	}
}

func mustJSON(t testing.TB, v any) string {
	t.Helper()
	b, err := json.Marshal(v)
	if err != nil {
		t.Fatal(err)
	}
	return string(b)
}
