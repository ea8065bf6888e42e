package api_test

import (
	"errors"
	"net/http"
	"testing"

	"github.com/aropeer/aropeer/node/api"
)

func TestMutatingNeedsToken(t *testing.T) {
	ts := startServer(t, func(s *api.Server) {
		s.HandleMutating("POST /v1/store", okHandler())
	})
	tests := []struct {
		name   string
		header string
		want   int
		msg    string
	}{
		{"no header", "", http.StatusUnauthorized, "missing API token"},
		{"wrong token", "Bearer nope", http.StatusUnauthorized, "wrong API token"},
		{"token prefix", "Bearer " + testToken[:5], http.StatusUnauthorized, "wrong API token"},
		{"token plus suffix", "Bearer " + testToken + "x", http.StatusUnauthorized, "wrong API token"},
		{"other scheme", "Basic " + testToken, http.StatusUnauthorized, "missing API token"},
		{"scheme only", "Bearer", http.StatusUnauthorized, "missing API token"},
		{"right token", "Bearer " + testToken, http.StatusOK, ""},
		{"scheme any case", "bearer " + testToken, http.StatusOK, ""},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			hdr := map[string]string{}
			if tt.header != "" {
				hdr["Authorization"] = tt.header
			}
			code, h, body := ts.raw(t, http.MethodPost, "/v1/store", nil, hdr)
			if code != tt.want {
				t.Fatalf("status %d, want %d: %s", code, tt.want, body)
			}
			if tt.want == http.StatusUnauthorized {
				wantErrorBody(t, body, tt.msg)
				if h.Get("WWW-Authenticate") == "" {
					t.Error("401 without WWW-Authenticate")
				}
			}
		})
	}
}

func TestClientSendsToken(t *testing.T) {
	ts := startServer(t, func(s *api.Server) {
		s.HandleMutating("POST /v1/store", echoHandler())
	})
	var got map[string]int
	if err := ts.client(t, testToken).PostJSON(t.Context(), "/v1/store", map[string]int{"n": 7}, &got); err != nil {
		t.Fatalf("PostJSON with token: %v", err)
	}
	if got["n"] != 7 {
		t.Errorf("echo = %v", got)
	}
	for _, tok := range []string{"", "wrong"} {
		err := ts.client(t, tok).PostJSON(t.Context(), "/v1/store", map[string]int{"n": 7}, nil)
		if !errors.Is(err, api.ErrUnauthorized) {
			t.Errorf("PostJSON with token %q: err = %v, want ErrUnauthorized", tok, err)
		}
	}
}

func TestReadsNeedNoToken(t *testing.T) {
	ts := startServer(t, func(s *api.Server) {
		s.Handle("GET /v1/thing", okHandler())
	})
	if err := ts.client(t, "").GetJSON(t.Context(), "/v1/thing", nil); err != nil {
		t.Fatalf("GetJSON without token: %v", err)
	}
}
