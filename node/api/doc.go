// Package api is the node's local HTTP API: a JSON status endpoint,
// Prometheus metrics, and whatever read and write endpoints the node
// registers, together with the client the CLI uses to reach them.
//
// Only one process can open the node's pebble store, so while a node runs
// the CLI reads through this API instead, and opens the store itself only
// when the client reports [ErrNotRunning].
//
// The server listens on loopback only. Reads are open to local processes;
// endpoints that change anything are registered with
// [Server.HandleMutating] and need the bearer token from the data
// directory's api.token file, as bitcoind's RPC needs its cookie file.
package api
