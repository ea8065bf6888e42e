package liveness

import (
	"crypto/sha256"
	"encoding/binary"
	"fmt"

	"github.com/libp2p/go-libp2p/core/crypto"
	"github.com/libp2p/go-libp2p/core/peer"
	"github.com/libp2p/go-libp2p/core/protocol"

	"github.com/aropeer/aropeer/proofs"
	"github.com/aropeer/aropeer/wire"
)

// Protocol is the stream protocol of liveness challenges.
const Protocol protocol.ID = "/aro/heartbeat/1.0.0"

// ServiceName is the resource manager service liveness streams are
// accounted to, on both sides.
const ServiceName = "aro-liveness"

// MaxHeartbeatSize caps a sealed heartbeat. An RSA-4096 signer's envelope
// is about 1.3 KiB; anything near the cap is not a heartbeat.
const MaxHeartbeatSize = 4 << 10

// HeartbeatDomain signs heartbeats.
var HeartbeatDomain = wire.Domain{Name: "aro-heartbeat", PayloadType: "/aro/heartbeat"}

// nonceDomain separates the nonce from every other hash of a seed.
const nonceDomain = "aro/liveness/nonce"

// Heartbeat is an edge's answer to a liveness challenge. Every field is
// set from the challenge, so the keeper can check each one, and the edge's
// signature over it shows the edge itself answered this very attempt.
type Heartbeat struct {
	Network string  `cbor:"net"`
	Round   uint64  `cbor:"round"`
	Attempt uint32  `cbor:"attempt"`
	Edge    peer.ID `cbor:"edge"`
	Keeper  peer.ID `cbor:"keeper"`
	Nonce   []byte  `cbor:"nonce"`
}

// Nonce returns the nonce a heartbeat must carry for c:
// SHA-256("aro/liveness/nonce" || c.Seed || c.Attempt as 4 bytes big
// endian). The attempt is in it so that each retry asks for a fresh
// answer.
func Nonce(c proofs.Challenge) []byte {
	h := sha256.New()
	h.Write([]byte(nonceDomain))
	h.Write(c.Seed)
	h.Write(binary.BigEndian.AppendUint32(nil, c.Attempt))
	return h.Sum(nil)
}

// HeartbeatFor returns the heartbeat that answers c.
func HeartbeatFor(c proofs.Challenge) Heartbeat {
	return Heartbeat{
		Network: c.Network,
		Round:   c.Round,
		Attempt: c.Attempt,
		Edge:    c.Edge,
		Keeper:  c.Keeper,
		Nonce:   Nonce(c),
	}
}

// SealHeartbeat signs hb with key under HeartbeatDomain and returns the
// envelope, as it travels on the stream.
func SealHeartbeat(key crypto.PrivKey, hb Heartbeat) ([]byte, error) {
	env, _, err := wire.SealMessage(key, HeartbeatDomain, hb)
	if err != nil {
		return nil, fmt.Errorf("liveness: seal heartbeat: %w", err)
	}
	if len(env) > MaxHeartbeatSize {
		// The keeper would refuse it unread; say so here, where it can be fixed.
		return nil, fmt.Errorf("liveness: seal heartbeat: %d bytes over cap %d: %w", len(env), MaxHeartbeatSize, wire.ErrTooLarge)
	}
	return env, nil
}

// OpenHeartbeat checks env's signature under HeartbeatDomain and decodes
// the heartbeat in it strictly. It returns the signer; whether the signer
// and the fields are the ones a challenge asked for is the caller's to
// check (Verifier does).
func OpenHeartbeat(env []byte) (Heartbeat, peer.ID, error) {
	hb, signer, err := openHeartbeat(env)
	if err != nil {
		return Heartbeat{}, "", fmt.Errorf("liveness: open heartbeat: %w", err)
	}
	return hb, signer, nil
}

// openHeartbeat is OpenHeartbeat without the package prefix, for reasons
// in outcomes.
func openHeartbeat(env []byte) (Heartbeat, peer.ID, error) {
	var hb Heartbeat
	signer, _, err := wire.OpenMessage(env, HeartbeatDomain, MaxHeartbeatSize, &hb)
	if err != nil {
		return Heartbeat{}, "", err
	}
	return hb, signer, nil
}

// mismatch returns why hb does not answer what want asks, naming the first
// field that differs, or "" when every field matches. Values from the edge
// are clipped: a reason ends up in a size-capped receipt.
func (hb Heartbeat) mismatch(want Heartbeat) string {
	switch {
	case hb.Network != want.Network:
		return fmt.Sprintf("heartbeat for network %q, want %q", clip(hb.Network), want.Network)
	case hb.Round != want.Round:
		return fmt.Sprintf("heartbeat for round %d, want %d", hb.Round, want.Round)
	case hb.Attempt != want.Attempt:
		return fmt.Sprintf("heartbeat for attempt %d, want %d", hb.Attempt, want.Attempt)
	case hb.Edge != want.Edge:
		return fmt.Sprintf("heartbeat for edge %s, want %s", clip(hb.Edge.String()), want.Edge)
	case hb.Keeper != want.Keeper:
		return fmt.Sprintf("heartbeat for keeper %s, want %s", clip(hb.Keeper.String()), want.Keeper)
	case string(hb.Nonce) != string(want.Nonce):
		return fmt.Sprintf("heartbeat for nonce %s, want %x", clip(fmt.Sprintf("%x", hb.Nonce)), want.Nonce)
	}
	return ""
}

// maxShown bounds what a reason quotes of a value the edge chose.
const maxShown = 80

func clip(s string) string { return clipTo(s, maxShown) }

func clipTo(s string, n int) string {
	if len(s) <= n {
		return s
	}
	return s[:n] + "..."
}
