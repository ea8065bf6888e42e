package proofs

import (
	"encoding/hex"

	"github.com/ipfs/go-cid"
)

// ReceiptJSON is a receipt as the CLI and the HTTP API show it: peer IDs
// and CIDs in their usual string forms, bytes in hex. It is for display,
// not evidence: the envelope is the signed receipt.
type ReceiptJSON struct {
	CID          string           `json:"cid"`
	Network      string           `json:"network"`
	Epoch        uint64           `json:"epoch"`
	Round        uint64           `json:"round"`
	Keeper       string           `json:"keeper"`
	Edge         string           `json:"edge"`
	Kind         Kind             `json:"kind"`
	Challenge    string           `json:"challenge"`
	Attempt      uint32           `json:"attempt"`
	Outcome      Result           `json:"outcome"`
	Reason       string           `json:"reason"`
	Measurements map[string]int64 `json:"measurements"`
	Evidence     string           `json:"evidence,omitempty"`
	Attestation  string           `json:"attestation,omitempty"`
}

// ReceiptView returns the JSON view of receipt r named id.
func ReceiptView(id cid.Cid, r Receipt) ReceiptJSON {
	m := r.Measurements
	if m == nil {
		m = map[string]int64{} // {} rather than null, for scripts
	}
	return ReceiptJSON{
		CID:          cidString(id),
		Network:      r.Network,
		Epoch:        r.Epoch,
		Round:        r.Round,
		Keeper:       r.Keeper.String(),
		Edge:         r.Edge.String(),
		Kind:         r.Kind,
		Challenge:    cidString(r.Challenge),
		Attempt:      r.Attempt,
		Outcome:      r.Result,
		Reason:       r.Reason,
		Measurements: m,
		Evidence:     hex.EncodeToString(r.Evidence),
		Attestation:  hex.EncodeToString(r.Attestation),
	}
}

// cidString is c.String(), but "" for an undefined CID rather than
// "b", which is not a CID.
func cidString(c cid.Cid) string {
	if !c.Defined() {
		return ""
	}
	return c.String()
}
