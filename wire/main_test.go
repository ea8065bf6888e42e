package wire

import (
	"crypto/sha256"
	"io"
	"testing"
	"time"

	"github.com/ipfs/go-cid"
	"github.com/libp2p/go-libp2p/core/crypto"
	"github.com/libp2p/go-libp2p/core/network"
	"github.com/libp2p/go-libp2p/core/peer"
	"go.uber.org/goleak"
)

func TestMain(m *testing.M) {
	goleak.VerifyTestMain(m)
}

// libp2p streams are what Conn is for.
var _ ResetStream = network.Stream(nil)

// sampleMsg is shaped like a receipt: what the tests and benchmarks sign.
type sampleMsg struct {
	Network      string           `cbor:"1,keyasint"`
	Epoch        uint64           `cbor:"2,keyasint"`
	Round        uint64           `cbor:"3,keyasint"`
	Keeper       []byte           `cbor:"4,keyasint"`
	Edge         []byte           `cbor:"5,keyasint"`
	Challenge    cid.Cid          `cbor:"6,keyasint"`
	Outcome      uint8            `cbor:"7,keyasint"`
	Measurements map[string]int64 `cbor:"8,keyasint,omitempty"`
	Reason       string           `cbor:"9,keyasint,omitempty"`
	Evidence     []byte           `cbor:"10,keyasint,omitempty"`
}

var testDomain = Domain{Name: "aro-test-receipt", PayloadType: "/aro/test-receipt"}

// testKey returns a deterministic ed25519 key, so runs are reproducible.
func testKey(t testing.TB, seed byte) crypto.PrivKey {
	t.Helper()
	k, _, err := crypto.GenerateEd25519Key(constReader(seed))
	if err != nil {
		t.Fatal(err)
	}
	return k
}

type constReader byte

func (r constReader) Read(p []byte) (int, error) {
	for i := range p {
		p[i] = byte(r) + byte(i)
	}
	return len(p), nil
}

func testPeerID(t testing.TB, seed byte) peer.ID {
	t.Helper()
	id, err := peer.IDFromPrivateKey(testKey(t, seed))
	if err != nil {
		t.Fatal(err)
	}
	return id
}

// sample returns a realistic message of about 300 bytes encoded.
func sample(t testing.TB) sampleMsg {
	t.Helper()
	evidence := sha256.Sum256([]byte("evidence"))
	return sampleMsg{
		Network:   "aro-mainnet",
		Epoch:     48213,
		Round:     4821377,
		Keeper:    []byte(testPeerID(t, 1)),
		Edge:      []byte(testPeerID(t, 2)),
		Challenge: CIDOf([]byte("challenge")),
		Outcome:   1,
		Measurements: map[string]int64{
			"rtt_us":        18250,
			"bytes_up":      67108864,
			"bytes_down":    67108864,
			"throughput_up": 112500000,
			"throughput_dn": 98000000,
			"leaves_ok":     16,
		},
		Reason:   "",
		Evidence: evidence[:],
	}
}

// memStream is a Stream over fixed bytes, for tests without goroutines.
type memStream struct {
	io.Reader
	io.Writer
}

func (memStream) SetReadDeadline(time.Time) error  { return nil }
func (memStream) SetWriteDeadline(time.Time) error { return nil }
