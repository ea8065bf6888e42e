package main

import (
	"errors"
	"fmt"
	"os"
	"slices"

	"github.com/spf13/cobra"

	"github.com/aropeer/aropeer/node/config"
)

// initOptions are the flags of `aropeer init`; devnet fills them in too.
type initOptions struct {
	dataDir   string
	role      string
	network   string
	bootstrap []string
	listen    []string
	apiAddr   string
	offers    []string
	upMbit    uint64
	downMbit  uint64
	// device and milliTOPS are a compute claim.
	device    string
	milliTOPS uint64
	local     bool
	force     bool
}

func newInitCmd() *cobra.Command {
	var o initOptions
	cmd := &cobra.Command{
		Use:   "init --role edge|keeper|bootstrap",
		Short: "Create a node's identity key and config in its data directory",
		Args:  cobra.NoArgs,
		RunE: func(cmd *cobra.Command, _ []string) error {
			peerID, err := initDataDir(o)
			if err != nil {
				return err
			}
			fmt.Fprintf(cmd.OutOrStdout(), "initialised %s node %s in %s\n", o.role, peerID, o.dataDir)
			fmt.Fprintf(cmd.OutOrStdout(), "start it with: aropeer run --datadir %s\n", o.dataDir)
			return nil
		},
	}
	f := cmd.Flags()
	f.StringVar(&o.dataDir, "datadir", defaultDataDir(), "data directory")
	f.StringVar(&o.role, "role", "", "the node's role: edge, keeper or bootstrap (required)")
	f.StringVar(&o.network, "network", "devnet", "network to join")
	f.StringSliceVar(&o.bootstrap, "bootstrap", nil, "bootstrap peer multiaddr with /p2p/<id> (repeatable)")
	f.StringSliceVar(&o.listen, "listen", nil, "listen multiaddrs (default: TCP and QUIC on port 4001)")
	f.StringVar(&o.apiAddr, "api-addr", "", "loopback host:port of the HTTP API (default 127.0.0.1:8547)")
	f.StringSliceVar(&o.offers, "offer", nil, "resource kinds an edge offers besides liveness: storage, bandwidth, compute")
	f.Uint64Var(&o.upMbit, "up-mbit", 0, "an edge's claimed upload in Mbit/s (with --offer bandwidth)")
	f.Uint64Var(&o.downMbit, "down-mbit", 0, "an edge's claimed download in Mbit/s (with --offer bandwidth)")
	f.StringVar(&o.device, "compute-device", "cpu", "an edge's claimed compute device class (with --offer compute)")
	f.Uint64Var(&o.milliTOPS, "compute-mtops", 0, "an edge's claimed int8 throughput in milli-TOPS, 1 = 1 GOPS (with --offer compute)")
	f.BoolVar(&o.local, "local-beacon", false, "sign the network's rounds with its local beacon (devnet only; one node per network)")
	f.BoolVar(&o.force, "force", false, "overwrite an existing data directory's config and identity")
	return cmd
}

// initDataDir writes a validated config and a new identity key, and
// returns the node's peer ID.
func initDataDir(o initOptions) (string, error) {
	if o.role == "" {
		return "", exitCode(2, errors.New("--role is required: edge, keeper or bootstrap"))
	}
	role := config.Role(o.role)
	if !slices.Contains(config.Roles(), role) {
		return "", exitCode(2, fmt.Errorf("--role %q: want edge, keeper or bootstrap", o.role))
	}
	cfg := config.Default(role)
	cfg.Network = o.network
	cfg.Bootstrap = o.bootstrap
	if len(o.listen) > 0 {
		cfg.Listen = o.listen
	}
	if o.apiAddr != "" {
		cfg.API.Addr = o.apiAddr
	}
	if len(o.offers) > 0 {
		cfg.Offers = o.offers
	}
	cfg.Bandwidth.UpMbit, cfg.Bandwidth.DownMbit = o.upMbit, o.downMbit
	if slices.Contains(cfg.Offers, "compute") {
		cfg.Compute.Device, cfg.Compute.MilliTOPS = o.device, o.milliTOPS
	}
	cfg.Beacon.Local = o.local
	if err := cfg.Validate(); err != nil {
		return "", exitCode(2, err)
	}

	cfgPath, keyPath := config.Datadir(o.dataDir).ConfigPath(), config.Datadir(o.dataDir).IdentityPath()
	if !o.force {
		for _, p := range []string{cfgPath, keyPath} {
			if _, err := os.Stat(p); err == nil {
				return "", fmt.Errorf("%s already exists: %s is initialised; use --force to overwrite it (its identity will be lost)", p, o.dataDir)
			}
		}
	}
	if err := os.MkdirAll(o.dataDir, 0o700); err != nil {
		return "", fmt.Errorf("create data directory: %w", err)
	}
	if o.force {
		if err := os.Remove(keyPath); err != nil && !errors.Is(err, os.ErrNotExist) {
			return "", fmt.Errorf("remove old identity: %w", err)
		}
	}
	key, err := config.CreateIdentity(keyPath)
	if err != nil {
		return "", err
	}
	if err := config.Write(cfgPath, cfg); err != nil {
		return "", err
	}
	id, err := peerIDOf(key)
	if err != nil {
		return "", err
	}
	return id.String(), nil
}
