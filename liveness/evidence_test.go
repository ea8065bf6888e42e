package liveness

import (
	"bytes"
	"crypto/sha256"
	"errors"
	"strings"
	"testing"
	"testing/synctest"

	"github.com/libp2p/go-libp2p/core/crypto"

	"github.com/aropeer/aropeer/proofs"
	"github.com/aropeer/aropeer/wire"
)

// receiptOf is the receipt a keeper signs for outcome out of c.
func receiptOf(t testing.TB, c proofs.Challenge, out proofs.Outcome) proofs.Receipt {
	t.Helper()
	id, err := c.ID()
	if err != nil {
		t.Fatal(err)
	}
	return proofs.Receipt{
		Network: c.Network, Epoch: c.Epoch, Round: c.Round, Keeper: c.Keeper, Edge: c.Edge,
		Kind: c.Kind, Challenge: id, Attempt: c.Attempt, Result: out.Result, Reason: out.Reason,
		Measurements: out.Measurements, Evidence: out.Evidence,
	}
}

// The evidence of a pass the Verifier judged checks, and fits a receipt.
func TestVerifiedEvidenceChecks(t *testing.T) {
	synctest.Test(t, func(t *testing.T) {
		h := newHarness(t, latency)
		c := h.challenge(1)
		out := h.mustVerify(t, c, deadline, honest(h.edgeKey))
		if out.Result != proofs.Pass {
			t.Fatalf("outcome %s (%q), want pass", out.Result, out.Reason)
		}
		r := receiptOf(t, c, out)
		if err := NewEvidenceChecker().CheckEvidence(c, r); err != nil {
			t.Errorf("honest pass: %v", err)
		}
		env, _, err := proofs.SealReceipt(h.keeperKey, r)
		if err != nil {
			t.Fatalf("a receipt carrying the heartbeat does not seal: %v", err)
		}
		if len(env) > proofs.MaxReceiptSize/2 {
			t.Errorf("sealed receipt of %d bytes, want well under the %d-byte cap", len(env), proofs.MaxReceiptSize)
		}

		// A wrong answer is in the evidence of the fail too, and does not check.
		out = h.mustVerify(t, c, deadline, sendHeartbeat(t, h.edgeKey, func(hb *Heartbeat) { hb.Nonce[0] ^= 1 }))
		if out.Result != proofs.Fail || len(out.Evidence) == 0 {
			t.Fatalf("outcome %s with %d bytes of evidence, want a fail with the heartbeat", out.Result, len(out.Evidence))
		}
		if err := NewEvidenceChecker().CheckEvidence(c, receiptOf(t, c, out)); !errors.Is(err, ErrBadEvidence) {
			t.Errorf("evidence of a wrong nonce: %v, want ErrBadEvidence", err)
		}
	})
}

func TestCheckEvidence(t *testing.T) {
	keeperKey, edgeKey, otherKey := testKey(t, 1), testKey(t, 2), testKey(t, 3)
	seed := sha256.Sum256([]byte("round 701 seed"))
	c := proofs.Challenge{
		Network: "aro-devnet", Epoch: 7, Round: 701, Attempt: 1, Kind: proofs.KindLiveness,
		Keeper: peerOf(t, keeperKey), Edge: peerOf(t, edgeKey), Seed: seed[:],
	}
	seal := func(key crypto.PrivKey, change func(*Heartbeat)) []byte {
		t.Helper()
		hb := HeartbeatFor(c)
		change(&hb)
		env, err := SealHeartbeat(key, hb)
		if err != nil {
			t.Fatal(err)
		}
		return env
	}
	same := func(*Heartbeat) {}
	honest := seal(edgeKey, same)
	tampered := bytes.Clone(honest)
	tampered[len(tampered)-1] ^= 1
	otherDomain, _, err := wire.SealMessage(edgeKey, proofs.ChallengeDomain, HeartbeatFor(c))
	if err != nil {
		t.Fatal(err)
	}
	attempt0, otherSeed := c, c
	attempt0.Attempt = 0
	otherSeed.Seed = []byte(strings.Repeat("s", 32))

	for _, tc := range []struct {
		name   string
		change func(*proofs.Receipt)
		why    string // the error says it; "" for none
	}{
		{"honest", func(*proofs.Receipt) {}, ""},
		{"absent", func(r *proofs.Receipt) { r.Evidence = nil }, "no heartbeat"},
		{"garbage", func(r *proofs.Receipt) { r.Evidence = []byte("I am alive") }, "heartbeat does not open"},
		{"a digest, as before", func(r *proofs.Receipt) { d := sha256.Sum256(honest); r.Evidence = d[:] }, "heartbeat does not open"},
		{"tampered", func(r *proofs.Receipt) { r.Evidence = tampered }, "heartbeat does not open"},
		{"other domain", func(r *proofs.Receipt) { r.Evidence = otherDomain }, "heartbeat does not open"},
		{"forged by another peer", func(r *proofs.Receipt) { r.Evidence = seal(otherKey, same) }, "heartbeat signed by " + peerOf(t, otherKey).String()},
		{"signed by the keeper", func(r *proofs.Receipt) { r.Evidence = seal(keeperKey, same) }, "heartbeat signed by " + c.Keeper.String()},
		{"other attempt", func(r *proofs.Receipt) {
			r.Evidence = seal(edgeKey, func(hb *Heartbeat) { *hb = HeartbeatFor(attempt0) })
		}, "heartbeat for attempt 0, want 1"},
		{"other challenge", func(r *proofs.Receipt) {
			r.Evidence = seal(edgeKey, func(hb *Heartbeat) { hb.Nonce = Nonce(otherSeed) })
		}, "heartbeat for nonce"},
		{"other round", func(r *proofs.Receipt) { r.Evidence = seal(edgeKey, func(hb *Heartbeat) { hb.Round++ }) }, "heartbeat for round 702, want 701"},
		{"receipt on another edge", func(r *proofs.Receipt) { r.Edge = peerOf(t, otherKey) }, "receipt on edge"},
		{"receipt of another attempt", func(r *proofs.Receipt) { r.Attempt = 0 }, "receipt of attempt 0 for attempt 1"},
		{"receipt of another kind", func(r *proofs.Receipt) { r.Kind = proofs.KindStorage }, "receipt of kind \"storage\""},
	} {
		t.Run(tc.name, func(t *testing.T) {
			r := receiptOf(t, c, proofs.Outcome{Result: proofs.Pass, Evidence: honest})
			tc.change(&r)
			err := NewEvidenceChecker().CheckEvidence(c, r)
			switch {
			case tc.why == "" && err != nil:
				t.Errorf("honest evidence: %v", err)
			case tc.why != "" && (!errors.Is(err, ErrBadEvidence) || !strings.Contains(err.Error(), tc.why)):
				t.Errorf("%v, want ErrBadEvidence saying %q", err, tc.why)
			}
		})
	}
}
