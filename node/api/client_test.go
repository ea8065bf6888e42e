package api_test

import (
	"errors"
	"net"
	"net/http"
	"strings"
	"testing"

	"github.com/aropeer/aropeer/node/api"
)

func TestClientNotRunning(t *testing.T) {
	ln, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		t.Fatal(err)
	}
	addr := ln.Addr().String()
	ln.Close() // now nothing listens there

	c := api.NewClient(addr, testToken)
	defer c.CloseIdleConnections()
	if _, err := c.Status(t.Context()); !errors.Is(err, api.ErrNotRunning) {
		t.Errorf("Status: err = %v, want ErrNotRunning", err)
	} else if !strings.Contains(err.Error(), addr) {
		t.Errorf("error %q does not name the address", err)
	}
	if err := c.PostJSON(t.Context(), "/v1/x", nil, nil); !errors.Is(err, api.ErrNotRunning) {
		t.Errorf("PostJSON: err = %v, want ErrNotRunning", err)
	}
	if _, err := c.Metrics(t.Context()); !errors.Is(err, api.ErrNotRunning) {
		t.Errorf("Metrics: err = %v, want ErrNotRunning", err)
	}
}

func TestClientErrorBodyBecomesError(t *testing.T) {
	ts := startServer(t, func(s *api.Server) {
		s.Handle("GET /v1/receipts/{cid}", http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
			api.WriteError(w, http.StatusNotFound, errors.New("receipt "+r.PathValue("cid")+" not found"))
		}))
		s.Handle("GET /v1/conflict", http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
			api.WriteError(w, http.StatusConflict, nil)
		}))
	})
	c := ts.client(t, "")

	err := c.GetJSON(t.Context(), "/v1/receipts/bafyabc", nil)
	var se *api.StatusError
	if !errors.As(err, &se) {
		t.Fatalf("err = %v, want a *StatusError", err)
	}
	if se.Code != http.StatusNotFound || se.Message != "receipt bafyabc not found" {
		t.Errorf("StatusError = %+v", se)
	}
	if !errors.Is(err, api.ErrNotFound) || errors.Is(err, api.ErrUnauthorized) {
		t.Errorf("errors.Is mapping wrong for %v", err)
	}
	if want := "api: GET /v1/receipts/bafyabc: receipt bafyabc not found (HTTP 404)"; err.Error() != want {
		t.Errorf("err = %q, want %q", err, want)
	}

	// A nil error is sent as the status text.
	if err := c.GetJSON(t.Context(), "/v1/conflict", nil); !errors.As(err, &se) || se.Message != "Conflict" {
		t.Errorf("nil error reply: err = %v", err)
	}

	// The mux's own plain-text replies still become errors.
	if err := c.GetJSON(t.Context(), "/v1/nothing", nil); !errors.Is(err, api.ErrNotFound) {
		t.Errorf("unknown path: err = %v, want ErrNotFound", err)
	}
	err = c.PostJSON(t.Context(), "/v1/conflict", nil, nil)
	if !errors.As(err, &se) || se.Code != http.StatusMethodNotAllowed {
		t.Errorf("wrong method: err = %v, want a 405", err)
	}
}

func TestClientReplyCap(t *testing.T) {
	ts := startServer(t, func(s *api.Server) {
		s.Handle("GET /v1/big", http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
			api.WriteJSON(w, http.StatusOK, strings.Repeat("x", 100))
		}))
	})
	c := ts.client(t, "")
	c.SetMaxResponse(64)
	var v string
	if err := c.GetJSON(t.Context(), "/v1/big", &v); err == nil || !strings.Contains(err.Error(), "over 64 bytes") {
		t.Errorf("reply over the cap: err = %v", err)
	}
	c.SetMaxResponse(200)
	if err := c.GetJSON(t.Context(), "/v1/big", &v); err != nil || len(v) != 100 {
		t.Errorf("reply under the cap: %d bytes, err = %v", len(v), err)
	}
}

func TestClientRefusesBadInput(t *testing.T) {
	c := api.NewClient("192.0.2.1:8547", testToken)
	defer c.CloseIdleConnections()
	if err := c.GetJSON(t.Context(), "/v1/x", nil); !errors.Is(err, api.ErrNotLoopback) {
		t.Errorf("non-loopback addr: err = %v, want ErrNotLoopback", err)
	}
	c = api.NewClient("127.0.0.1:1", "")
	defer c.CloseIdleConnections()
	if err := c.GetJSON(t.Context(), "v1/x", nil); err == nil {
		t.Error("relative path: no error")
	}
	if err := c.PostJSON(t.Context(), "/v1/x", func() {}, nil); err == nil {
		t.Error("unencodable body: no error")
	}
}
