package beacon

import (
	"slices"
	"testing"

	"github.com/prometheus/client_golang/prometheus"
	dto "github.com/prometheus/client_model/go"
)

// value reads a counter or gauge.
func value(t *testing.T, c prometheus.Metric) float64 {
	t.Helper()
	var m dto.Metric
	if err := c.Write(&m); err != nil {
		t.Fatal(err)
	}
	switch {
	case m.Counter != nil:
		return m.Counter.GetValue()
	case m.Gauge != nil:
		return m.Gauge.GetValue()
	}
	t.Fatal("neither a counter nor a gauge")
	return 0
}

func TestMuxCollectors(t *testing.T) {
	s := newTestSigner(t, 1, 1_700_000_000)
	a := &fakeSource{name: "http", info: s.Info()}
	b := &fakeSource{name: "gossip", info: s.Info()}
	m, err := NewMux(s.Info(), []Source{a, b}, WithMuxLogger(testLogger(t)))
	if err != nil {
		t.Fatal(err)
	}
	// The collectors are the mux's own: two muxes register side by side
	// in one registry, which fails for anything shared or global.
	m2, err := NewMux(s.Info(), []Source{a})
	if err != nil {
		t.Fatal(err)
	}
	reg := prometheus.NewRegistry()
	for _, c := range m.Collectors() {
		if err := reg.Register(c); err != nil {
			t.Fatal(err)
		}
	}
	if err := prometheus.NewRegistry().Register(m2.Collectors()[0]); err != nil {
		t.Fatal(err)
	}
	families, err := reg.Gather()
	if err != nil {
		t.Fatal(err)
	}
	got := map[string][]string{}
	for _, f := range families {
		var labels []string
		for _, mt := range f.GetMetric() {
			for _, l := range mt.GetLabel() {
				labels = append(labels, l.GetName()+"="+l.GetValue())
			}
		}
		slices.Sort(labels)
		got[f.GetName()] = labels
	}
	want := map[string][]string{
		"aro_beacon_latest_round":         nil,
		"aro_beacon_missing_rounds_total": nil,
		// Every source's series is there from the start.
		"aro_beacon_verified_total": {"source=gossip", "source=http"},
		"aro_beacon_invalid_total":  {"source=gossip", "source=http"},
	}
	if len(got) != len(want) {
		t.Errorf("families %v, want %v", got, want)
	}
	for name, labels := range want {
		if l, ok := got[name]; !ok || !slices.Equal(l, labels) {
			t.Errorf("%s: labels %v (present %v), want %v", name, l, ok, labels)
		}
	}
}

func TestSourceNames(t *testing.T) {
	info := newTestSigner(t, 1, 1_700_000_000).Info()
	got := sourceNames([]Source{
		&fakeSource{name: "http", info: info},
		&fakeSource{name: "http", info: info},
		&fakeSource{info: info},
	})
	if want := []string{"http", "http-1", "source2"}; !slices.Equal(got, want) {
		t.Errorf("names %q, want %q", got, want)
	}
}
