package config

import (
	"bytes"
	"errors"
	"fmt"
	"io/fs"
	"os"
	"reflect"
	"slices"
	"strings"
	"time"

	"github.com/pelletier/go-toml/v2"
)

// ErrNoConfig is returned by Read and Load when the config file is missing.
var ErrNoConfig = errors.New("config: no config file")

// Role is a part a node plays in the network; one node may play several.
type Role string

// The roles.
const (
	RoleEdge      Role = "edge"      // proves its resources, answers challenges
	RoleKeeper    Role = "keeper"    // challenges edges, signs receipts, settles
	RoleBootstrap Role = "bootstrap" // DHT server and relay with a stable address
)

// Roles lists every role in a stable order.
func Roles() []Role { return []Role{RoleEdge, RoleKeeper, RoleBootstrap} }

// Config is the daemon's configuration. Its TOML keys are the tags; nested
// structs are TOML tables, so Limits.PeerConns is "limits.peer_conns".
type Config struct {
	Roles     []Role   `toml:"roles" comment:"Roles this node plays: edge, keeper, bootstrap."`
	Network   string   `toml:"network" comment:"Network to join (built in: devnet)."`
	Listen    []string `toml:"listen" comment:"Multiaddrs to listen on."`
	Announce  []string `toml:"announce" comment:"Extra multiaddrs to announce, e.g. a public address behind port forwarding."`
	Bootstrap []string `toml:"bootstrap" comment:"Bootstrap peers, as multiaddrs ending in /p2p/<peer id>."`
	Deny      []string `toml:"deny" comment:"Peer IDs and CIDR prefixes (e.g. 10.0.0.0/8) never to connect with."`
	Keepers   []string `toml:"keepers" comment:"Genesis keepers as <peer id>=<stake>, for a network that has none built in (a devnet)."`
	Offers    []string `toml:"offers" comment:"Resource kinds an edge offers besides liveness, which every edge proves: storage, bandwidth, compute. Other roles ignore it."`

	Beacon    Beacon    `toml:"beacon" comment:"Where beacon rounds come from: gossip always, drand HTTP relays, and a devnet's local beacon."`
	Ledger    Ledger    `toml:"ledger" comment:"Where epoch batches settle: the embedded ledger, served by one sequencer node."`
	Bandwidth Bandwidth `toml:"bandwidth" comment:"An edge offering bandwidth: what it claims, and how much probing it accepts."`
	Compute   Compute   `toml:"compute" comment:"An edge offering compute: the device class it claims, and what runs its spot-checks."`
	API       API       `toml:"api" comment:"Local HTTP API: status, metrics, control."`
	Limits    Limits    `toml:"limits" comment:"Resource manager limits: what the node accepts at most."`
	ConnMgr   ConnMgr   `toml:"connmgr" comment:"Connection manager: trims connections from high down to low, below limits.system_conns."`
	Log       Log       `toml:"log"`
	Devnet    Devnet    `toml:"devnet" comment:"A devnet's shared parameters, changed for tests and experiments: every node of the devnet must set the same."`
}

// Beacon configures the node's beacon sources. Gossip on drand's topic is
// always on; the others add to it.
type Beacon struct {
	// Relays are drand HTTP relays; empty means the network's default.
	Relays []string `toml:"relays" comment:"drand HTTP relays (https://...); empty: the network's default."`
	// Local runs the network's local beacon; only a devnet has one, and
	// only one node of it should run it.
	Local bool `toml:"local" comment:"Sign the network's rounds with its local beacon (devnet only, one node)."`
}

// Ledger says where the node settles. One node of a devnet (its
// bootstrap) serves the embedded ledger from its store; the others reach
// it over libp2p.
type Ledger struct {
	// Serve runs the embedded ledger in this node's store and serves it.
	Serve bool `toml:"serve" comment:"Run the network's embedded ledger here and serve it (the sequencer; one node of a devnet)."`
	// Sequencer is the peer ID of the node that serves it.
	Sequencer string `toml:"sequencer" comment:"Peer ID of the sequencer serving the ledger; empty on the sequencer itself."`
}

