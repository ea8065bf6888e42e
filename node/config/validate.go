package config

import (
	"errors"
	"fmt"
	"net"
	"net/netip"
	"net/url"
	"reflect"
	"slices"
	"strconv"
	"strings"

	"github.com/libp2p/go-libp2p/core/peer"
	ma "github.com/multiformats/go-multiaddr"

	"github.com/aropeer/aropeer/proofs"
)

// maxMbit bounds a bandwidth claim, as proofs.MaxMbit does.
const maxMbit = 1_000_000

// FieldError is one invalid value. Validate joins one per mistake; find
// them with errors.As.
type FieldError struct {
	Key    string // TOML key, with an index for a list item: "listen[1]"
	Value  any    // the bad value
	Want   string // what is expected, as a phrase: "one of text, json"
	Source string // the environment variable that set it, if any
}

func (e *FieldError) Error() string {
	from := ""
	if e.Source != "" {
		from = " (from " + e.Source + ")"
	}
	return fmt.Sprintf("config: %s = %s%s: want %s", e.Key, tomlValue(e.Value), from, e.Want)
}

// Validate checks every field and returns all the mistakes joined, each a
// *FieldError naming its key, or nil.
func (c Config) Validate() error {
	var errs []error
	bad := func(key string, value any, want string, args ...any) {
		errs = append(errs, &FieldError{Key: key, Value: value, Want: fmt.Sprintf(want, args...)})
	}

	roleNames := strings.Join(roleStrings(Roles()), ", ")
	if len(c.Roles) == 0 {
		bad("roles", c.Roles, "at least one of %s", roleNames)
	}
	for i, r := range c.Roles {
		if !slices.Contains(Roles(), r) {
			bad(fmt.Sprintf("roles[%d]", i), string(r), "one of %s", roleNames)
		} else if slices.Index(c.Roles, r) < i {
			bad(fmt.Sprintf("roles[%d]", i), string(r), "each role once; %q is listed twice", r)
		}
	}

	if _, err := LookupNetwork(c.Network); err != nil {
		bad("network", c.Network, "one of %s", strings.Join(NetworkNames(), ", "))
	}

	if len(c.Listen) == 0 {
		bad("listen", c.Listen, "at least one multiaddr, like /ip4/0.0.0.0/tcp/4001")
	}
	for i, s := range c.Listen {
		if _, err := ma.NewMultiaddr(s); err != nil {
			bad(fmt.Sprintf("listen[%d]", i), s, "a multiaddr like /ip4/0.0.0.0/tcp/4001 (%v)", err)
		}
	}
	for i, s := range c.Announce {
		if _, err := ma.NewMultiaddr(s); err != nil {
			bad(fmt.Sprintf("announce[%d]", i), s, "a multiaddr like /ip4/203.0.113.7/tcp/4001 (%v)", err)
		}
	}
	for i, s := range c.Bootstrap {
		if _, err := parseBootstrap(s); err != nil {
			bad(fmt.Sprintf("bootstrap[%d]", i), s, "a multiaddr ending in /p2p/<peer id>, like /ip4/203.0.113.7/tcp/4001/p2p/12D3KooW... (%v)", err)
		}
	}
	for i, k := range c.Keepers {
		if _, err := parseKeeper(k); err != nil {
			bad(fmt.Sprintf("keepers[%d]", i), k, "<peer id>=<stake>, like 12D3KooW...=100 (%v)", err)
		}
	}
	for i, k := range c.Offers {
		switch {
		case !slices.Contains(Kinds(), k):
			bad(fmt.Sprintf("offers[%d]", i), k, "one of %s", strings.Join(Kinds(), ", "))
		case slices.Index(c.Offers, k) < i:
			bad(fmt.Sprintf("offers[%d]", i), k, "each kind once; %q is listed twice", k)
		}
	}
	b := c.Bandwidth
	if slices.Contains(c.Offers, "bandwidth") && b.UpMbit == 0 && b.DownMbit == 0 {
		bad("bandwidth.up_mbit", b.UpMbit, "a claim in Mbit/s (with bandwidth.down_mbit) when offers lists bandwidth")
	}
	if b.UpMbit > maxMbit {
		bad("bandwidth.up_mbit", b.UpMbit, "at most %d (1 Tbit/s)", maxMbit)
	}
	if b.DownMbit > maxMbit {
		bad("bandwidth.down_mbit", b.DownMbit, "at most %d (1 Tbit/s)", maxMbit)
	}
	if b.MaxProbes < 1 || b.MaxProbes > 64 {
		bad("bandwidth.max_probes", b.MaxProbes, "1 to 64")
	}
	if b.EpochMiB < 1 {
		bad("bandwidth.epoch_mib", b.EpochMiB, "at least 1")
	}
	cp := c.Compute
	if slices.Contains(c.Offers, "compute") {
		if cp.Device == "" {
			bad("compute.device", cp.Device, "a device class like cpu or nvidia-rtx-4090 when offers lists compute")
		}
		if cp.MilliTOPS == 0 {
			bad("compute.milli_tops", cp.MilliTOPS, "a claim in milli-TOPS (1 = 1 GOPS) when offers lists compute")
		}
	}
	if len(cp.Device) > 64 || !printableASCII(cp.Device) {
		bad("compute.device", cp.Device, "up to 64 printable ASCII characters")
	}
	if cp.MilliTOPS > proofs.MaxMilliTOPS {
		bad("compute.milli_tops", cp.MilliTOPS, "at most %d (a million TOPS)", uint64(proofs.MaxMilliTOPS))
	}
	switch cp.Executor {
	case ExecutorCPU:
	case ExecutorExec:
		if cp.Program == "" {
			bad("compute.program", cp.Program, "the worker program to run when compute.executor is exec")
		}
	default:
		bad("compute.executor", cp.Executor, "%s or %s", ExecutorCPU, ExecutorExec)
	}
	if cp.MaxMemoryMiB < 1 {
		bad("compute.max_memory_mib", cp.MaxMemoryMiB, "at least 1")
	}
	for i, s := range c.Deny {
		if _, _, err := parseDeny(s); err != nil {
			bad(fmt.Sprintf("deny[%d]", i), s, "a peer ID (12D3KooW...) or a CIDR prefix like 10.0.0.0/8 or 203.0.113.7/32")
		}
	}

	for i, r := range c.Beacon.Relays {
		if u, err := url.Parse(r); err != nil || (u.Scheme != "https" && u.Scheme != "http") || u.Host == "" {
			bad(fmt.Sprintf("beacon.relays[%d]", i), r, "a drand HTTP relay URL like https://api.drand.sh")
		}
	}
	if c.Ledger.Sequencer != "" {
		if _, err := peer.Decode(c.Ledger.Sequencer); err != nil {
			bad("ledger.sequencer", c.Ledger.Sequencer, "a peer ID like 12D3KooW... (%v)", err)
		} else if c.Ledger.Serve {
			bad("ledger.sequencer", c.Ledger.Sequencer, "empty when ledger.serve is true: this node is the sequencer")
		}
	}
	for i, s := range c.Devnet.Probability {
		if _, _, err := parseProbability(s); err != nil {
			bad(fmt.Sprintf("devnet.probability[%d]", i), s, "kind=p with p from 0 to 1, like bandwidth=0.5 (%v)", err)
		}
	}
	if n, err := LookupNetwork(c.Network); err == nil && n.LocalBeacon == nil && len(c.Devnet.Probability) > 0 {
		bad("devnet.probability", c.Devnet.Probability, "empty: network %s is not a devnet and its parameters are fixed", c.Network)
	}
	if c.Beacon.Local {
		if n, err := LookupNetwork(c.Network); err == nil && n.LocalBeacon == nil {
			bad("beacon.local", true, "false: network %s follows a drand chain and has no local beacon", c.Network)
		}
	}
	if err := checkLoopback(c.API.Addr); err != nil {
		bad("api.addr", c.API.Addr, "a loopback host:port like 127.0.0.1:8547 (host 127.0.0.1, ::1 or localhost): %v", err)
	}

	l := c.Limits
	positive := []struct {
		key string
		v   int64
	}{
		{"limits.memory_mib", l.MemoryMiB},
		{"limits.system_conns", int64(l.SystemConns)},
		{"limits.system_streams", int64(l.SystemStreams)},
		{"limits.peer_conns", int64(l.PeerConns)},
		{"limits.peer_streams", int64(l.PeerStreams)},
		{"limits.protocol_streams", int64(l.ProtocolStreams)},
	}
	for _, p := range positive {
		if p.v <= 0 {
			bad(p.key, p.v, "a positive number")
		}
	}
	// A per-peer or per-protocol limit above the system's never applies and
	// is likely a typo. Skipped when the system limit itself is bad.
	within := func(key string, v int, sysKey string, sys int) {
		if v > 0 && sys > 0 && v > sys {
			bad(key, v, "at most %s (%d)", sysKey, sys)
		}
	}
	within("limits.peer_conns", l.PeerConns, "limits.system_conns", l.SystemConns)
	within("limits.peer_streams", l.PeerStreams, "limits.system_streams", l.SystemStreams)
	within("limits.protocol_streams", l.ProtocolStreams, "limits.system_streams", l.SystemStreams)

	cm := c.ConnMgr
	if cm.Low <= 0 {
		bad("connmgr.low", cm.Low, "a positive number")
	}
	if cm.High <= cm.Low {
		bad("connmgr.high", cm.High, "more than connmgr.low (%d)", cm.Low)
	}
	// The connection manager must trim before the resource manager starts
	// refusing connections, or trimming never happens.
	if l.SystemConns > 0 && cm.High >= l.SystemConns {
		bad("connmgr.high", cm.High, "less than limits.system_conns (%d), so that connections are trimmed before they are refused", l.SystemConns)
	}
	if cm.Grace.Duration <= 0 {
		bad("connmgr.grace", cm.Grace, `a positive duration like "30s"`)
	}

	logLevels := []string{"debug", "info", "warn", "error"}
	if !slices.Contains(logLevels, c.Log.Level) {
		bad("log.level", c.Log.Level, "one of %s", strings.Join(logLevels, ", "))
	}
	logFormats := []string{"text", "json"}
	if !slices.Contains(logFormats, c.Log.Format) {
		bad("log.format", c.Log.Format, "one of %s", strings.Join(logFormats, ", "))
	}
	return errors.Join(errs...)
}

