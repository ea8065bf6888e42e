package config_test

import (
	"errors"
	"os"
	"path/filepath"
	"reflect"
	"strings"
	"testing"
	"time"

	"github.com/aropeer/aropeer/node/config"
)

func writeFile(t *testing.T, body string) string {
	t.Helper()
	path := filepath.Join(t.TempDir(), config.ConfigFile)
	if err := os.WriteFile(path, []byte(body), 0o644); err != nil {
		t.Fatal(err)
	}
	return path
}

func TestWriteLoadRoundTrip(t *testing.T) {
	c := config.Default(config.RoleKeeper, config.RoleBootstrap)
	c.Listen = []string{"/ip6/::/tcp/4002"}
	c.Announce = []string{"/ip4/203.0.113.7/tcp/4002"}
	c.Bootstrap = []string{"/ip4/203.0.113.8/udp/4001/quic-v1/p2p/" + testPeer}
	c.Deny = []string{"10.0.0.0/8", testPeer}
	c.API.Addr = "[::1]:9000"
	c.Limits = config.Limits{MemoryMiB: 2048, SystemConns: 2000, SystemStreams: 20000,
		PeerConns: 16, PeerStreams: 512, ProtocolStreams: 4000}
	c.ConnMgr = config.ConnMgr{Low: 500, High: 1500, Grace: config.Duration{Duration: 90 * time.Second}}
	c.Log = config.Log{Level: "debug", Format: "json"}

	dir := t.TempDir()
	path := filepath.Join(dir, config.ConfigFile)
	if err := config.Write(path, c); err != nil {
		t.Fatal(err)
	}
	got, err := config.Load(path)
	if err != nil {
		t.Fatal(err)
	}
	if !reflect.DeepEqual(got, c) {
		t.Errorf("round trip:\n got %+v\nwant %+v", got, c)
	}

	fi, err := os.Stat(path)
	if err != nil {
		t.Fatal(err)
	}
	if fi.Mode().Perm() != 0o644 {
		t.Errorf("config mode %04o; want 0644", fi.Mode().Perm())
	}
	body, _ := os.ReadFile(path)
	for _, want := range []string{"# aropeer node configuration", `grace = '1m30s'`, "[connmgr]"} {
		if !strings.Contains(string(body), want) {
			t.Errorf("written file lacks %q:\n%s", want, body)
		}
	}
	entries, _ := os.ReadDir(dir)
	if len(entries) != 1 {
		t.Errorf("directory holds %d entries after Write; want only the config (no temp file)", len(entries))
	}

	// Write replaces an existing file.
	c.Log.Level = "warn"
	if err := config.Write(path, c); err != nil {
		t.Fatal(err)
	}
	if got, _ := config.Load(path); got.Log.Level != "warn" {
		t.Errorf("after rewrite log.level = %q; want warn", got.Log.Level)
	}
}

func TestWriteRefusesInvalid(t *testing.T) {
	c := config.Default()
	c.Log.Format = "xml"
	path := filepath.Join(t.TempDir(), config.ConfigFile)
	err := config.Write(path, c)
	if err == nil || !strings.Contains(err.Error(), "log.format") {
		t.Fatalf("Write(invalid) = %v; want an error naming log.format", err)
	}
	if _, err := os.Stat(path); !errors.Is(err, os.ErrNotExist) {
		t.Errorf("an invalid config was written")
	}
}

func TestLoadMissing(t *testing.T) {
	path := filepath.Join(t.TempDir(), config.ConfigFile)
	_, err := config.Load(path)
	if !errors.Is(err, config.ErrNoConfig) {
		t.Fatalf("Load(missing) = %v; want ErrNoConfig", err)
	}
	if want := path + " does not exist: run `aropeer init`"; !strings.Contains(err.Error(), want) {
		t.Errorf("Load(missing) = %q; want it to contain %q", err, want)
	}
}

// Keys absent from the file keep their defaults.
func TestLoadPartial(t *testing.T) {
	path := writeFile(t, "roles = [\"keeper\"]\n[log]\nlevel = \"debug\"\n")
	c, err := config.Load(path)
	if err != nil {
		t.Fatal(err)
	}
	want := config.Default(config.RoleKeeper)
	want.Log.Level = "debug"
	if !reflect.DeepEqual(c, want) {
		t.Errorf("Load:\n got %+v\nwant %+v", c, want)
	}
}

func TestLoadErrors(t *testing.T) {
	tests := []struct {
		name, body string
		want       []string
	}{
		{"unknown keys", "network = \"devnet\"\nnetwrok = \"devnet\"\n[limits]\npeer_conn = 3\n[logging]\nlevel = \"x\"\n", []string{
			"config.toml:2: unknown key netwrok; did you mean network?",
			"config.toml:4: unknown key limits.peer_conn; did you mean limits.peer_conns?",
			"config.toml:5: unknown key logging",
		}},
		{"syntax", "[log]\nlevel = \"debug\"\nformat = text\n", []string{"config.toml:3:10: ", " in: format = text"}},
		{"unclosed array", "listen = [\"/ip4/0.0.0.0/tcp/1\"\n", []string{"config.toml:1:"}},
		{"wrong type", "[limits]\npeer_conns = \"eight\"\n", []string{
			"config.toml:2:14: limits.peer_conns: want an integer"}},
		{"list as string", "listen = \"/ip4/0.0.0.0/tcp/1\"\n", []string{
			"config.toml:1:10: listen: want a list of strings"}},
		{"bad duration", "[connmgr]\ngrace = \"soon\"\n", []string{
			`connmgr.grace: invalid duration "soon": want a number with a unit, like "30s" or "2m"`}},
		// A bare number would be nanoseconds: refused.
		{"duration as number", "[connmgr]\ngrace = 30\n", []string{`invalid duration "30"`}},
		{"invalid value", "[log]\nlevel = \"verbose\"\n", []string{
			"config.toml is invalid:\nconfig: log.level = \"verbose\": want one of debug, info, warn, error"}},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			_, err := config.Load(writeFile(t, tt.body))
			if err == nil {
				t.Fatal("Load accepted the file")
			}
			for _, want := range tt.want {
				if !strings.Contains(err.Error(), want) {
					t.Errorf("Load error:\n%s\nwant it to contain %q", err, want)
				}
			}
		})
	}
}

// Read does not validate, so overrides can repair a value first.
func TestReadThenOverride(t *testing.T) {
	path := writeFile(t, "[api]\naddr = \"0.0.0.0:8547\"\n")
	c, err := config.Read(path)
	if err != nil {
		t.Fatal(err)
	}
	if err := c.ApplyEnv([]string{"ARO_API_ADDR=127.0.0.1:9999"}); err != nil {
		t.Fatal(err)
	}
	if err := c.Validate(); err != nil {
		t.Fatal(err)
	}
}
