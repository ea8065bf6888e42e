package exchange

import (
	"context"
	"encoding/binary"
	"errors"
	"io"
	"slices"
	"strings"
	"testing"
	"testing/synctest"
	"time"

	"github.com/ipfs/go-cid"
	"github.com/libp2p/go-libp2p/core/host"
	"github.com/libp2p/go-libp2p/core/network"

	"github.com/aropeer/aropeer/wire"
)

// serverHarness is a server A answering from a few receipts, and a
// client B, inside a synctest bubble.
type serverHarness struct {
	a, b host.Host
	ids  []cid.Cid
}

func newServerHarness(t *testing.T, opts ...Option) *serverHarness {
	hosts := newHosts(t, 2)
	rs := newFleet(t, 2).receipts(t, epoch, 0, 5)
	src := &fakeSource{ids: sortedIDs(rs), envs: make(map[cid.Cid][]byte)}
	for _, r := range rs {
		src.envs[r.id] = r.env
	}
	t.Cleanup(Serve(hosts[0], src, append([]Option{quiet}, opts...)...))
	return &serverHarness{a: hosts[0], b: hosts[1], ids: src.ids}
}

// checkAlive checks that the server still answers.
func (h *serverHarness) checkAlive(t *testing.T) {
	t.Helper()
	got, err := List(t.Context(), h.b, h.a.ID(), epoch, "")
	if err != nil || !slices.Equal(got, h.ids) {
		t.Fatalf("List after the test = %d CIDs, %v; want the server to answer all %d", len(got), err, len(h.ids))
	}
}

// raw opens a stream to the server and writes b on it.
func (h *serverHarness) raw(t *testing.T, b []byte) network.Stream {
	t.Helper()
	s, err := h.b.NewStream(t.Context(), h.a.ID(), Protocol)
	if err != nil {
		t.Fatal(err)
	}
	if _, err := s.Write(b); err != nil {
		t.Fatal(err)
	}
	return s
}

// refusal reads the response on s and returns its error code.
func refusal(t *testing.T, s network.Stream) Code {
	t.Helper()
	defer s.Close()
	b, err := wire.ReadFrame(s, getResponseSize(MaxGet), time.Time{})
	if err != nil {
		t.Fatalf("read response: %v", err)
	}
	resp, err := decodeResponse(b, len(b))
	if err != nil {
		t.Fatal(err)
	}
	if resp.Error == nil {
		t.Fatalf("response %+v, want an error", resp)
	}
	return resp.Error.Code
}

func frame(t *testing.T, v any) []byte {
	t.Helper()
	b, err := wire.Marshal(v)
	if err != nil {
		t.Fatal(err)
	}
	return append(binary.AppendUvarint(nil, uint64(len(b))), b...)
}

func TestServerCutsOffSilentClient(t *testing.T) {
	synctest.Test(t, func(t *testing.T) {
		h := newServerHarness(t, WithTimeout(time.Second))
		s, err := h.b.NewStream(t.Context(), h.a.ID(), Protocol)
		if err != nil {
			t.Fatal(err)
		}
		start := time.Now()
		// The read sends the protocol header, so the server sees the
		// stream, and then waits as the server does.
		if _, err := s.Read(make([]byte, 1)); err == nil || errors.Is(err, io.EOF) {
			t.Fatalf("read = %v, want the stream reset", err)
		}
		if d := time.Since(start); d != time.Second {
			t.Fatalf("cut off after %s, want the 1s deadline", d)
		}
		_ = s.Reset()
		h.checkAlive(t)
	})
}

func TestServerRefuses(t *testing.T) {
	tooMany := make([]cid.Cid, MaxGet+1)
	_, c, _ := wire.MarshalCID("x")
	for i := range tooMany {
		tooMany[i] = c
	}
	for _, tc := range []struct {
		name string
		send func(t *testing.T) []byte
		want Code
	}{
		{"frame over the cap", func(*testing.T) []byte { return binary.AppendUvarint(nil, maxRequestSize+1) }, CodeTooLarge},
		{"too many CIDs", func(t *testing.T) []byte { return frame(t, request{Get: &getRequest{CIDs: tooMany}}) }, CodeTooLarge},
		{"garbage", func(*testing.T) []byte { return []byte{4, 0xff, 0xfe, 0xfd, 0xfc} }, CodeBadRequest},
		{"no CIDs", func(t *testing.T) []byte { return frame(t, request{Get: &getRequest{CIDs: []cid.Cid{}}}) }, CodeBadRequest},
		{"limit 0", func(t *testing.T) []byte { return frame(t, request{List: &listRequest{Epoch: epoch}}) }, CodeBadRequest},
		{"both kinds", func(t *testing.T) []byte {
			return frame(t, request{List: &listRequest{Epoch: epoch, Limit: 1}, Get: &getRequest{CIDs: []cid.Cid{c}}})
		}, CodeBadRequest},
		{"neither kind", func(t *testing.T) []byte { return frame(t, request{}) }, CodeBadRequest},
	} {
		t.Run(tc.name, func(t *testing.T) {
			synctest.Test(t, func(t *testing.T) {
				h := newServerHarness(t)
				if got := refusal(t, h.raw(t, tc.send(t))); got != tc.want {
					t.Fatalf("code %s, want %s", got, tc.want)
				}
				h.checkAlive(t)
			})
		})
	}
}

