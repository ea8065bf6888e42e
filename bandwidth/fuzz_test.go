package bandwidth

import (
	"bytes"
	"crypto/rand"
	"testing"

	"github.com/libp2p/go-libp2p/core/crypto"

	"github.com/aropeer/aropeer/wire"
)

// FuzzReport feeds the keeper's decoding of an edge's signed report what
// an edge may send: no panic, and samples it accepts add up to the bytes
// the report claims.
func FuzzReport(f *testing.F) {
	key, _, err := crypto.GenerateEd25519Key(rand.Reader)
	if err != nil {
		f.Fatal(err)
	}
	good, err := sealReport(key, Report{Network: "devnet", Round: 3, Bytes: 300, Digest: make([]byte, 32), Micros: []uint64{10, 20}, Sizes: []uint64{100, 200}})
	if err != nil {
		f.Fatal(err)
	}
	f.Add(good)
	f.Add(good[:len(good)/2])
	f.Fuzz(func(t *testing.T, data []byte) {
		var rep Report
		if _, _, err := wire.OpenMessage(data, ReportDomain, maxReportSize, &rep); err != nil {
			return
		}
		arr, err := rep.arrivals()
		if err != nil {
			return
		}
		var sum int64
		for _, a := range arr {
			sum += a.Bytes
		}
		if uint64(sum) != rep.Bytes {
			t.Fatalf("accepted samples of %d bytes for a report of %d", sum, rep.Bytes)
		}
	})
}

// FuzzRequest feeds the edge's and the keeper's decoders of the small
// frames: whatever they accept re-encodes to the same bytes.
func FuzzRequest(f *testing.F) {
	for _, v := range []any{request{Up: 1 << 20, Down: 5}, ack{Refused: "busy"}, ack{}} {
		b, err := wire.Marshal(v)
		if err != nil {
			f.Fatal(err)
		}
		f.Add(b)
	}
	f.Fuzz(func(t *testing.T, data []byte) {
		var req request
		if wire.Unmarshal(data, &req, maxRequestSize) == nil {
			if again, err := wire.Marshal(req); err != nil || !bytes.Equal(again, data) {
				t.Fatalf("request %x re-encodes to %x", data, again)
			}
		}
		var a ack
		if wire.Unmarshal(data, &a, maxAckSize) == nil {
			if again, err := wire.Marshal(a); err != nil || !bytes.Equal(again, data) {
				t.Fatalf("ack %x re-encodes to %x", data, again)
			}
		}
	})
}
