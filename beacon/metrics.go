package beacon

import "github.com/prometheus/client_golang/prometheus"

// metrics are the mux's collectors. They belong to the mux, and the node
// registers them through Collectors.
type metrics struct {
	latest   prometheus.Gauge
	missing  prometheus.Counter
	verified []prometheus.Counter // by source index
	invalid  []prometheus.Counter
	vecs     []prometheus.Collector
}

func newMetrics(sources []string) metrics {
	verified := prometheus.NewCounterVec(prometheus.CounterOpts{
		Namespace: "aro", Subsystem: "beacon", Name: "verified_total",
		Help: "Beacons from a source that verified against the pinned chain info.",
	}, []string{"source"})
	invalid := prometheus.NewCounterVec(prometheus.CounterOpts{
		Namespace: "aro", Subsystem: "beacon", Name: "invalid_total",
		Help: "Beacons from a source that did not verify, or were not the round asked for; none was used.",
	}, []string{"source"})
	m := metrics{
		latest: prometheus.NewGauge(prometheus.GaugeOpts{
			Namespace: "aro", Subsystem: "beacon", Name: "latest_round",
			Help: "Round of the latest beacon the mux delivered.",
		}),
		missing: prometheus.NewCounter(prometheus.CounterOpts{
			Namespace: "aro", Subsystem: "beacon", Name: "missing_rounds_total",
			Help: "Rounds no source could provide within the grace; they were skipped, never replaced.",
		}),
		vecs: []prometheus.Collector{verified, invalid},
	}
	// Every source's series exists from the start, at zero.
	for _, s := range sources {
		m.verified = append(m.verified, verified.WithLabelValues(s))
		m.invalid = append(m.invalid, invalid.WithLabelValues(s))
	}
	return m
}

// Collectors returns the mux's metrics, for the node to register:
// aro_beacon_latest_round, aro_beacon_missing_rounds_total and, by source,
// aro_beacon_verified_total and aro_beacon_invalid_total.
func (m *Mux) Collectors() []prometheus.Collector {
	return append([]prometheus.Collector{m.metrics.latest, m.metrics.missing}, m.metrics.vecs...)
}
