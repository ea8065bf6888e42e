package config_test

import (
	"errors"
	"reflect"
	"slices"
	"strings"
	"testing"
	"time"

	"github.com/aropeer/aropeer/node/config"
)

func TestKeys(t *testing.T) {
	want := []string{
		"roles", "network", "listen", "announce", "bootstrap", "deny", "keepers", "offers",
		"beacon.relays", "beacon.local", "ledger.serve", "ledger.sequencer",
		"bandwidth.up_mbit", "bandwidth.down_mbit", "bandwidth.max_probes", "bandwidth.epoch_mib",
		"compute.device", "compute.milli_tops", "compute.executor", "compute.program", "compute.args", "compute.max_memory_mib",
		"api.addr",
		"limits.memory_mib", "limits.system_conns", "limits.system_streams",
		"limits.peer_conns", "limits.peer_streams", "limits.protocol_streams",
		"connmgr.low", "connmgr.high", "connmgr.grace",
		"log.level", "log.format", "devnet.probability",
	}
	if got := config.Keys(); !slices.Equal(got, want) {
		t.Errorf("Keys() =\n%v\nwant\n%v", got, want)
	}
}

func TestSet(t *testing.T) {
	c := config.Default()
	sets := [][2]string{
		{"roles", "keeper, bootstrap"},
		{"network", "devnet"},
		{"listen", "/ip4/127.0.0.1/tcp/0,/ip4/127.0.0.1/udp/0/quic-v1"},
		{"announce", ""},
		{"offers", "storage,compute"},
		{"api.addr", "127.0.0.1:0"},
		{"limits.memory_mib", "1024"},
		{"limits.peer_conns", " 16 "},
		{"connmgr.grace", "1m"},
		{"log.level", "debug"},
	}
	for _, kv := range sets {
		if err := c.Set(kv[0], kv[1]); err != nil {
			t.Fatalf("Set(%q, %q): %v", kv[0], kv[1], err)
		}
	}
	want := config.Default(config.RoleKeeper, config.RoleBootstrap)
	want.Listen = []string{"/ip4/127.0.0.1/tcp/0", "/ip4/127.0.0.1/udp/0/quic-v1"}
	want.Offers = []string{"storage", "compute"}
	want.API.Addr = "127.0.0.1:0"
	want.Limits.MemoryMiB = 1024
	want.Limits.PeerConns = 16
	want.ConnMgr.Grace = config.Duration{Duration: time.Minute}
	want.Log.Level = "debug"
	if !reflect.DeepEqual(c, want) {
		t.Errorf("after Set:\n got %+v\nwant %+v", c, want)
	}
}

// Every key can be set: a field of a kind Set does not handle fails here.
func TestSetEveryKey(t *testing.T) {
	for _, key := range config.Keys() {
		c := config.Default()
		for _, v := range []string{"1s", "7", "true", "x"} { // one parses as each kind
			if c.Set(key, v) == nil {
				break
			}
			if v == "x" {
				t.Errorf("Set(%q) accepts none of 1s, 7, true, x", key)
			}
		}
	}
}

func TestSetErrors(t *testing.T) {
	c := config.Default()
	tests := []struct{ key, value, want string }{
		{"limits.peer_conns", "eight", `config: limits.peer_conns = "eight": want an integer`},
		{"connmgr.grace", "30", `config: connmgr.grace = "30": want a duration string like "30s"`},
		{"api.adr", "x", `config: unknown key "api.adr": want api.addr`},
		{"api", "x", `config: unknown key "api": want one of roles, network, listen,`},
	}
	for _, tt := range tests {
		err := c.Set(tt.key, tt.value)
		if err == nil || !strings.HasPrefix(err.Error(), tt.want) {
			t.Errorf("Set(%q, %q) = %v; want %q", tt.key, tt.value, err, tt.want)
		}
	}
	if err := c.Set("api.adr", "x"); !errors.Is(err, config.ErrUnknownKey) {
		t.Errorf("Set(unknown) = %v; want ErrUnknownKey", err)
	}
	if !reflect.DeepEqual(c, config.Default()) {
		t.Error("a failed Set changed the config")
	}
}

func TestApplyEnv(t *testing.T) {
	c := config.Default()
	err := c.ApplyEnv([]string{
		"HOME=/home/aro",
		"ARO_DATADIR=/var/lib/aropeer", // not a config key: ignored
		"ARO_API_ADDR=[::1]:8600",
		"ARO_LOG_LEVEL=warn",
		"ARO_LISTEN=/ip4/0.0.0.0/tcp/5001,/ip4/0.0.0.0/udp/5001/quic-v1",
		"ARO_LIMITS_PEER_CONNS=12",
		"ARO_CONNMGR_GRACE=45s",
		"PATH=/usr/bin",
	})
	if err != nil {
		t.Fatal(err)
	}
	want := config.Default()
	want.API.Addr = "[::1]:8600"
	want.Log.Level = "warn"
	want.Listen = []string{"/ip4/0.0.0.0/tcp/5001", "/ip4/0.0.0.0/udp/5001/quic-v1"}
	want.Limits.PeerConns = 12
	want.ConnMgr.Grace = config.Duration{Duration: 45 * time.Second}
	if !reflect.DeepEqual(c, want) {
		t.Errorf("after ApplyEnv:\n got %+v\nwant %+v", c, want)
	}
	if err := c.Validate(); err != nil {
		t.Error(err)
	}
}

func TestApplyEnvErrors(t *testing.T) {
	c := config.Default()
	err := c.ApplyEnv([]string{"ARO_FOO=1", "ARO_LIMITS_PEER_CONNS=many", "ARO_LOGLEVEL=debug"})
	if !errors.Is(err, config.ErrUnknownKey) {
		t.Errorf("ApplyEnv = %v; want ErrUnknownKey", err)
	}
	// Every mistake is reported, each naming its variable.
	for _, want := range []string{
		"config: unknown environment variable ARO_FOO:",
		`config: limits.peer_conns = "many" (from ARO_LIMITS_PEER_CONNS): want an integer`,
		"config: unknown environment variable ARO_LOGLEVEL:",
	} {
		if err == nil || !strings.Contains(err.Error(), want) {
			t.Errorf("ApplyEnv error:\n%v\nwant it to contain %q", err, want)
		}
	}
}

func TestEnvVar(t *testing.T) {
	if got := config.EnvVar("limits.peer_conns"); got != "ARO_LIMITS_PEER_CONNS" {
		t.Errorf("EnvVar(limits.peer_conns) = %s", got)
	}
	// Distinct keys map to distinct variables, none of them ARO_DATADIR.
	seen := map[string]string{config.EnvDatadir: "(datadir)"}
	for _, key := range config.Keys() {
		v := config.EnvVar(key)
		if other, dup := seen[v]; dup {
			t.Errorf("%s and %s both map to %s", key, other, v)
		}
		seen[v] = key
	}
}
