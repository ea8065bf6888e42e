package config_test

import (
	"errors"
	"strings"
	"testing"
	"time"

	"github.com/aropeer/aropeer/node/config"
)

const testPeer = "12D3KooWD3eckifWpRn9wQpMG9R9hX3sD158z7EqHWmweQAJU5SA"

// fieldErrors flattens a joined error into its FieldErrors.
func fieldErrors(t *testing.T, err error) []*config.FieldError {
	t.Helper()
	var out []*config.FieldError
	var walk func(error)
	walk = func(err error) {
		if j, ok := err.(interface{ Unwrap() []error }); ok {
			for _, e := range j.Unwrap() {
				walk(e)
			}
			return
		}
		var fe *config.FieldError
		if !errors.As(err, &fe) {
			t.Errorf("error %q is not a *FieldError", err)
			return
		}
		out = append(out, fe)
	}
	if err != nil {
		walk(err)
	}
	return out
}

func TestDefaultIsValid(t *testing.T) {
	for _, roles := range [][]config.Role{nil, {config.RoleKeeper}, config.Roles()} {
		c := config.Default(roles...)
		if err := c.Validate(); err != nil {
			t.Errorf("Default(%v).Validate() = %v", roles, err)
		}
	}
	if got := config.Default().Roles; len(got) != 1 || got[0] != config.RoleEdge {
		t.Errorf("Default().Roles = %v; want [edge]", got)
	}
	c := config.Default(config.RoleKeeper, config.RoleBootstrap)
	if !c.HasRole(config.RoleKeeper) || !c.HasRole(config.RoleBootstrap) || c.HasRole(config.RoleEdge) {
		t.Errorf("HasRole on %v is wrong", c.Roles)
	}
}

