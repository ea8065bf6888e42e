package proofs

// EvidenceChecker checks the evidence of a kind's receipts, for disputes:
// it is how a ledger tells a keeper that verified an edge's answer from
// one that signed a pass without it. A kind's evidence is whatever its
// Verifier put in Outcome.Evidence.
type EvidenceChecker interface {
	// Kind is the resource kind whose receipts it checks.
	Kind() Kind
	// CheckEvidence returns nil when r.Evidence shows that r's edge
	// answered c (the challenge r names, at r's attempt), and an error
	// saying what is wrong otherwise. The caller has checked that r is a
	// receipt of c.
	CheckEvidence(c Challenge, r Receipt) error
}
