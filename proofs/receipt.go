package proofs

import (
	"github.com/ipfs/go-cid"
	"github.com/libp2p/go-libp2p/core/peer"

	"github.com/aropeer/aropeer/wire"
)

// ReceiptDomain signs receipts.
var ReceiptDomain = wire.Domain{Name: "aro-receipt", PayloadType: "/aro/receipt"}

// MaxReceiptSize caps a sealed receipt.
const MaxReceiptSize = 16 << 10

// Result is the verdict of one challenge attempt.
type Result string

// The results.
const (
	Pass    Result = "pass"
	Fail    Result = "fail"    // the answer was wrong, or containment ran out
	Timeout Result = "timeout" // no answer before the deadline; retried
)

// Outcome is what a Verifier concludes from one attempt.
type Outcome struct {
	Result Result
	// Reason says, for a fail or timeout, what an operator can act on.
	Reason string
	// Measurements are small figures of the attempt, in integer units
	// named by their keys ("rtt_ms", "mbit_s", "leaves").
	Measurements map[string]int64
	// Evidence is what the edge answered, or enough of it for the kind's
	// EvidenceChecker to check the verdict in a dispute. It must leave
	// the sealed receipt under MaxReceiptSize.
	Evidence []byte
	// Attestation is a TEE attestation or zk proof the edge gave, if any.
	Attestation []byte
}

// Receipt is a keeper's signed verdict on one attempt of one challenge.
// Its signature covers the network, epoch, round, both peers and the
// challenge, so it cannot be replayed for another of any of them.
type Receipt struct {
	Network      string           `cbor:"net"`
	Epoch        uint64           `cbor:"epoch"`
	Round        uint64           `cbor:"round"`
	Keeper       peer.ID          `cbor:"keeper"`
	Edge         peer.ID          `cbor:"edge"`
	Kind         Kind             `cbor:"kind"`
	Challenge    cid.Cid          `cbor:"challenge"` // Challenge.ID
	Attempt      uint32           `cbor:"attempt"`
	Result       Result           `cbor:"result"`
	Reason       string           `cbor:"reason,omitempty"`
	Measurements map[string]int64 `cbor:"measurements,omitempty"`
	Evidence     []byte           `cbor:"evidence,omitempty"`
	Attestation  []byte           `cbor:"attestation,omitempty"`
}
