package config

import (
	"fmt"
	"os"
	"path/filepath"
)

// EnvDatadir overrides the default data directory. It is not a config key:
// the config file lives inside the data directory.
const EnvDatadir = "ARO_DATADIR"

// Names inside the data directory.
const (
	ConfigFile   = "config.toml"
	IdentityFile = "identity.key"
	TokenFile    = "api.token"
	StoreDir     = "store"
	PiecesDir    = "pieces"
)

// Datadir is a node's data directory:
//
//	<datadir>/config.toml   configuration (Write, Load)
//	<datadir>/identity.key  libp2p private key, mode 0600 (CreateIdentity, LoadIdentity)
//	<datadir>/api.token     HTTP API bearer token, mode 0600 (LoadOrCreateToken)
//	<datadir>/store/        pebble (store.Open)
type Datadir string

// DefaultDatadir returns $ARO_DATADIR if set, else ~/.aropeer, as an
// absolute path. getenv is os.Getenv outside tests.
func DefaultDatadir(getenv func(string) string) (Datadir, error) {
	dir := getenv(EnvDatadir)
	if dir == "" {
		home, err := os.UserHomeDir()
		if err != nil {
			return "", fmt.Errorf("config: no home directory for the data directory (set %s): %w", EnvDatadir, err)
		}
		dir = filepath.Join(home, ".aropeer")
	}
	abs, err := filepath.Abs(dir)
	if err != nil {
		return "", fmt.Errorf("config: data directory %s: %w", dir, err)
	}
	return Datadir(abs), nil
}

// Create makes the data directory, readable only by its owner since it
// holds the node's keys.
func (d Datadir) Create() error {
	if err := os.MkdirAll(string(d), 0o700); err != nil {
		return fmt.Errorf("config: create data directory: %w", err)
	}
	return nil
}

// ConfigPath is <datadir>/config.toml.
func (d Datadir) ConfigPath() string { return filepath.Join(string(d), ConfigFile) }

// IdentityPath is <datadir>/identity.key.
func (d Datadir) IdentityPath() string { return filepath.Join(string(d), IdentityFile) }

// TokenPath is <datadir>/api.token.
func (d Datadir) TokenPath() string { return filepath.Join(string(d), TokenFile) }

// StorePath is <datadir>/store, the pebble directory.
func (d Datadir) StorePath() string { return filepath.Join(string(d), StoreDir) }

// PiecesPath is <datadir>/pieces, where an edge keeps the pieces it
// stores.
func (d Datadir) PiecesPath() string { return filepath.Join(string(d), PiecesDir) }
