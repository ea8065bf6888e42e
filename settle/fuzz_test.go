package settle

import (
	"bytes"
	"testing"

	"github.com/aropeer/aropeer/wire"
)

// FuzzReportsAnswer feeds network bytes to the decoders of the reports
// exchange: whatever they accept re-encodes to the same bytes.
func FuzzReportsAnswer(f *testing.F) {
	for _, v := range []any{reportsRequest{Epoch: 9}, reportsAnswer{Reports: [][]byte{{1, 2}, {3}}}, reportsAnswer{Error: "busy"}} {
		b, err := wire.Marshal(v)
		if err != nil {
			f.Fatal(err)
		}
		f.Add(b)
	}
	f.Fuzz(func(t *testing.T, data []byte) {
		var req reportsRequest
		if err := wire.Unmarshal(data, &req, maxReportsAnswer); err == nil {
			if again, err := wire.Marshal(req); err != nil || !bytes.Equal(again, data) {
				t.Fatalf("request %x re-encodes to %x (%v)", data, again, err)
			}
		}
		var ans reportsAnswer
		if err := wire.Unmarshal(data, &ans, maxReportsAnswer); err == nil {
			if again, err := wire.Marshal(ans); err != nil || !bytes.Equal(again, data) {
				t.Fatalf("answer %x re-encodes to %x (%v)", data, again, err)
			}
		}
	})
}
