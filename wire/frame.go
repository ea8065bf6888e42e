package wire

import (
	"encoding/binary"
	"errors"
	"fmt"
	"io"
	"time"
)

var (
	// ErrFrameTooLarge means a frame's length prefix is over the size cap.
	ErrFrameTooLarge = errors.New("wire: frame too large")
	// ErrBadFrame means a malformed length prefix or a stream that ended
	// inside a frame.
	ErrBadFrame = errors.New("wire: malformed frame")
	// ErrTimeout means the deadline passed before the frame was read or
	// written. Callers that judge a peer tell it apart from a bad answer.
	ErrTimeout = errors.New("wire: deadline exceeded")
)

// Stream is what framing needs from a stream. libp2p's network.Stream and
// net.Conn both satisfy it.
type Stream interface {
	io.ReadWriter
	SetReadDeadline(time.Time) error
	SetWriteDeadline(time.Time) error
}

const (
	// maxLenVarint is the longest length prefix accepted: 9 bytes carry 63
	// bits, the limit of the multiformats unsigned varint (go-msgio reads
	// the same).
	maxLenVarint = 9
	// firstChunk bounds the first allocation for a frame body, so a peer
	// that announces a large frame and sends little costs little memory.
	firstChunk = 64 << 10
)

// WriteFrame writes msg prefixed by its length as an unsigned varint, in
// one write, before deadline (the zero time means none).
func WriteFrame(s Stream, msg []byte, deadline time.Time) error {
	if err := s.SetWriteDeadline(deadline); err != nil {
		return fmt.Errorf("wire: write frame: set deadline: %w", err)
	}
	return writeFrame(s, msg)
}

// ReadFrame reads one length-prefixed frame of at most maxSize bytes before
// deadline (the zero time means none). A clean end of stream before the
// first byte gives an error wrapping io.EOF. After any other error the
// stream is out of step and the caller should reset it.
func ReadFrame(s Stream, maxSize int, deadline time.Time) ([]byte, error) {
	if maxSize <= 0 {
		return nil, fmt.Errorf("wire: read frame: invalid size cap %d", maxSize)
	}
	if err := s.SetReadDeadline(deadline); err != nil {
		return nil, fmt.Errorf("wire: read frame: set deadline: %w", err)
	}
	return readFrame(s, maxSize)
}

func writeFrame(w io.Writer, msg []byte) error {
	// One buffer, one write: a separate prefix write could go out as its
	// own packet.
	buf := make([]byte, 0, binary.MaxVarintLen64+len(msg))
	buf = binary.AppendUvarint(buf, uint64(len(msg)))
	buf = append(buf, msg...)
	if _, err := w.Write(buf); err != nil {
		return fmt.Errorf("wire: write frame: %w", ioError(err))
	}
	return nil
}

func readFrame(r io.Reader, maxSize int) ([]byte, error) {
	n, err := readLength(r, maxSize)
	if err != nil {
		return nil, fmt.Errorf("wire: read frame: %w", err)
	}
	msg, err := readBody(r, n)
	if err != nil {
		return nil, fmt.Errorf("wire: read frame of %d bytes: %w", n, err)
	}
	return msg, nil
}

// readLength reads the length prefix one byte at a time, so nothing past
// the prefix is consumed, and refuses it as soon as it exceeds maxSize.
func readLength(r io.Reader, maxSize int) (int, error) {
	var b [1]byte
	var x uint64
	for i := range maxLenVarint {
		if _, err := io.ReadFull(r, b[:]); err != nil {
			if i > 0 && errors.Is(err, io.EOF) {
				return 0, fmt.Errorf("%w: stream ended in length prefix", ErrBadFrame)
			}
			return 0, ioError(err)
		}
		c := b[0]
		if i > 0 && c == 0 {
			// A zero last byte adds nothing: the prefix is not minimal.
			return 0, fmt.Errorf("%w: non-minimal length prefix", ErrBadFrame)
		}
		x |= uint64(c&0x7f) << (7 * i)
		if x > uint64(maxSize) {
			// Later bytes only add high bits, so the length can only grow.
			return 0, fmt.Errorf("%w: length over cap %d", ErrFrameTooLarge, maxSize)
		}
		if c < 0x80 {
			return int(x), nil
		}
	}
	return 0, fmt.Errorf("%w: length prefix longer than %d bytes", ErrBadFrame, maxLenVarint)
}

// readBody reads exactly n bytes, growing the buffer as data arrives rather
// than trusting the announced length up front.
func readBody(r io.Reader, n int) ([]byte, error) {
	buf := make([]byte, min(n, firstChunk))
	got := 0
	for got < n {
		if got == len(buf) {
			buf = append(buf, make([]byte, min(n-got, got))...)
		}
		m, err := r.Read(buf[got:])
		got += m
		if got == n {
			break // a reader may return the last bytes together with io.EOF
		}
		if err != nil {
			if errors.Is(err, io.EOF) {
				return nil, fmt.Errorf("%w: stream ended after %d bytes", ErrBadFrame, got)
			}
			return nil, ioError(err)
		}
	}
	return buf, nil
}

// ioError marks deadline errors with ErrTimeout, keeping the original.
func ioError(err error) error {
	var t interface{ Timeout() bool }
	if errors.As(err, &t) && t.Timeout() {
		return fmt.Errorf("%w: %w", ErrTimeout, err)
	}
	return err
}
