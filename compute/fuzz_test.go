package compute

import (
	"bytes"
	"context"
	"testing"

	"github.com/aropeer/aropeer/wire"
)

// reencodes fails t when data decodes into v but is not v's one encoding.
func reencodes(t *testing.T, data []byte, v any, max int) bool {
	if wire.Unmarshal(data, v, max) != nil {
		return false
	}
	if again, err := wire.Marshal(v); err != nil || !bytes.Equal(again, data) {
		t.Fatalf("%T %x re-encodes to %x", v, data, again)
	}
	return true
}

// FuzzTask feeds the edge's decoding and acceptance of a task what a
// keeper may send: no panic, and only the claim's size is accepted.
func FuzzTask(f *testing.F) {
	for _, tk := range []task{{N: 64, Nonce: make([]byte, NonceSize)}, {N: 1 << 31, Nonce: []byte{1}}, {}} {
		b, err := wire.Marshal(tk)
		if err != nil {
			f.Fatal(err)
		}
		f.Add(b)
	}
	r, err := NewResponder(CPU{}, claimOf(testClaim), WithParams(testParams()))
	if err != nil {
		f.Fatal(err)
	}
	f.Fuzz(func(t *testing.T, data []byte) {
		var tk task
		if !reencodes(t, data, &tk, maxTaskSize) {
			return
		}
		if n, _, reason := r.accept(tk); reason == "" && (n != 64 || len(tk.Nonce) != NonceSize) {
			t.Fatalf("accepted %+v", tk)
		}
	})
}

// FuzzSmallFrames feeds the keeper's decoders of the ack and the root,
// and the edge's of the row request: whatever they accept is the one
// encoding, and the edge answers only requests for rows it has.
func FuzzSmallFrames(f *testing.F) {
	for _, v := range []any{ack{}, ack{Refused: "busy"}, rootMsg{Root: make([]byte, 32), ComputeMicros: 1234}, rootMsg{Error: "no"}, request{Rows: []uint32{0, 5, 63}}} {
		b, err := wire.Marshal(v)
		if err != nil {
			f.Fatal(err)
		}
		f.Add(b)
	}
	p, err := CPU{}.Multiply(context.Background(), 8, [32]byte{1})
	if err != nil {
		f.Fatal(err)
	}
	tree := commit(p)
	f.Fuzz(func(t *testing.T, data []byte) {
		reencodes(t, data, &ack{}, maxAckSize)
		reencodes(t, data, &rootMsg{}, maxRootSize)
		var req request
		if reencodes(t, data, &req, maxRequestSize) {
			ans, err := answer(p, tree, req)
			if err == nil && len(ans.Rows) != len(req.Rows) {
				t.Fatalf("%d rows for %d asked", len(ans.Rows), len(req.Rows))
			}
			for _, i := range req.Rows {
				if i >= 8 && err == nil {
					t.Fatalf("answered row %d of 8", i)
				}
			}
		}
	})
}

// FuzzRows feeds the keeper's judge what an edge may answer: no panic,
// and only the honest answer passes.
func FuzzRows(f *testing.F) {
	const n = 16
	seed := [32]byte{9}
	p, err := CPU{}.Multiply(context.Background(), n, seed)
	if err != nil {
		f.Fatal(err)
	}
	tree := commit(p)
	want := []uint32{3, 0, 15}
	ans, err := answer(p, tree, request{Rows: want})
	if err != nil {
		f.Fatal(err)
	}
	good, err := wire.Marshal(ans)
	if err != nil {
		f.Fatal(err)
	}
	f.Add(good)
	f.Add(good[:len(good)/2])
	f.Add([]byte{0xa1, 0x64, 'r', 'o', 'w', 's', 0x80})
	f.Fuzz(func(t *testing.T, data []byte) {
		if judgeRows(n, seed, tree.Root(), want, data) == "" && !bytes.Equal(data, good) {
			t.Fatalf("passed an answer other than the honest one: %x", data)
		}
	})
}

// FuzzWorkerOutput feeds the parser of a worker's output whatever a
// worker may print: no panic, and a product only of the size asked,
// read from exactly its bytes.
func FuzzWorkerOutput(f *testing.F) {
	p, err := CPU{}.Multiply(context.Background(), 3, [32]byte{2})
	if err != nil {
		f.Fatal(err)
	}
	var good bytes.Buffer
	if err := WriteOutput(&good, p); err != nil {
		f.Fatal(err)
	}
	f.Add(good.Bytes())
	f.Add(good.Bytes()[:20])
	f.Add([]byte("AROC\x03\x00\x00\x00"))
	f.Add([]byte("garbage"))
	f.Fuzz(func(t *testing.T, data []byte) {
		r := bytes.NewReader(data)
		q, err := ReadOutput(r, 3)
		if err != nil {
			return
		}
		if q.N != 3 || len(q.C) != 9 || int(r.Size())-r.Len() != headerSize+36 {
			t.Fatalf("accepted %+v from %d bytes", q, len(data))
		}
	})
}

// FuzzWorkerInput feeds a worker's parser of its input: no panic, and
// matrices only of the size the header gives.
func FuzzWorkerInput(f *testing.F) {
	a, b := Matrices(4, [32]byte{3})
	f.Add(EncodeInput(4, a, b))
	f.Add([]byte("AROA\xff\xff\xff\xff"))
	f.Fuzz(func(t *testing.T, data []byte) {
		n, a, b, err := ReadInput(bytes.NewReader(data))
		if err == nil && (len(a) != n*n || len(b) != n*n) {
			t.Fatalf("n=%d with %d and %d values", n, len(a), len(b))
		}
	})
}
