package wire

import (
	"bytes"
	"errors"
	"io"
	"net"
	"reflect"
	"sync/atomic"
	"testing"
	"time"
)

// resetConn is a net.Conn that counts resets, standing in for a libp2p
// stream.
type resetConn struct {
	net.Conn
	resets atomic.Int32
}

func (c *resetConn) Reset() error {
	c.resets.Add(1)
	return c.Conn.Close()
}

// fakeStream reads from r, writes to w and records what Conn asks of it.
type fakeStream struct {
	r         io.Reader
	w         bytes.Buffer
	deadlines int
	resets    int
}

func (s *fakeStream) Read(p []byte) (int, error)       { return s.r.Read(p) }
func (s *fakeStream) Write(p []byte) (int, error)      { return s.w.Write(p) }
func (s *fakeStream) SetReadDeadline(time.Time) error  { s.deadlines++; return nil }
func (s *fakeStream) SetWriteDeadline(time.Time) error { s.deadlines++; return nil }
func (s *fakeStream) Reset() error                     { s.resets++; return nil }

func TestConnRoundTrip(t *testing.T) {
	a, b := pipe(t)
	ca, cb := &resetConn{Conn: a}, &resetConn{Conn: b}
	sender, receiver := NewConn(ca, 1024, 10*time.Second), NewConn(cb, 1024, 10*time.Second)
	want := sample(t)
	done := make(chan error, 1)
	go func() { done <- sender.WriteMsg(want) }()
	var got sampleMsg
	if err := receiver.ReadMsg(&got); err != nil {
		t.Fatal(err)
	}
	if err := <-done; err != nil {
		t.Fatal(err)
	}
	if !reflect.DeepEqual(got, want) {
		t.Errorf("ReadMsg = %+v, want %+v", got, want)
	}
	if ca.resets.Load() != 0 || cb.resets.Load() != 0 {
		t.Errorf("resets after a good exchange: %d, %d", ca.resets.Load(), cb.resets.Load())
	}
}

func TestConnReadResets(t *testing.T) {
	frame := func(b []byte) []byte {
		var buf bytes.Buffer
		if err := writeFrame(&buf, b); err != nil {
			t.Fatal(err)
		}
		return buf.Bytes()
	}
	tests := []struct {
		name  string
		in    []byte
		want  error
		reset bool
	}{
		{"non-canonical message", frame([]byte{0xa1, 0x01, 0x18, 0x05}), ErrNonCanonical, true},
		{"over the cap", frame(make([]byte, 65)), ErrFrameTooLarge, true},
		{"malformed prefix", []byte{0x80, 0x00}, ErrBadFrame, true},
		{"truncated body", frame([]byte{0xa1, 0x01, 0x05})[:3], ErrBadFrame, true},
		{"clean end of stream", nil, io.EOF, false},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			s := &fakeStream{r: bytes.NewReader(tt.in)}
			var v strict
			err := NewConn(s, 64, time.Second).ReadMsg(&v)
			if !errors.Is(err, tt.want) {
				t.Errorf("ReadMsg = %v, want %v", err, tt.want)
			}
			if got := s.resets == 1; got != tt.reset {
				t.Errorf("%d resets, want reset %v", s.resets, tt.reset)
			}
		})
	}
}

func TestConnReadTimeoutResets(t *testing.T) {
	_, b := pipe(t) // nobody writes
	s := &resetConn{Conn: b}
	err := NewConn(s, 64, 2*time.Millisecond).ReadMsg(new(strict))
	if !errors.Is(err, ErrTimeout) {
		t.Errorf("ReadMsg = %v, want ErrTimeout", err)
	}
	if s.resets.Load() != 1 {
		t.Errorf("%d resets after a timeout, want 1", s.resets.Load())
	}
}

func TestConnWrite(t *testing.T) {
	s := &fakeStream{}
	c := NewConn(s, 8, time.Second)
	if err := c.WriteMsg(strict{Must: 5}); err != nil {
		t.Fatal(err)
	}
	if got := s.w.Bytes(); !bytes.Equal(got, []byte{3, 0xa1, 0x01, 0x05}) {
		t.Errorf("wrote %x", got)
	}
	if err := c.WriteMsg(strict{Must: 5, Name: "too long for the cap"}); !errors.Is(err, ErrFrameTooLarge) {
		t.Errorf("WriteMsg over the cap = %v, want ErrFrameTooLarge", err)
	}
	if err := c.WriteMsg(make(chan int)); err == nil {
		t.Error("WriteMsg of a channel succeeded")
	}
	if s.resets != 0 || s.w.Len() != 4 {
		t.Errorf("refused writes reset the stream (%d) or wrote (%d bytes)", s.resets, s.w.Len())
	}
}

func TestConnWriteTimeoutResets(t *testing.T) {
	a, _ := pipe(t) // nobody reads
	s := &resetConn{Conn: a}
	if err := NewConn(s, 64, 2*time.Millisecond).WriteMsg(strict{Must: 1}); !errors.Is(err, ErrTimeout) {
		t.Errorf("WriteMsg = %v, want ErrTimeout", err)
	}
	if s.resets.Load() != 1 {
		t.Errorf("%d resets after a timeout, want 1", s.resets.Load())
	}
}

func TestConnWithoutTimeoutLeavesDeadlines(t *testing.T) {
	s := &fakeStream{r: bytes.NewReader([]byte{3, 0xa1, 0x01, 0x05})}
	c := NewConn(s, 64, 0)
	if err := c.ReadMsg(new(strict)); err != nil {
		t.Fatal(err)
	}
	if err := c.WriteMsg(strict{Must: 1}); err != nil {
		t.Fatal(err)
	}
	if s.deadlines != 0 {
		t.Errorf("Conn without timeout set %d deadlines", s.deadlines)
	}
	s2 := &fakeStream{r: bytes.NewReader([]byte{3, 0xa1, 0x01, 0x05})}
	c2 := NewConn(s2, 64, time.Second)
	_ = c2.ReadMsg(new(strict))
	_ = c2.WriteMsg(strict{Must: 1})
	if s2.deadlines != 2 {
		t.Errorf("Conn with timeout set %d deadlines, want 2", s2.deadlines)
	}
}