// Bandwidth is an edge's bandwidth claim and the limits it puts on the
// keepers' probes, which cost home users traffic.
type Bandwidth struct {
	UpMbit   uint64 `toml:"up_mbit" comment:"Claimed upload (edge to keeper) in Mbit/s."`
	DownMbit uint64 `toml:"down_mbit" comment:"Claimed download (keeper to edge) in Mbit/s."`
	// MaxProbes bounds the probes served at once.
	MaxProbes int `toml:"max_probes" comment:"Probes served at once, at most."`
	// EpochMiB bounds the probe traffic of one epoch.
	EpochMiB int64 `toml:"epoch_mib" comment:"Probe traffic served per epoch, at most, in MiB."`
}

// Compute is an edge's compute claim and the executor that proves it.
type Compute struct {
	Device string `toml:"device" comment:"Device class claimed, e.g. cpu or nvidia-rtx-4090."`
	// MilliTOPS sets the size of each check and its deadline.
	MilliTOPS uint64 `toml:"milli_tops" comment:"Claimed int8 throughput in milli-TOPS (1 = 1 GOPS); it sets each check's size and deadline."`
	Executor  string `toml:"executor" comment:"cpu (built in, all cores) or exec (an external worker program, e.g. a GPU one)."`
	// Program and Args run an exec worker: see compute/worker/README.md.
	Program string   `toml:"program" comment:"The worker program of executor exec (see compute/worker/README.md)."`
	Args    []string `toml:"args" comment:"Arguments given to the worker program before n and the seed."`
	// MaxMemoryMiB bounds what the checks in progress hold.
	MaxMemoryMiB int64 `toml:"max_memory_mib" comment:"Memory the compute checks in progress may hold, at most, in MiB."`
}

// Compute executors.
const (
	ExecutorCPU  = "cpu"
	ExecutorExec = "exec"
)

// Devnet overrides parameters of a devnet, which every node of a network
// must agree on; a network that is not a devnet refuses them.
type Devnet struct {
	// Probability replaces the network's challenge probability of a kind.
	Probability []string `toml:"probability" comment:"Per-kind challenge probabilities replacing the devnet's, as kind=p, e.g. bandwidth=0.5."`
}

// API configures the local HTTP API.
type API struct {
	// Addr is a loopback host:port; the API is never exposed to the network.
	Addr string `toml:"addr" comment:"Loopback host:port (127.0.0.1, ::1 or localhost)."`
}

// Limits are the libp2p resource manager's limits.
type Limits struct {
	MemoryMiB       int64 `toml:"memory_mib"`
	SystemConns     int   `toml:"system_conns"`
	SystemStreams   int   `toml:"system_streams"`
	PeerConns       int   `toml:"peer_conns"`
	PeerStreams     int   `toml:"peer_streams"`
	ProtocolStreams int   `toml:"protocol_streams"`
}

// ConnMgr configures the libp2p connection manager's watermarks.
type ConnMgr struct {
	Low   int      `toml:"low"`
	High  int      `toml:"high"`
	Grace Duration `toml:"grace" comment:"How long a new connection is safe from trimming."`
}

// Log configures logging.
type Log struct {
	Level  string `toml:"level" comment:"debug, info, warn or error."`
	Format string `toml:"format" comment:"text or json."`
}