func TestValidate(t *testing.T) {
	tests := []struct {
		name   string
		mutate func(c *config.Config)
		want   string // the whole message of the single error
	}{
		{"no roles", func(c *config.Config) { c.Roles = nil },
			`config: roles = []: want at least one of edge, keeper, bootstrap`},
		{"unknown role", func(c *config.Config) { c.Roles = []config.Role{"edge", "miner"} },
			`config: roles[1] = "miner": want one of edge, keeper, bootstrap`},
		{"duplicate role", func(c *config.Config) { c.Roles = []config.Role{"keeper", "edge", "keeper"} },
			`config: roles[2] = "keeper": want each role once; "keeper" is listed twice`},
		{"unknown network", func(c *config.Config) { c.Network = "mainnet" },
			`config: network = "mainnet": want one of devnet`},
		{"no listen", func(c *config.Config) { c.Listen = []string{} },
			`config: listen = []: want at least one multiaddr, like /ip4/0.0.0.0/tcp/4001`},
		{"bad listen", func(c *config.Config) { c.Listen = append(c.Listen, "0.0.0.0:4001") },
			`config: listen[2] = "0.0.0.0:4001": want a multiaddr like /ip4/0.0.0.0/tcp/4001 (`},
		{"bad announce", func(c *config.Config) { c.Announce = []string{"/ip4/300.0.0.1/tcp/1"} },
			`config: announce[0] = "/ip4/300.0.0.1/tcp/1": want a multiaddr like`},
		{"bootstrap without peer id", func(c *config.Config) { c.Bootstrap = []string{"/ip4/203.0.113.7/tcp/4001"} },
			`config: bootstrap[0] = "/ip4/203.0.113.7/tcp/4001": want a multiaddr ending in /p2p/<peer id>`},
		{"compute without a claim", func(c *config.Config) { c.Offers = []string{"compute"}; c.Compute.Device = "cpu" },
			`config: compute.milli_tops = 0: want a claim in milli-TOPS (1 = 1 GOPS) when offers lists compute`},
		{"compute without a device", func(c *config.Config) { c.Offers = []string{"compute"}; c.Compute.MilliTOPS = 5 },
			`config: compute.device = "": want a device class like cpu or nvidia-rtx-4090 when offers lists compute`},
		{"unknown executor", func(c *config.Config) { c.Compute.Executor = "cuda" },
			`config: compute.executor = "cuda": want cpu or exec`},
		{"exec without a program", func(c *config.Config) { c.Compute.Executor = "exec" },
			`config: compute.program = "": want the worker program to run when compute.executor is exec`},
		{"no compute memory", func(c *config.Config) { c.Compute.MaxMemoryMiB = 0 },
			`config: compute.max_memory_mib = 0: want at least 1`},
		{"probability without kind", func(c *config.Config) { c.Devnet.Probability = []string{"0.5"} },
			`config: devnet.probability[0] = "0.5": want kind=p with p from 0 to 1, like bandwidth=0.5 (want kind=p`},
		{"probability of an unknown kind", func(c *config.Config) { c.Devnet.Probability = []string{"gpu=0.5"} },
			`config: devnet.probability[0] = "gpu=0.5": want kind=p with p from 0 to 1, like bandwidth=0.5 (proofs: unknown resource kind "gpu"`},
		{"probability above 1", func(c *config.Config) { c.Devnet.Probability = []string{"bandwidth=2"} },
			`config: devnet.probability[0] = "bandwidth=2": want kind=p with p from 0 to 1, like bandwidth=0.5 (probability "2": want a number from 0 to 1)`},
		{"unknown offer", func(c *config.Config) { c.Offers = []string{"liveness", "gpu"} },
			`config: offers[1] = "gpu": want one of liveness, storage, bandwidth, compute`},
		{"duplicate offer", func(c *config.Config) { c.Offers = []string{"storage", "storage"} },
			`config: offers[1] = "storage": want each kind once; "storage" is listed twice`},
		{"bandwidth offered without a claim", func(c *config.Config) { c.Offers = []string{"bandwidth"} },
			`config: bandwidth.up_mbit = 0: want a claim in Mbit/s (with bandwidth.down_mbit) when offers lists bandwidth`},
		{"bandwidth claim over 1 Tbit/s", func(c *config.Config) { c.Bandwidth.DownMbit = 2_000_000 },
			`config: bandwidth.down_mbit = 2000000: want at most 1000000 (1 Tbit/s)`},
		{"no probes allowed", func(c *config.Config) { c.Bandwidth.MaxProbes = 0 },
			`config: bandwidth.max_probes = 0: want 1 to 64`},
		{"no probe traffic allowed", func(c *config.Config) { c.Bandwidth.EpochMiB = 0 },
			`config: bandwidth.epoch_mib = 0: want at least 1`},
		{"bad relay", func(c *config.Config) { c.Beacon.Relays = []string{"api.drand.sh"} },
			`config: beacon.relays[0] = "api.drand.sh": want a drand HTTP relay URL like https://api.drand.sh`},
		{"bad deny", func(c *config.Config) { c.Deny = []string{"10.0.0.0/8", "10.0.0.0/33"} },
			`config: deny[1] = "10.0.0.0/33": want a peer ID (12D3KooW...) or a CIDR prefix like 10.0.0.0/8 or 203.0.113.7/32`},
		{"api not loopback", func(c *config.Config) { c.API.Addr = "0.0.0.0:8547" },
			`config: api.addr = "0.0.0.0:8547": want a loopback host:port like 127.0.0.1:8547 (host 127.0.0.1, ::1 or localhost): "0.0.0.0" is not a loopback address`},
		{"api without port", func(c *config.Config) { c.API.Addr = "127.0.0.1" },
			`config: api.addr = "127.0.0.1": want a loopback host:port`},
		{"api bad port", func(c *config.Config) { c.API.Addr = "localhost:99999" },
			`config: api.addr = "localhost:99999": want a loopback host:port like 127.0.0.1:8547 (host 127.0.0.1, ::1 or localhost): port "99999" is not a number from 0 to 65535`},
		{"memory", func(c *config.Config) { c.Limits.MemoryMiB = 0 },
			`config: limits.memory_mib = 0: want a positive number`},
		{"system conns", func(c *config.Config) { c.Limits.SystemConns = -1 },
			`config: limits.system_conns = -1: want a positive number`},
		{"system streams", func(c *config.Config) { c.Limits.SystemStreams = 0 },
			`config: limits.system_streams = 0: want a positive number`},
		{"peer conns", func(c *config.Config) { c.Limits.PeerConns = 0 },
			`config: limits.peer_conns = 0: want a positive number`},
		{"peer conns above system", func(c *config.Config) { c.Limits.PeerConns = 513 },
			`config: limits.peer_conns = 513: want at most limits.system_conns (512)`},
		{"peer streams", func(c *config.Config) { c.Limits.PeerStreams = 0 },
			`config: limits.peer_streams = 0: want a positive number`},
		{"protocol streams", func(c *config.Config) { c.Limits.ProtocolStreams = 5000 },
			`config: limits.protocol_streams = 5000: want at most limits.system_streams (4096)`},
		{"connmgr low", func(c *config.Config) { c.ConnMgr.Low = 0 },
			`config: connmgr.low = 0: want a positive number`},
		{"connmgr high below low", func(c *config.Config) { c.ConnMgr.High = 100 },
			`config: connmgr.high = 100: want more than connmgr.low (100)`},
		{"connmgr high above limits", func(c *config.Config) { c.ConnMgr.High = 512 },
			`config: connmgr.high = 512: want less than limits.system_conns (512), so that connections are trimmed before they are refused`},
		{"connmgr grace", func(c *config.Config) { c.ConnMgr.Grace = config.Duration{Duration: -time.Second} },
			`config: connmgr.grace = "-1s": want a positive duration like "30s"`},
		{"log level", func(c *config.Config) { c.Log.Level = "verbose" },
			`config: log.level = "verbose": want one of debug, info, warn, error`},
		{"log format", func(c *config.Config) { c.Log.Format = "xml" },
			`config: log.format = "xml": want one of text, json`},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			c := config.Default()
			tt.mutate(&c)
			errs := fieldErrors(t, c.Validate())
			if len(errs) != 1 {
				t.Fatalf("Validate gave %d errors %v; want 1", len(errs), errs)
			}
			if got := errs[0].Error(); !strings.HasPrefix(got, tt.want) {
				t.Errorf("Validate:\n got %s\nwant %s", got, tt.want)
			}
		})
	}
}

func TestValidateAccepts(t *testing.T) {
	c := config.Default(config.RoleBootstrap)
	c.API.Addr = "[::1]:0"
	c.Announce = []string{"/dns4/node.example.com/tcp/4001"}
	c.Bootstrap = []string{"/ip4/203.0.113.7/tcp/4001/p2p/" + testPeer}
	c.Deny = []string{testPeer, "192.168.0.0/16", "2001:db8::/32"}
	if err := c.Validate(); err != nil {
		t.Fatal(err)
	}
	c.API.Addr = "localhost:8547"
	if err := c.Validate(); err != nil {
		t.Fatal(err)
	}
}

// All mistakes come back at once, so the operator fixes them in one pass.
func TestValidateCollectsAll(t *testing.T) {
	c := config.Default()
	c.Log.Level = "verbose"
	c.API.Addr = "example.com:80"
	c.Limits.PeerStreams = 0
	c.Network = ""
	errs := fieldErrors(t, c.Validate())
	var keys []string
	for _, e := range errs {
		keys = append(keys, e.Key)
	}
	if got, want := strings.Join(keys, " "), "network api.addr limits.peer_streams log.level"; got != want {
		t.Errorf("keys in error = %s; want %s", got, want)
	}
}