func TestServerRefusesTooManyCIDsToClient(t *testing.T) {
	synctest.Test(t, func(t *testing.T) {
		h := newServerHarness(t)
		ids := slices.Repeat(h.ids[:1], MaxGet+1)
		_, err := roundTrip(t.Context(), h.b, h.a.ID(), request{Get: &getRequest{CIDs: ids}}, getResponseSize(len(ids)), newOptions(nil))
		errorIs(t, err, ErrRefused, h.a.ID())
		if !strings.Contains(err.Error(), "too large") {
			t.Fatalf("err = %v, want it to say the request is too large", err)
		}
	})
}

func TestServerBusy(t *testing.T) {
	synctest.Test(t, func(t *testing.T) {
		h := newServerHarness(t, WithMaxStreams(1), WithTimeout(time.Second))
		silent, err := h.b.NewStream(t.Context(), h.a.ID(), Protocol)
		if err != nil {
			t.Fatal(err)
		}
		go func() { _, _ = silent.Read(make([]byte, 1)) }()
		synctest.Wait() // the server holds its one slot for the silent stream

		_, err = List(t.Context(), h.b, h.a.ID(), epoch, "")
		errorIs(t, err, ErrBusy, h.a.ID())
		if !errors.Is(err, ErrRefused) {
			t.Fatalf("err = %v, want it to match ErrRefused too", err)
		}
		// Fake time: the deadline frees the slot, once the handler it
		// cut off has returned.
		time.Sleep(time.Second + time.Millisecond)
		synctest.Wait()
		h.checkAlive(t)
		_ = silent.Reset()
	})
}

func TestServeStop(t *testing.T) {
	synctest.Test(t, func(t *testing.T) {
		hosts := newHosts(t, 2)
		a, b := hosts[0], hosts[1]
		stop := Serve(a, &fakeSource{}, quiet, WithTimeout(time.Hour))
		s, err := b.NewStream(t.Context(), a.ID(), Protocol)
		if err != nil {
			t.Fatal(err)
		}
		read := make(chan error)
		go func() {
			_, err := s.Read(make([]byte, 1))
			read <- err
		}()
		synctest.Wait()
		start := time.Now()
		stop()
		if err := <-read; err == nil || errors.Is(err, io.EOF) {
			t.Fatalf("read = %v, want the stream reset by stop", err)
		}
		if d := time.Since(start); d != 0 {
			t.Fatalf("stop took %s, want it not to wait for the deadline", d)
		}
		if _, err := List(t.Context(), b, a.ID(), epoch, ""); err == nil {
			t.Fatal("List after stop succeeded")
		}
	})
}

// TestClientDistrustsServer has a raw handler answer each request with
// something a server must not send.
func TestClientDistrustsServer(t *testing.T) {
	_, c, _ := wire.MarshalCID("x")
	for _, tc := range []struct {
		name   string
		answer response
		call   func(ctx context.Context, h host.Host, p host.Host) error
		want   error
	}{
		{
			name:   "get answered to a list",
			answer: response{Get: &getResponse{Envelopes: [][]byte{}}},
			call:   listCall,
			want:   ErrBadResponse,
		},
		{
			name:   "more with an empty page",
			answer: response{List: &listResponse{CIDs: []cid.Cid{}, More: true}},
			call:   listCall,
			want:   ErrBadResponse,
		},
		{
			name:   "page over the limit",
			answer: response{List: &listResponse{CIDs: []cid.Cid{c, c}}},
			call: func(ctx context.Context, b, a host.Host) error {
				_, err := List(ctx, b, a.ID(), epoch, "", WithPageSize(1))
				return err
			},
			want: ErrBadResponse,
		},
		{
			name:   "envelopes fewer than CIDs",
			answer: response{Get: &getResponse{Envelopes: [][]byte{}}},
			call: func(ctx context.Context, b, a host.Host) error {
				_, err := Fetch(ctx, b, a.ID(), []cid.Cid{c})
				return err
			},
			want: ErrBadResponse,
		},
		{
			name: "no answer",
			call: listCall,
			want: context.DeadlineExceeded,
		},
	} {
		t.Run(tc.name, func(t *testing.T) {
			synctest.Test(t, func(t *testing.T) {
				hosts := newHosts(t, 2)
				a, b := hosts[0], hosts[1]
				ended := make(chan struct{})
				t.Cleanup(func() { close(ended) })
				a.SetStreamHandler(Protocol, func(s network.Stream) {
					defer s.Close()
					if _, err := wire.ReadFrame(s, maxRequestSize, time.Time{}); err != nil {
						return
					}
					if tc.answer == (response{}) {
						<-ended // the client gives up first
						return
					}
					b, _ := wire.Marshal(tc.answer)
					_ = wire.WriteFrame(s, b, time.Time{})
				})
				ctx, cancel := context.WithTimeout(t.Context(), time.Minute)
				defer cancel()
				errorIs(t, tc.call(ctx, b, a), tc.want, a.ID())
			})
		})
	}
}

func listCall(ctx context.Context, b, a host.Host) error {
	_, err := List(ctx, b, a.ID(), epoch, "", WithTimeout(time.Second))
	return err
}
