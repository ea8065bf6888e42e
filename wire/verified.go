package wire

import (
	"crypto/sha256"
	"sync"
)

// verifiedEnvelopes remembers the envelopes this process sealed or whose
// signature verified lately, so that each is checked once at most: a
// receipt is opened by gossip validation, again when it is stored, and
// again when a catch-up offers it (in a simulation, by every node of the
// network, all in one process). An envelope is named by the SHA-256 of
// its domain and all its bytes, so only the very bytes that verified are
// let through.
var verifiedEnvelopes = newEnvelopeMemo(1 << 14)

// envelopeMemo is a set of envelope names that forgets the oldest first.
type envelopeMemo struct {
	mu   sync.Mutex
	set  map[[32]byte]struct{}
	ring [][32]byte
	next int
}

func newEnvelopeMemo(size int) *envelopeMemo {
	return &envelopeMemo{set: make(map[[32]byte]struct{}, size), ring: make([][32]byte, 0, size)}
}

// verifiedKey names env opened under domain.
func verifiedKey(domain string, env []byte) [32]byte {
	h := sha256.New()
	h.Write([]byte(domain))
	h.Write([]byte{0})
	h.Write(env)
	var k [32]byte
	h.Sum(k[:0])
	return k
}

func (m *envelopeMemo) has(k [32]byte) bool {
	m.mu.Lock()
	defer m.mu.Unlock()
	_, ok := m.set[k]
	return ok
}

func (m *envelopeMemo) add(k [32]byte) {
	m.mu.Lock()
	defer m.mu.Unlock()
	if _, ok := m.set[k]; ok {
		return
	}
	if len(m.ring) < cap(m.ring) {
		m.ring = append(m.ring, k)
	} else {
		delete(m.set, m.ring[m.next])
		m.ring[m.next] = k
		m.next = (m.next + 1) % len(m.ring)
	}
	m.set[k] = struct{}{}
}
