package wire

import (
	"context"
	"errors"
	"fmt"
	"io"
	"sync"
	"time"
)

// ResetStream is a Stream that can be aborted. libp2p's network.Stream is
// one.
type ResetStream interface {
	Stream
	Reset() error
}

// Conn exchanges canonical CBOR messages over one stream: every message is
// one frame of at most maxSize bytes, every read and write has its own
// deadline, and any failed read or write resets the stream, so a peer that
// sends garbage or stalls loses the stream rather than holding it.
//
// A Conn is not safe for concurrent use by several readers or several
// writers; one reader and one writer may run at once.
type Conn struct {
	s       ResetStream
	maxSize int
	timeout time.Duration
}

// NewConn wraps s. Each ReadMsg or WriteMsg must finish within timeout of
// its start; a timeout <= 0 leaves the stream's deadlines to the caller.
// Deadlines are wall-clock times, as streams require, taken from
// time.Now (which testing/synctest fakes).
func NewConn(s ResetStream, maxSize int, timeout time.Duration) *Conn {
	return &Conn{s: s, maxSize: maxSize, timeout: timeout}
}

// ReadMsg reads one frame and decodes it strictly into v (see Unmarshal).
func (c *Conn) ReadMsg(v any) error {
	b, err := c.ReadFrame()
	if err != nil {
		return err
	}
	if err := Unmarshal(b, v, c.maxSize); err != nil {
		c.reset()
		return err
	}
	return nil
}

// WriteMsg encodes v canonically and writes it as one frame.
func (c *Conn) WriteMsg(v any) error {
	b, err := Marshal(v)
	if err != nil {
		return err // nothing was sent; the stream is still in step
	}
	return c.WriteFrame(b)
}

// ReadFrame reads one raw frame, such as a signed envelope. A clean end of
// stream before a frame returns an error wrapping io.EOF and leaves the
// stream alone, so the peer still gets what was written to it; any other
// error resets the stream.
func (c *Conn) ReadFrame() ([]byte, error) {
	if c.maxSize <= 0 {
		c.reset()
		return nil, fmt.Errorf("wire: read frame: invalid size cap %d", c.maxSize)
	}
	if c.timeout > 0 {
		if err := c.s.SetReadDeadline(time.Now().Add(c.timeout)); err != nil {
			c.reset()
			return nil, fmt.Errorf("wire: read frame: set deadline: %w", err)
		}
	}
	b, err := readFrame(c.s, c.maxSize)
	if err != nil {
		if !errors.Is(err, io.EOF) {
			c.reset()
		}
		return nil, err
	}
	return b, nil
}

// WriteFrame writes b as one frame. It refuses b over the size cap, which
// the peer would refuse too.
func (c *Conn) WriteFrame(b []byte) error {
	if len(b) > c.maxSize {
		return fmt.Errorf("wire: write frame: %d bytes over cap %d: %w", len(b), c.maxSize, ErrFrameTooLarge)
	}
	if c.timeout > 0 {
		if err := c.s.SetWriteDeadline(time.Now().Add(c.timeout)); err != nil {
			c.reset()
			return fmt.Errorf("wire: write frame: set deadline: %w", err)
		}
	}
	if err := writeFrame(c.s, b); err != nil {
		c.reset()
		return err
	}
	return nil
}

// reset aborts the stream. Its error is dropped: the caller already has
// the error that made the stream useless.
func (c *Conn) reset() { _ = c.s.Reset() }

// ResetOnDone resets s when ctx ends, so a timeout or a cancellation
// stops a read or write that stream deadlines would not (mocknet's
// streams ignore deadlines altogether). The returned stop ends the watch
// and, if the reset already began, waits for it, so no goroutine outlives
// the caller; it may be called more than once.
func ResetOnDone(ctx context.Context, s interface{ Reset() error }) (stop func()) {
	done := make(chan struct{})
	stopWatch := context.AfterFunc(ctx, func() {
		_ = s.Reset()
		close(done)
	})
	return sync.OnceFunc(func() {
		if !stopWatch() {
			<-done
		}
	})
}
