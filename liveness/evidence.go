package liveness

import (
	"errors"
	"fmt"

	"github.com/aropeer/aropeer/proofs"
)

// MaxEvidenceSize caps a liveness receipt's evidence, the heartbeat
// envelope the keeper read: a quarter of the receipt's cap, so that the
// receipt's other fields always fit.
const MaxEvidenceSize = MaxHeartbeatSize

// A heartbeat is read whole into the evidence, so its cap must fit.
var _ [proofs.MaxReceiptSize/4 - MaxEvidenceSize]struct{}

// ErrBadEvidence means a receipt's evidence does not show that the edge
// answered the challenge.
var ErrBadEvidence = errors.New("liveness: evidence does not answer the challenge")

// EvidenceChecker checks, for disputes, that a liveness receipt's
// evidence is the edge's heartbeat for its challenge: what Verifier
// records on a pass.
type EvidenceChecker struct{}

var _ proofs.EvidenceChecker = EvidenceChecker{}

// NewEvidenceChecker returns an EvidenceChecker.
func NewEvidenceChecker() EvidenceChecker { return EvidenceChecker{} }

// Kind returns proofs.KindLiveness.
func (EvidenceChecker) Kind() proofs.Kind { return proofs.KindLiveness }

// CheckEvidence opens r.Evidence as a heartbeat and checks that the edge
// of r and c signed it and that it answers c, with the checks Verifier
// makes. Errors match ErrBadEvidence.
func (EvidenceChecker) CheckEvidence(c proofs.Challenge, r proofs.Receipt) error {
	switch {
	case c.Kind != proofs.KindLiveness || r.Kind != proofs.KindLiveness:
		return fmt.Errorf("%w: receipt of kind %q for a challenge of kind %q, want %q", ErrBadEvidence, r.Kind, c.Kind, proofs.KindLiveness)
	case r.Edge != c.Edge:
		return fmt.Errorf("%w: receipt on edge %s for a challenge to %s", ErrBadEvidence, r.Edge, c.Edge)
	case r.Attempt != c.Attempt:
		return fmt.Errorf("%w: receipt of attempt %d for attempt %d", ErrBadEvidence, r.Attempt, c.Attempt)
	case len(r.Evidence) == 0:
		return fmt.Errorf("%w: no heartbeat", ErrBadEvidence)
	}
	hb, signer, err := openHeartbeat(r.Evidence)
	if err != nil {
		return fmt.Errorf("%w: heartbeat does not open: %w", ErrBadEvidence, err)
	}
	if signer != c.Edge {
		return fmt.Errorf("%w: heartbeat signed by %s, not the edge %s", ErrBadEvidence, signer, c.Edge)
	}
	if reason := hb.mismatch(HeartbeatFor(c)); reason != "" {
		return fmt.Errorf("%w: %s", ErrBadEvidence, reason)
	}
	return nil
}
