package api_test

import (
	"context"
	"encoding/json"
	"errors"
	"net/http"
	"reflect"
	"strings"
	"sync/atomic"
	"testing"

	"github.com/prometheus/client_golang/prometheus"

	"github.com/aropeer/aropeer/node/api"
)

func TestStatusJSONFields(t *testing.T) {
	want := api.Status{
		PeerID:              "12D3KooWExample",
		Roles:               []string{"edge", "keeper"},
		Network:             "devnet",
		ListenAddrs:         []string{"/ip4/127.0.0.1/tcp/4001"},
		ConnectedPeers:      3,
		DHTRoutingTableSize: 5,
		Topics:              map[string]int{"/aro/devnet/receipts": 2},
		Version:             "v0.1.0",
		UptimeSeconds:       12.5,
	}
	var round atomic.Uint64
	ts := startServer(t, nil, api.WithStatus(func(context.Context) (api.Status, error) {
		st := want
		st.LatestRound = round.Load()
		return st, nil
	}))
	c := ts.client(t, "")

	var raw map[string]json.RawMessage
	if err := c.GetJSON(t.Context(), api.StatusPath, &raw); err != nil {
		t.Fatalf("GetJSON: %v", err)
	}
	for _, f := range []string{"peer_id", "roles", "network", "listen_addrs", "connected_peers",
		"dht_routing_table_size", "topics", "version", "uptime_seconds"} {
		if _, ok := raw[f]; !ok {
			t.Errorf("status JSON lacks %q: %v", f, raw)
		}
	}
	if _, ok := raw["latest_round"]; ok {
		t.Errorf("latest_round present while zero: %s", raw["latest_round"])
	}

	round.Store(42)
	got, err := c.Status(t.Context())
	if err != nil {
		t.Fatalf("Status: %v", err)
	}
	want.LatestRound = 42
	if !reflect.DeepEqual(got, want) {
		t.Errorf("Status = %+v, want %+v", got, want)
	}
}

func TestStatusEmptyCollectionsAreNotNull(t *testing.T) {
	ts := startServer(t, nil, api.WithStatus(func(context.Context) (api.Status, error) {
		return api.Status{PeerID: "p"}, nil
	}))
	code, _, body := ts.raw(t, http.MethodGet, api.StatusPath, nil, nil)
	if code != http.StatusOK {
		t.Fatalf("status %d: %s", code, body)
	}
	for _, f := range []string{`"roles":[]`, `"listen_addrs":[]`, `"topics":{}`} {
		if !strings.Contains(body, f) {
			t.Errorf("body %s lacks %s", body, f)
		}
	}
}

func TestStatusFuncError(t *testing.T) {
	ts := startServer(t, nil, api.WithStatus(func(context.Context) (api.Status, error) {
		return api.Status{}, errors.New("host not started")
	}))
	_, err := ts.client(t, "").Status(t.Context())
	var se *api.StatusError
	if !errors.As(err, &se) || se.Code != http.StatusInternalServerError || !strings.Contains(se.Message, "host not started") {
		t.Fatalf("Status error = %v, want a 500 carrying the status function's error", err)
	}
}

func TestMetricsServesRegisteredCounter(t *testing.T) {
	reg := prometheus.NewRegistry()
	ctr := prometheus.NewCounter(prometheus.CounterOpts{
		Name: "aropeer_test_receipts_total",
		Help: "Receipts seen by the test.",
	})
	reg.MustRegister(ctr)
	ctr.Add(3)
	ts := startServer(t, nil, api.WithMetrics(reg))

	text, err := ts.client(t, "").Metrics(t.Context())
	if err != nil {
		t.Fatalf("Metrics: %v", err)
	}
	if !strings.Contains(text, "aropeer_test_receipts_total 3") {
		t.Errorf("metrics lack the counter:\n%s", text)
	}
}

func TestNoStatusOrMetricsWithoutOptions(t *testing.T) {
	ts := startServer(t, nil)
	c := ts.client(t, "")
	if _, err := c.Status(t.Context()); !errors.Is(err, api.ErrNotFound) {
		t.Errorf("Status without WithStatus: err = %v, want ErrNotFound", err)
	}
	if _, err := c.Metrics(t.Context()); !errors.Is(err, api.ErrNotFound) {
		t.Errorf("Metrics without WithMetrics: err = %v, want ErrNotFound", err)
	}
}