// Default returns the configuration of a home node playing roles (edge if
// none is given) on devnet.
func Default(roles ...Role) Config {
	if len(roles) == 0 {
		roles = []Role{RoleEdge}
	}
	return Config{
		Roles:   append([]Role(nil), roles...),
		Network: "devnet",
		Listen: []string{
			"/ip4/0.0.0.0/tcp/4001",
			"/ip4/0.0.0.0/udp/4001/quic-v1",
		},
		Announce:  []string{},
		Bootstrap: []string{},
		Deny:      []string{},
		Keepers:   []string{},
		Offers:    []string{},
		Beacon:    Beacon{Relays: []string{}},
		Bandwidth: Bandwidth{MaxProbes: 3, EpochMiB: 2048},
		Compute:   Compute{Executor: ExecutorCPU, Args: []string{}, MaxMemoryMiB: 256},
		Devnet:    Devnet{Probability: []string{}},
		API:       API{Addr: "127.0.0.1:8547"},
		Limits: Limits{
			MemoryMiB:       512,
			SystemConns:     512,
			SystemStreams:   4096,
			PeerConns:       8,
			PeerStreams:     256,
			ProtocolStreams: 1024,
		},
		ConnMgr: ConnMgr{Low: 100, High: 400, Grace: Duration{30 * time.Second}},
		Log:     Log{Level: "info", Format: "text"},
	}
}

// Kinds lists the resource kinds an edge can offer.
func Kinds() []string { return []string{"liveness", "storage", "bandwidth", "compute"} }

// Offered returns the kinds an edge offers: liveness, and those listed.
func (c Config) Offered() []string {
	kinds := []string{"liveness"}
	for _, k := range c.Offers {
		if !slices.Contains(kinds, k) {
			kinds = append(kinds, k)
		}
	}
	return kinds
}

// HasRole reports whether c plays r.
func (c Config) HasRole(r Role) bool {
	for _, have := range c.Roles {
		if have == r {
			return true
		}
	}
	return false
}

// Duration is a time.Duration written in TOML as a string such as "30s".
// It is a struct, not a named int64, so that a bare number ("grace = 30")
// is refused rather than read as nanoseconds.
type Duration struct{ time.Duration }

// MarshalText writes d as "30s", "1m30s", ...
func (d Duration) MarshalText() ([]byte, error) { return []byte(d.String()), nil }

// UnmarshalText reads the form time.ParseDuration accepts.
func (d *Duration) UnmarshalText(text []byte) error {
	v, err := time.ParseDuration(string(text))
	if err != nil {
		return fmt.Errorf("invalid duration %q: want a number with a unit, like \"30s\" or \"2m\"", text)
	}
	d.Duration = v
	return nil
}

// Read decodes the config file at path over Default(), without validating
// it, so that overrides can be applied first. Keys absent from the file keep
// their defaults; unknown keys are errors.
func Read(path string) (Config, error) {
	data, err := os.ReadFile(path)
	if errors.Is(err, fs.ErrNotExist) {
		return Config{}, &explained{ErrNoConfig, fmt.Sprintf(
			"config: %s does not exist: run `aropeer init` to create it", path)}
	}
	if err != nil {
		return Config{}, fmt.Errorf("config: %w", err)
	}
	return decode(path, data)
}

// maxConfigSize caps a config file; a real one is a few KiB.
const maxConfigSize = 1 << 20

// decode reads a config file's bytes over Default(); path only names the
// file in errors.
func decode(path string, data []byte) (Config, error) {
	if len(data) > maxConfigSize {
		return Config{}, fmt.Errorf("config: %s is %d bytes; a config file is at most %d", path, len(data), maxConfigSize)
	}
	c := Default()
	dec := toml.NewDecoder(bytes.NewReader(data)).DisallowUnknownFields()
	if err := dec.Decode(&c); err != nil {
		return Config{}, decodeError(path, data, err)
	}
	return c, nil
}

// Load reads the config file at path and validates it.
func Load(path string) (Config, error) {
	c, err := Read(path)
	if err != nil {
		return Config{}, err
	}
	if err := c.Validate(); err != nil {
		return Config{}, fmt.Errorf("config: %s is invalid:\n%w", path, err)
	}
	return c, nil
}

// header opens every written config file.
const header = `# aropeer node configuration, written by aropeer.
# ARO_* environment variables and command-line flags override single keys:
# limits.peer_conns is ARO_LIMITS_PEER_CONNS. Restart the node after editing.

`

