package exchange

import (
	"bytes"
	"testing"

	"github.com/ipfs/go-cid"

	"github.com/aropeer/aropeer/wire"
)

// seedCID is a receipt-shaped CID for seed messages.
func seedCID(f *testing.F) cid.Cid {
	_, c, err := wire.MarshalCID("seed")
	if err != nil {
		f.Fatal(err)
	}
	return c
}

func addMessages(f *testing.F, msgs ...any) {
	for _, m := range msgs {
		b, err := wire.Marshal(m)
		if err != nil {
			f.Fatal(err)
		}
		f.Add(b)
	}
	f.Add([]byte{})
	f.Add([]byte{0xa0})
}

func FuzzDecodeRequest(f *testing.F) {
	c := seedCID(f)
	edge := idOf(f, testKey(f, 100))
	addMessages(f,
		request{List: &listRequest{Epoch: 7, Limit: MaxPage}},
		request{List: &listRequest{Epoch: 7, Edge: edge, After: c.Bytes(), Limit: 10}},
		request{Get: &getRequest{CIDs: []cid.Cid{c, c}}},
		request{List: &listRequest{Epoch: 7}}, // refused: limit 0
	)
	f.Fuzz(func(t *testing.T, b []byte) {
		req, err := decodeRequest(b)
		if err != nil {
			return
		}
		again, err := wire.Marshal(req)
		if err != nil {
			t.Fatalf("re-encode accepted request: %v", err)
		}
		if !bytes.Equal(again, b) {
			t.Fatalf("accepted request re-encodes as %x, was %x", again, b)
		}
	})
}

func FuzzDecodeResponse(f *testing.F) {
	c := seedCID(f)
	addMessages(f,
		response{Error: &errorResponse{Code: CodeBusy, Message: "busy"}},
		response{List: &listResponse{CIDs: []cid.Cid{c}, More: true}},
		response{List: &listResponse{CIDs: []cid.Cid{}}},
		response{Get: &getResponse{Envelopes: [][]byte{{1, 2, 3}, {}}}},
	)
	f.Fuzz(func(t *testing.T, b []byte) {
		resp, err := decodeResponse(b, getResponseSize(MaxGet))
		if err != nil {
			return
		}
		again, err := wire.Marshal(resp)
		if err != nil {
			t.Fatalf("re-encode accepted response: %v", err)
		}
		if !bytes.Equal(again, b) {
			t.Fatalf("accepted response re-encodes as %x, was %x", again, b)
		}
	})
}
