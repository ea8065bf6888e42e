package mockhost

import (
	"bytes"
	"context"
	"errors"
	"io"
	"testing"
	"testing/synctest"
	"time"

	"github.com/libp2p/go-libp2p/core/host"
	"github.com/libp2p/go-libp2p/core/network"
	mocknet "github.com/libp2p/go-libp2p/p2p/net/mock"
)

// TestPipelinedStream, in virtual time: 100 writes of 300 bytes over a
// link of 10 ms arrive whole and in order, and through a pipelined
// stream they take a few latencies, where a mock stream's take one for
// every write or two. Close sends what is buffered first; after Reset, writes fail.
func TestPipelinedStream(t *testing.T) {
	const writes, size, latency = 100, 300, 10 * time.Millisecond
	send := func(t *testing.T, pipelined bool) time.Duration {
		a, b := connectedPair(t, latency)
		var want bytes.Buffer
		for i := range writes {
			want.Write(bytes.Repeat([]byte{byte(i)}, size))
		}
		got := make(chan []byte, 1)
		b.SetStreamHandler("/test", func(s network.Stream) {
			data, _ := io.ReadAll(s)
			got <- data
		})
		var h host.Host = a
		if pipelined {
			h = Wrap(a)
		}
		s, err := h.NewStream(context.Background(), b.ID(), "/test")
		if err != nil {
			t.Fatal(err)
		}
		start := time.Now()
		for i := range writes {
			if _, err := s.Write(want.Bytes()[i*size : (i+1)*size]); err != nil {
				t.Fatal(err)
			}
		}
		if err := s.Close(); err != nil {
			t.Fatal(err)
		}
		if data := <-got; !bytes.Equal(data, want.Bytes()) {
			t.Fatalf("pipelined %v: %d bytes arrived, not the %d written in order", pipelined, len(data), want.Len())
		}
		return time.Since(start)
	}
	synctest.Test(t, func(t *testing.T) {
		// A mock stream waits out a latency for every write or two.
		took := send(t, false)
		t.Logf("a mock stream: %v", took)
		if took < writes*latency/4 {
			t.Fatalf("a mock stream took %v for %d writes: the test no longer shows what pipelining is for", took, writes)
		}
		took = send(t, true)
		t.Logf("a pipelined stream: %v", took)
		if took > 5*latency {
			t.Errorf("a pipelined stream took %v for %d writes on a link of %v", took, writes, latency)
		}
	})
	synctest.Test(t, func(t *testing.T) {
		a, b := connectedPair(t, 0)
		b.SetStreamHandler("/test", func(s network.Stream) { io.Copy(io.Discard, s) })
		s, err := Wrap(a).NewStream(context.Background(), b.ID(), "/test")
		if err != nil {
			t.Fatal(err)
		}
		if err := s.Reset(); err != nil {
			t.Fatal(err)
		}
		if _, err := s.Write([]byte("after the reset")); !errors.Is(err, network.ErrReset) {
			t.Errorf("write after Reset: %v, want ErrReset", err)
		}
	})
}

// connectedPair returns two mock hosts joined by a link of latency.
func connectedPair(t *testing.T, latency time.Duration) (host.Host, host.Host) {
	t.Helper()
	mn := mocknet.New()
	t.Cleanup(func() { mn.Close() })
	mn.SetLinkDefaults(mocknet.LinkOptions{Latency: latency})
	a, err := mn.GenPeer()
	if err != nil {
		t.Fatal(err)
	}
	b, err := mn.GenPeer()
	if err != nil {
		t.Fatal(err)
	}
	if err := mn.LinkAll(); err != nil {
		t.Fatal(err)
	}
	if err := mn.ConnectAllButSelf(); err != nil {
		t.Fatal(err)
	}
	return a, b
}
