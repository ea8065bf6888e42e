package proofs

import (
	"fmt"

	"github.com/ipfs/go-cid"
	"github.com/libp2p/go-libp2p/core/crypto"
	"github.com/libp2p/go-libp2p/core/peer"

	"github.com/aropeer/aropeer/wire"
)

// ReportDomain signs work reports.
var ReportDomain = wire.Domain{Name: "aro-report", PayloadType: "/aro/report"}

// MaxReportSize caps a sealed report: a manifest's worth of offers.
const MaxReportSize = 64 << 10

// Report is an edge's signed Work Report for an epoch: what it claims to
// have contributed, offer by offer. Keepers confirm the claims against
// receipts in Aggregate; the report alone earns nothing.
type Report struct {
	Network string  `cbor:"net"`
	Epoch   uint64  `cbor:"epoch"`
	Edge    peer.ID `cbor:"edge"`
	// Claims are one per kind offered, sorted by kind name in byte order,
	// liveness among them, as the manifest's offers are.
	Claims []Claim `cbor:"claims"`
}

// Claim is one resource the edge stood behind during the epoch.
type Claim struct {
	// Offer is the manifest's offer the claim stood behind.
	Offer Offer `cbor:"offer"`
	// Answered is the edge's own count of challenges of the kind it
	// answered. Aggregate does not trust it; it is there for disputes.
	Answered uint64 `cbor:"answered"`
}

// Validate checks that the report is one an honest edge could sign: a
// network, a valid edge ID, and claims whose offers would pass
// Manifest.Validate (sorted, one per kind, liveness among them, within
// bounds). Errors match ErrInvalid.
func (r Report) Validate() error {
	if err := checkNetwork(r.Network); err != nil {
		return invalid("report", err)
	}
	if err := checkPeer("edge", r.Edge); err != nil {
		return invalid("report", err)
	}
	live := false
	for i, c := range r.Claims {
		o := c.Offer
		if i > 0 && o.Kind <= r.Claims[i-1].Offer.Kind {
			return invalid("report", fmt.Errorf("claim %d (%q) after %q: claims must be sorted by kind, one per kind", i, o.Kind, r.Claims[i-1].Offer.Kind))
		}
		if err := o.validate(); err != nil {
			return invalid("report", fmt.Errorf("claim %q: %w", o.Kind, err))
		}
		live = live || o.Kind == KindLiveness
	}
	if !live {
		return invalid("report", fmt.Errorf("no %s claim", KindLiveness))
	}
	return nil
}

// Claim returns the claim of kind k, if the report has one.
func (r Report) Claim(k Kind) (Claim, bool) {
	for _, c := range r.Claims {
		if c.Offer.Kind == k {
			return c, true
		}
	}
	return Claim{}, false
}

// SealReport validates r, checks that key is r.Edge's, and signs it.
func SealReport(key crypto.PrivKey, r Report) ([]byte, cid.Cid, error) {
	if err := r.Validate(); err != nil {
		return nil, cid.Undef, err
	}
	if err := checkKey(key, r.Edge); err != nil {
		return nil, cid.Undef, fmt.Errorf("proofs: seal report: %w", err)
	}
	env, id, err := wire.SealMessage(key, ReportDomain, r)
	if err != nil {
		return nil, cid.Undef, fmt.Errorf("proofs: seal report: %w", err)
	}
	return env, id, nil
}

// OpenReport opens a sealed report: size cap, signature, canonical
// decoding, Validate, and a signer that is the report's edge. It returns
// the report and the CID of its payload.
func OpenReport(env []byte) (Report, cid.Cid, error) {
	var r Report
	signer, id, err := wire.OpenMessage(env, ReportDomain, MaxReportSize, &r)
	if err != nil {
		return Report{}, cid.Undef, fmt.Errorf("proofs: open report: %w", err)
	}
	if err := r.Validate(); err != nil {
		return Report{}, cid.Undef, err
	}
	if signer != r.Edge {
		return Report{}, cid.Undef, fmt.Errorf("proofs: open report: signed by %s for edge %s: %w", signer, r.Edge, ErrWrongSigner)
	}
	return r, id, nil
}
