package mockhost

import (
	"errors"
	"os"
	"sync"
	"time"

	"github.com/libp2p/go-libp2p/core/network"
)

// pipelineWindow is how many bytes a pipelined stream takes ahead of the
// link before a write waits: about what a TCP window holds on a link of
// 50 Mbit/s and 40 ms.
const pipelineWindow = 256 << 10

// errWriteClosed is a write after CloseWrite or Close.
var errWriteClosed = errors.New("mockhost: write on a closed stream")

// pipelined is a stream whose writes follow one another onto the link, as
// on a real connection. A mock stream takes its next write of 256 bytes or
// more only once the last is about to arrive, which holds a stream with
// latency to a write or two per latency: 100 writes of 300 bytes take
// 500 ms on a 10 ms link (TestPipelinedStream). A keeper of a thousand
// edges sends another keeper several hundred gossip messages a second:
// its queue to each overflowed, and batch signatures were dropped with
// the rest. Here a write only copies into a buffer of up to
// pipelineWindow bytes, which one goroutine hands to the mock stream, all
// that is buffered in one write, so that the latency is paid once per
// batch and the link's rate still bounds the throughput.
type pipelined struct {
	network.Stream

	mu       sync.Mutex
	buf      []byte
	spare    []byte        // the buffer the pump last wrote, for the next
	pumping  bool          // a pump is running
	stopped  sync.Cond     // broadcast when the pump stops, and on failure
	space    chan struct{} // signalled when the pump takes the buffer
	done     chan struct{} // closed once err is set
	err      error         // the stream's write error, or ErrReset
	closed   bool          // CloseWrite or Close was called
	deadline time.Time     // of writes waiting for space
}

func pipeline(s network.Stream) network.Stream {
	p := &pipelined{Stream: s, space: make(chan struct{}, 1), done: make(chan struct{})}
	p.stopped.L = &p.mu
	return p
}

func (s *pipelined) Write(p []byte) (int, error) {
	for {
		s.mu.Lock()
		switch {
		case s.err != nil:
			err := s.err
			s.mu.Unlock()
			return 0, err
		case s.closed:
			s.mu.Unlock()
			return 0, errWriteClosed
		case len(s.buf) < pipelineWindow:
			s.buf = append(s.buf, p...)
			if !s.pumping {
				s.pumping = true
				go s.pump()
			}
			s.mu.Unlock()
			return len(p), nil
		}
		deadline := s.deadline
		s.mu.Unlock()
		if !s.waitForSpace(deadline) {
			return 0, os.ErrDeadlineExceeded
		}
	}
}

// waitForSpace waits until the pump takes the buffer or the stream fails;
// false if the deadline, unless zero, passed first.
func (s *pipelined) waitForSpace(deadline time.Time) bool {
	var expired <-chan time.Time
	if !deadline.IsZero() {
		t := time.NewTimer(time.Until(deadline))
		defer t.Stop()
		expired = t.C
	}
	select {
	case <-s.space:
	case <-s.done:
	case <-expired:
		return false
	}
	return true
}

// pump writes the buffer to the stream until it is empty, then stops.
// It starts with each burst of writes, not with the stream: most streams
// are idle most of the time, and a goroutine each would cost their stacks.
func (s *pipelined) pump() {
	for {
		s.mu.Lock()
		b := s.buf
		if len(b) == 0 || s.err != nil {
			s.pumping = false
			s.stopped.Broadcast()
			s.mu.Unlock()
			return
		}
		s.buf, s.spare = s.spare[:0], nil
		s.mu.Unlock()
		select {
		case s.space <- struct{}{}:
		default:
		}
		_, err := s.Stream.Write(b) // which copies b
		s.mu.Lock()
		s.spare = b
		if err != nil {
			s.fail(err)
		}
		s.mu.Unlock()
	}
}

// flush ends writing and waits until what was written is on the link.
func (s *pipelined) flush() {
	s.mu.Lock()
	defer s.mu.Unlock()
	s.closed = true
	for s.pumping && s.err == nil {
		s.stopped.Wait()
	}
}

func (s *pipelined) CloseWrite() error {
	s.flush()
	return s.Stream.CloseWrite()
}

func (s *pipelined) Close() error {
	s.flush()
	return s.Stream.Close()
}

func (s *pipelined) Reset() error {
	s.drop()
	return s.Stream.Reset()
}

func (s *pipelined) ResetWithError(code network.StreamErrorCode) error {
	s.drop()
	return s.Stream.ResetWithError(code)
}

// drop forgets what is buffered and fails the writes to come.
func (s *pipelined) drop() {
	s.mu.Lock()
	defer s.mu.Unlock()
	s.fail(network.ErrReset)
	s.buf = nil
}

// fail fails the writes to come, and those waiting, with err, unless an
// error came first. The caller holds s.mu.
func (s *pipelined) fail(err error) {
	if s.err == nil {
		s.err = err
		close(s.done)
		s.stopped.Broadcast()
	}
}

func (s *pipelined) SetDeadline(t time.Time) error {
	s.setWriteDeadline(t)
	return s.Stream.SetDeadline(t)
}

func (s *pipelined) SetWriteDeadline(t time.Time) error {
	s.setWriteDeadline(t)
	return s.Stream.SetWriteDeadline(t)
}

func (s *pipelined) setWriteDeadline(t time.Time) {
	s.mu.Lock()
	s.deadline = t
	s.mu.Unlock()
}
