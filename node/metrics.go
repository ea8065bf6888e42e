package node

import "github.com/prometheus/client_golang/prometheus"

// nodeCollector reads the node's figures at scrape time, so they are never
// stale and cost nothing between scrapes.
type nodeCollector struct {
	n        *Node
	peers    *prometheus.Desc
	routing  *prometheus.Desc
	meshSize *prometheus.Desc
}

func newNodeCollector(n *Node) *nodeCollector {
	return &nodeCollector{
		n:        n,
		peers:    prometheus.NewDesc("aro_connected_peers", "Peers with an open connection.", nil, nil),
		routing:  prometheus.NewDesc("aro_dht_routing_table_size", "Peers in the DHT routing table.", nil, nil),
		meshSize: prometheus.NewDesc("aro_gossip_mesh_peers", "Peers in our gossipsub mesh of a topic.", []string{"topic"}, nil),
	}
}

func (c *nodeCollector) Describe(ch chan<- *prometheus.Desc) {
	ch <- c.peers
	ch <- c.routing
	ch <- c.meshSize
}

func (c *nodeCollector) Collect(ch chan<- prometheus.Metric) {
	ch <- prometheus.MustNewConstMetric(c.peers, prometheus.GaugeValue, float64(len(c.n.host.Network().Peers())))
	ch <- prometheus.MustNewConstMetric(c.routing, prometheus.GaugeValue, float64(c.n.dht.RoutingTable().Size()))
	for topic, size := range c.n.gossip.MeshSizes() {
		ch <- prometheus.MustNewConstMetric(c.meshSize, prometheus.GaugeValue, float64(size), topic)
	}
}
