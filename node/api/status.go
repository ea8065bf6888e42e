package api

import (
	"context"
	"fmt"
	"net/http"
)

// StatusPath is where the node's status is served.
const StatusPath = "/v1/status"

// Status is the body of GET /v1/status.
type Status struct {
	PeerID              string         `json:"peer_id"`
	Roles               []string       `json:"roles"`
	Network             string         `json:"network"`
	ListenAddrs         []string       `json:"listen_addrs"`
	ConnectedPeers      int            `json:"connected_peers"`
	DHTRoutingTableSize int            `json:"dht_routing_table_size"`
	Topics              map[string]int `json:"topics"` // topic name -> mesh size
	Version             string         `json:"version"`
	UptimeSeconds       float64        `json:"uptime_seconds"`
	LatestRound         uint64         `json:"latest_round,omitempty"`
}

func statusHandler(f func(context.Context) (Status, error)) http.Handler {
	return http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		st, err := f(r.Context())
		if err != nil {
			WriteError(w, http.StatusInternalServerError, fmt.Errorf("status: %w", err))
			return
		}
		// Empty rather than null, so scripts can iterate without checks.
		if st.Roles == nil {
			st.Roles = []string{}
		}
		if st.ListenAddrs == nil {
			st.ListenAddrs = []string{}
		}
		if st.Topics == nil {
			st.Topics = map[string]int{}
		}
		WriteJSON(w, http.StatusOK, st)
	})
}