func roleStrings(roles []Role) []string {
	s := make([]string, len(roles))
	for i, r := range roles {
		s[i] = string(r)
	}
	return s
}

func checkLoopback(hostport string) error {
	host, port, err := net.SplitHostPort(hostport)
	if err != nil {
		return err
	}
	if n, err := strconv.ParseUint(port, 10, 16); err != nil || (n == 0 && port != "0") {
		return fmt.Errorf("port %q is not a number from 0 to 65535", port)
	}
	if host == "localhost" {
		return nil
	}
	ip, err := netip.ParseAddr(host)
	if err != nil || !ip.IsLoopback() {
		return fmt.Errorf("%q is not a loopback address", host)
	}
	return nil
}

// tomlValue formats v as it would appear in the config file.
func tomlValue(v any) string {
	switch v := v.(type) {
	case string:
		return strconv.Quote(v)
	case Duration:
		return strconv.Quote(v.String())
	}
	rv := reflect.ValueOf(v)
	if rv.Kind() == reflect.Slice {
		items := make([]string, rv.Len())
		for i := range items {
			items[i] = tomlValue(rv.Index(i).Convert(reflect.TypeFor[string]()).Interface())
		}
		return "[" + strings.Join(items, ", ") + "]"
	}
	return fmt.Sprint(v)
}

// printableASCII reports whether s holds only printable ASCII.
func printableASCII(s string) bool {
	for _, r := range s {
		if r < 0x20 || r > 0x7e {
			return false
		}
	}
	return true
}
