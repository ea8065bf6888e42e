package node

import "github.com/prometheus/client_golang/prometheus"

// nodeCollector reads the node's figures at scrape time, so they are never
// stale and cost nothing between scrapes.
type nodeCollector struct {
	n        *Node
	peers    *prometheus.Desc
	routing  *prometheus.Desc
	meshSize *prometheus.Desc
	issued   *prometheus.Desc
	answered *prometheus.Desc
	refused  *prometheus.Desc
	receipts *prometheus.Desc
	batches  *prometheus.Desc
	reports  *prometheus.Desc
}

func newNodeCollector(n *Node) *nodeCollector {
	return &nodeCollector{
		n:        n,
		peers:    prometheus.NewDesc("aro_connected_peers", "Peers with an open connection.", nil, nil),
		routing:  prometheus.NewDesc("aro_dht_routing_table_size", "Peers in the DHT routing table.", nil, nil),
		meshSize: prometheus.NewDesc("aro_gossip_mesh_peers", "Peers in our gossipsub mesh of a topic.", []string{"topic"}, nil),
		issued:   prometheus.NewDesc("aro_challenges_issued_total", "Challenge attempts this keeper sent.", nil, nil),
		answered: prometheus.NewDesc("aro_challenges_answered_total", "Challenges this edge accepted and answered.", nil, nil),
		refused:  prometheus.NewDesc("aro_challenges_refused_total", "Challenge streams this edge refused: unscheduled, misdirected or unreadable.", nil, nil),
		receipts: prometheus.NewDesc("aro_receipts_signed_total", "Receipts this keeper signed, by result.", []string{"result"}, nil),
		batches:  prometheus.NewDesc("aro_epoch_batches_total", "Epoch batches this keeper proposed, co-signed, refused to co-sign (mismatched), submitted, saw applied, and equivocations it had slashed (disputed).", []string{"event"}, nil),
		reports:  prometheus.NewDesc("aro_work_reports_total", "Work Reports this edge published, or this keeper stored.", []string{"event"}, nil),
	}
}

func (c *nodeCollector) Describe(ch chan<- *prometheus.Desc) {
	ch <- c.peers
	ch <- c.routing
	ch <- c.meshSize
	ch <- c.issued
	ch <- c.answered
	ch <- c.refused
	ch <- c.receipts
	ch <- c.batches
	ch <- c.reports
}

func (c *nodeCollector) Collect(ch chan<- prometheus.Metric) {
	ch <- prometheus.MustNewConstMetric(c.peers, prometheus.GaugeValue, float64(len(c.n.host.Network().Peers())))
	ch <- prometheus.MustNewConstMetric(c.routing, prometheus.GaugeValue, float64(c.n.dht.RoutingTable().Size()))
	for topic, size := range c.n.gossip.MeshSizes() {
		ch <- prometheus.MustNewConstMetric(c.meshSize, prometheus.GaugeValue, float64(size), topic)
	}
	if s := c.n.settler; s != nil {
		st := s.Stats()
		for event, v := range map[string]uint64{"proposed": st.Proposed, "cosigned": st.Cosigned, "mismatched": st.Mismatched, "submitted": st.Submitted, "applied": st.Applied, "disputed": st.Disputed} {
			ch <- prometheus.MustNewConstMetric(c.batches, prometheus.CounterValue, float64(v), event)
		}
		ch <- prometheus.MustNewConstMetric(c.reports, prometheus.CounterValue, float64(st.ReportsPublished), "published")
		ch <- prometheus.MustNewConstMetric(c.reports, prometheus.CounterValue, float64(st.ReportsStored), "stored")
	}
	if c.n.engine == nil {
		return
	}
	st := c.n.engine.Stats()
	ch <- prometheus.MustNewConstMetric(c.issued, prometheus.CounterValue, float64(st.Issued))
	ch <- prometheus.MustNewConstMetric(c.answered, prometheus.CounterValue, float64(st.Answered))
	ch <- prometheus.MustNewConstMetric(c.refused, prometheus.CounterValue, float64(st.Refused))
	for result, n := range st.Receipts {
		ch <- prometheus.MustNewConstMetric(c.receipts, prometheus.CounterValue, float64(n), string(result))
	}
}
