package api_test

import (
	"bytes"
	"context"
	"io"
	"log/slog"
	"net/http"
	"strings"
	"sync"
	"testing"

	"go.uber.org/goleak"

	"github.com/aropeer/aropeer/node/api"
)

func TestMain(m *testing.M) {
	goleak.VerifyTestMain(m)
}

const testToken = "test-token-3f9a"

// testServer is a server serving on a loopback port chosen by the system.
type testServer struct {
	*api.Server
	addr string
	logs *syncBuffer
}

// startServer builds a server with opts, lets register add routes, and
// serves until the test ends, when it checks that Serve stopped cleanly.
func startServer(t *testing.T, register func(*api.Server), opts ...api.Option) *testServer {
	t.Helper()
	logs := &syncBuffer{}
	s, err := api.New("127.0.0.1:0", testToken, append([]api.Option{api.WithLogger(slogTo(logs))}, opts...)...)
	if err != nil {
		t.Fatalf("New: %v", err)
	}
	if register != nil {
		register(s)
	}
	if err := s.Listen(); err != nil {
		t.Fatalf("Listen: %v", err)
	}
	ctx, cancel := context.WithCancel(context.Background())
	done := make(chan error, 1)
	go func() { done <- s.Serve(ctx) }()
	t.Cleanup(func() {
		cancel()
		if err := <-done; err != nil {
			t.Errorf("Serve: %v", err)
		}
	})
	return &testServer{Server: s, addr: s.Addr().String(), logs: logs}
}

// client returns an API client for ts whose connections close with the test.
func (ts *testServer) client(t *testing.T, token string) *api.Client {
	t.Helper()
	c := api.NewClient(ts.addr, token)
	t.Cleanup(c.CloseIdleConnections)
	return c
}

// raw sends a request with full control of headers and body.
func (ts *testServer) raw(t *testing.T, method, path string, body io.Reader, hdr map[string]string) (int, http.Header, string) {
	t.Helper()
	req, err := http.NewRequest(method, "http://"+ts.addr+path, body)
	if err != nil {
		t.Fatal(err)
	}
	for k, v := range hdr {
		if k == "Host" {
			req.Host = v
			continue
		}
		req.Header.Set(k, v)
	}
	tr := &http.Transport{}
	defer tr.CloseIdleConnections()
	resp, err := (&http.Client{Transport: tr}).Do(req)
	if err != nil {
		t.Fatalf("%s %s: %v", method, path, err)
	}
	defer resp.Body.Close()
	b, err := io.ReadAll(resp.Body)
	if err != nil {
		t.Fatalf("%s %s: read: %v", method, path, err)
	}
	return resp.StatusCode, resp.Header, string(b)
}

// okHandler answers {"ok":true}.
func okHandler() http.Handler {
	return http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		api.WriteJSON(w, http.StatusOK, map[string]bool{"ok": true})
	})
}

// echoHandler decodes a JSON body and sends it back.
func echoHandler() http.Handler {
	return http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		var v any
		if !api.DecodeJSON(w, r, &v) {
			return
		}
		api.WriteJSON(w, http.StatusOK, v)
	})
}

// wantErrorBody checks a reply is a JSON error whose message contains want.
func wantErrorBody(t *testing.T, body, want string) {
	t.Helper()
	if !strings.HasPrefix(body, `{"error":`) || !strings.Contains(body, want) {
		t.Errorf("body = %q, want a JSON error containing %q", body, want)
	}
}

// syncBuffer is a log sink safe to read while the server writes to it.
type syncBuffer struct {
	mu sync.Mutex
	b  bytes.Buffer
}

func (s *syncBuffer) Write(p []byte) (int, error) {
	s.mu.Lock()
	defer s.mu.Unlock()
	return s.b.Write(p)
}

func (s *syncBuffer) String() string {
	s.mu.Lock()
	defer s.mu.Unlock()
	return s.b.String()
}

func discard() *slog.Logger { return slog.New(slog.DiscardHandler) }

func slogTo(w io.Writer) *slog.Logger {
	return slog.New(slog.NewTextHandler(w, &slog.HandlerOptions{Level: slog.LevelDebug}))
}