// Write validates c and writes it to path atomically, so that a crash
// leaves either the old file or the new one.
func Write(path string, c Config) error {
	if err := c.Validate(); err != nil {
		return fmt.Errorf("config: refusing to write an invalid config:\n%w", err)
	}
	body, err := toml.Marshal(c)
	if err != nil {
		return fmt.Errorf("config: encode: %w", err)
	}
	if err := writeAtomic(path, append([]byte(header), body...), 0o644, true); err != nil {
		return fmt.Errorf("config: write %s: %w", path, err)
	}
	return nil
}

// decodeError turns go-toml's errors into messages that name the file,
// the line and the key.
func decodeError(path string, data []byte, err error) error {
	var strict *toml.StrictMissingError
	if errors.As(err, &strict) {
		errs := make([]error, 0, len(strict.Errors))
		for _, e := range strict.Errors {
			line, _ := e.Position()
			key := strings.Join(e.Key(), ".")
			msg := fmt.Sprintf("config: %s:%d: unknown key %s", path, line, key)
			if near := closestKey(key); near != "" {
				msg += "; did you mean " + near + "?"
			}
			errs = append(errs, errors.New(msg))
		}
		return errors.Join(errs...)
	}
	var de *toml.DecodeError
	if errors.As(err, &de) {
		line, col := de.Position()
		msg := strings.TrimPrefix(de.Error(), "toml: ")
		if key := strings.Join(de.Key(), "."); key != "" {
			if strings.HasPrefix(msg, "cannot decode") {
				// go-toml names Go types here; say what the key takes.
				if t, ok := keyType(key); ok {
					msg = "want " + describe(t)
				}
			}
			msg = key + ": " + msg
		} else if text := lineText(data, line); text != "" {
			// A syntax error: go-toml's message can be cryptic ("expected
			// keyword true" for an unquoted string), the line is not.
			msg += " in: " + text
		}
		return fmt.Errorf("config: %s:%d:%d: %s", path, line, col, msg)
	}
	return fmt.Errorf("config: %s: %w", path, err)
}

// lineText returns line n (from 1) of data, trimmed.
func lineText(data []byte, n int) string {
	lines := strings.Split(string(data), "\n")
	if n < 1 || n > len(lines) {
		return ""
	}
	return strings.TrimSpace(lines[n-1])
}

// closestKey returns the known key nearest to key if it is a likely typo
// of it (at most two edits away), else "".
func closestKey(key string) string {
	best, bestDist := "", 3
	for _, k := range Keys() {
		if d := editDistance(key, k); d < bestDist {
			best, bestDist = k, d
		}
	}
	return best
}

// editDistance is the Levenshtein distance between a and b.
func editDistance(a, b string) int {
	prev := make([]int, len(b)+1)
	cur := make([]int, len(b)+1)
	for j := range prev {
		prev[j] = j
	}
	for i := 1; i <= len(a); i++ {
		cur[0] = i
		for j := 1; j <= len(b); j++ {
			cost := 1
			if a[i-1] == b[j-1] {
				cost = 0
			}
			cur[j] = min(prev[j]+1, cur[j-1]+1, prev[j-1]+cost)
		}
		prev, cur = cur, prev
	}
	return prev[len(b)]
}

// describe says in words what a value of type t looks like in TOML.
func describe(t reflect.Type) string {
	switch {
	case t == reflect.TypeFor[Duration]():
		return `a duration string like "30s"`
	case t.Kind() == reflect.Slice:
		return "a list of strings"
	case t.Kind() == reflect.String:
		return "a string"
	case t.Kind() >= reflect.Int && t.Kind() <= reflect.Uint64:
		return "an integer"
	}
	return t.String()
}

// explained is an error whose message is a whole sentence for the operator
// and which still matches its sentinel with errors.Is.
type explained struct {
	sentinel error
	msg      string
}

func (e *explained) Error() string { return e.msg }
func (e *explained) Unwrap() error { return e.sentinel }
