package wire

import (
	"bytes"
	"encoding/binary"
	"errors"
	"io"
	"math"
	"net"
	"os"
	"runtime"
	"testing"
	"time"
)

// pipe returns both ends of an in-memory connection, closed at cleanup.
func pipe(t *testing.T) (net.Conn, net.Conn) {
	t.Helper()
	a, b := net.Pipe()
	t.Cleanup(func() {
		a.Close()
		b.Close()
	})
	return a, b
}

func TestFrameRoundTrip(t *testing.T) {
	a, b := pipe(t)
	msgs := [][]byte{
		[]byte("hello"),
		{},
		bytes.Repeat([]byte{0xab}, 127), // one-byte prefix, the largest
		bytes.Repeat([]byte{0xcd}, 128), // two-byte prefix
		bytes.Repeat([]byte{0xef}, 3*firstChunk+17),
	}
	done := make(chan error, 1)
	go func() {
		for _, m := range msgs {
			if err := WriteFrame(a, m, time.Now().Add(10*time.Second)); err != nil {
				done <- err
				return
			}
		}
		done <- nil
	}()
	for i, want := range msgs {
		got, err := ReadFrame(b, 4*firstChunk, time.Now().Add(10*time.Second))
		if err != nil {
			t.Fatalf("frame %d: %v", i, err)
		}
		if !bytes.Equal(got, want) {
			t.Fatalf("frame %d: got %d bytes, want %d", i, len(got), len(want))
		}
	}
	if err := <-done; err != nil {
		t.Fatal(err)
	}
}

func TestFrameWireFormat(t *testing.T) {
	var buf bytes.Buffer
	msg := bytes.Repeat([]byte{7}, 300)
	if err := writeFrame(&buf, msg); err != nil {
		t.Fatal(err)
	}
	want := append([]byte{0xac, 0x02}, msg...) // 300 = 0b10_0101100
	if !bytes.Equal(buf.Bytes(), want) {
		t.Errorf("frame = %x..., want %x...", buf.Bytes()[:4], want[:4])
	}
}

func TestReadFrameRefuses(t *testing.T) {
	body := bytes.Repeat([]byte{1}, 10)
	tests := []struct {
		name    string
		in      []byte
		maxSize int
		want    error
	}{
		{"one over the cap", append([]byte{11}, bytes.Repeat([]byte{1}, 11)...), 10, ErrFrameTooLarge},
		{"huge length", binary.AppendUvarint(nil, 1<<62), 1 << 20, ErrFrameTooLarge},
		{"huge length, huge cap", []byte{0xff, 0xff, 0xff, 0xff, 0xff, 0xff, 0xff, 0xff, 0xff, 0x7f}, math.MaxInt, ErrBadFrame},
		{"ten-byte prefix", []byte{0x80, 0x80, 0x80, 0x80, 0x80, 0x80, 0x80, 0x80, 0x80, 0x00}, math.MaxInt, ErrBadFrame},
		{"non-minimal prefix", []byte{0x8a, 0x00}, 1 << 20, ErrBadFrame},
		{"stream ends in prefix", []byte{0x80}, 1 << 20, ErrBadFrame},
		{"stream ends in body", append([]byte{20}, body...), 1 << 20, ErrBadFrame},
		{"empty stream", nil, 1 << 20, io.EOF},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			got, err := ReadFrame(memStream{Reader: bytes.NewReader(tt.in)}, tt.maxSize, time.Time{})
			if !errors.Is(err, tt.want) {
				t.Errorf("ReadFrame = %v, want %v", err, tt.want)
			}
			if got != nil {
				t.Errorf("ReadFrame failed but returned %d bytes", len(got))
			}
		})
	}
	if _, err := ReadFrame(memStream{Reader: bytes.NewReader([]byte{0})}, 0, time.Time{}); err == nil {
		t.Error("zero cap accepted")
	}
}

func TestReadFrameAtCap(t *testing.T) {
	in := append([]byte{10}, bytes.Repeat([]byte{1}, 10)...)
	got, err := ReadFrame(memStream{Reader: bytes.NewReader(in)}, 10, time.Time{})
	if err != nil || len(got) != 10 {
		t.Errorf("ReadFrame at the cap = %d bytes, %v", len(got), err)
	}
}

func TestReadFrameConsumesOnlyItsFrame(t *testing.T) {
	in := []byte{2, 'h', 'i', 3, 'y', 'o', 'u'}
	r := bytes.NewReader(in)
	s := memStream{Reader: r}
	if got, err := ReadFrame(s, 10, time.Time{}); err != nil || string(got) != "hi" {
		t.Fatalf("first frame %q, %v", got, err)
	}
	if r.Len() != 4 {
		t.Fatalf("first read consumed %d bytes, want 3", len(in)-r.Len())
	}
	if got, err := ReadFrame(s, 10, time.Time{}); err != nil || string(got) != "you" {
		t.Fatalf("second frame %q, %v", got, err)
	}
}

// TestReadFrameDoesNotTrustLength: a peer that announces a large frame, even
// within the cap, and sends a few bytes must not cost the announced size.
func TestReadFrameDoesNotTrustLength(t *testing.T) {
	const claimed = 512 << 20
	for _, tt := range []struct {
		name    string
		maxSize int
		want    error
	}{
		{"over the cap", 1 << 20, ErrFrameTooLarge},
		{"under the cap", 1 << 30, ErrBadFrame},
	} {
		t.Run(tt.name, func(t *testing.T) {
			in := append(binary.AppendUvarint(nil, claimed), "just a few bytes"...)
			var before, after runtime.MemStats
			runtime.ReadMemStats(&before)
			_, err := ReadFrame(memStream{Reader: bytes.NewReader(in)}, tt.maxSize, time.Time{})
			runtime.ReadMemStats(&after)
			if !errors.Is(err, tt.want) {
				t.Fatalf("ReadFrame = %v, want %v", err, tt.want)
			}
			if n := after.TotalAlloc - before.TotalAlloc; n > 4<<20 {
				t.Errorf("ReadFrame allocated %d bytes for a %d-byte input claiming %d", n, len(in), claimed)
			}
		})
	}
}

func TestReadFrameDeadline(t *testing.T) {
	_, b := pipe(t)
	for _, d := range []time.Time{time.Now().Add(-time.Second), time.Now().Add(time.Millisecond)} {
		_, err := ReadFrame(b, 1024, d)
		if !errors.Is(err, ErrTimeout) || !errors.Is(err, os.ErrDeadlineExceeded) {
			t.Errorf("ReadFrame with nothing sent, deadline %v: %v, want ErrTimeout", time.Until(d), err)
		}
	}
}

func TestReadFrameDeadlineInBody(t *testing.T) {
	a, b := pipe(t)
	done := make(chan struct{})
	go func() {
		defer close(done)
		_, _ = a.Write([]byte{100, 1, 2, 3}) // 100 announced, 3 sent
	}()
	_, err := ReadFrame(b, 1024, time.Now().Add(5*time.Millisecond))
	if !errors.Is(err, ErrTimeout) {
		t.Errorf("ReadFrame of a stalled body: %v, want ErrTimeout", err)
	}
	a.Close() // in case the deadline came before the write finished
	<-done
}

func TestWriteFrameDeadline(t *testing.T) {
	a, _ := pipe(t) // nobody reads b
	err := WriteFrame(a, []byte("hello"), time.Now().Add(time.Millisecond))
	if !errors.Is(err, ErrTimeout) {
		t.Errorf("WriteFrame with no reader: %v, want ErrTimeout", err)
	}
}
