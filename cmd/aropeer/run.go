package main

import (
	"context"
	"errors"
	"fmt"
	"log/slog"
	"os"
	"os/signal"
	"strings"
	"syscall"
	"time"

	"github.com/libp2p/go-libp2p/core/crypto"
	"github.com/libp2p/go-libp2p/core/peer"
	"github.com/spf13/cobra"

	"github.com/aropeer/aropeer/node"
	"github.com/aropeer/aropeer/node/config"
)

// shutdownGrace bounds a clean stop; past it the process exits anyway.
const shutdownGrace = 5 * time.Second

// overrides are the flags that override config.toml, in the same keys as
// the file and the ARO_* variables.
type overrides struct {
	set       []string
	logLevel  string
	logFormat string
}

func (o *overrides) register(cmd *cobra.Command) {
	f := cmd.Flags()
	f.StringArrayVar(&o.set, "set", nil, "override a config key, as key=value (e.g. api.addr=127.0.0.1:9000; repeatable)")
	f.StringVar(&o.logLevel, "log-level", "", "debug, info, warn or error (overrides log.level)")
	f.StringVar(&o.logFormat, "log-format", "", "text or json (overrides log.format)")
}

// loadConfig reads <datadir>/config.toml, then applies ARO_* variables,
// then flags, and validates the result.
func loadConfig(dataDir string, o overrides) (config.Config, error) {
	cfg, err := config.Read(config.Datadir(dataDir).ConfigPath())
	if err != nil {
		return cfg, err
	}
	if err := cfg.ApplyEnv(os.Environ()); err != nil {
		return cfg, err
	}
	sets := o.set
	if o.logLevel != "" {
		sets = append(sets, "log.level="+o.logLevel)
	}
	if o.logFormat != "" {
		sets = append(sets, "log.format="+o.logFormat)
	}
	for _, kv := range sets {
		k, v, ok := strings.Cut(kv, "=")
		if !ok {
			return cfg, exitCode(2, fmt.Errorf("--set %q: want key=value", kv))
		}
		if err := cfg.Set(k, v); err != nil {
			return cfg, exitCode(2, err)
		}
	}
	return cfg, cfg.Validate()
}

func newRunCmd() *cobra.Command {
	var dataDir string
	var o overrides
	cmd := &cobra.Command{
		Use:   "run",
		Short: "Run the node until SIGINT or SIGTERM",
		Args:  cobra.NoArgs,
		RunE: func(cmd *cobra.Command, _ []string) error {
			cfg, err := loadConfig(dataDir, o)
			if err != nil {
				return err
			}
			key, err := config.LoadIdentity(config.Datadir(dataDir).IdentityPath())
			if err != nil {
				return err
			}
			log := newLogger(cmd.ErrOrStderr(), cfg.Log.Level, cfg.Log.Format)
			slog.SetDefault(log)
			n, err := node.New(cfg, key, node.WithDataDir(dataDir), node.WithLogger(log))
			if err != nil {
				return err
			}
			ctx, stop := signal.NotifyContext(cmd.Context(), os.Interrupt, syscall.SIGTERM)
			defer stop()
			return runUntilStopped(ctx, n.Run, log)
		},
	}
	cmd.Flags().StringVar(&dataDir, "datadir", defaultDataDir(), "data directory")
	o.register(cmd)
	return cmd
}

// runUntilStopped runs fn until ctx ends and then gives it shutdownGrace
// to return; a node that hangs on the way down must not hang its host.
func runUntilStopped(ctx context.Context, fn func(context.Context) error, log *slog.Logger) error {
	done := make(chan error, 1)
	go func() { done <- fn(ctx) }()
	select {
	case err := <-done:
		return explainStartError(err)
	case <-ctx.Done():
	}
	select {
	case err := <-done:
		if err == nil {
			log.Info("stopped cleanly")
		}
		return err
	case <-time.After(shutdownGrace):
		return fmt.Errorf("the node did not stop within %s; exiting anyway", shutdownGrace)
	}
}

// explainStartError turns the start-up failures a user can cause into
// advice.
func explainStartError(err error) error {
	// libp2p reports its listeners' failures as text.
	if errors.Is(err, syscall.EADDRINUSE) || (err != nil && strings.Contains(err.Error(), "address already in use")) {
		return fmt.Errorf("a listen address is already in use: stop the process holding it or change listen in config.toml (%w)", err)
	}
	return err
}

func peerIDOf(key crypto.PrivKey) (peer.ID, error) {
	id, err := peer.IDFromPrivateKey(key)
	if err != nil {
		return "", fmt.Errorf("derive peer ID: %w", err)
	}
	return id, nil
}

func newIDCmd() *cobra.Command {
	var dataDir string
	cmd := &cobra.Command{
		Use:   "id",
		Short: "Print the node's peer ID",
		Args:  cobra.NoArgs,
		RunE: func(cmd *cobra.Command, _ []string) error {
			key, err := config.LoadIdentity(config.Datadir(dataDir).IdentityPath())
			if err != nil {
				return err
			}
			id, err := peerIDOf(key)
			if err != nil {
				return err
			}
			fmt.Fprintln(cmd.OutOrStdout(), id)
			return nil
		},
	}
	cmd.Flags().StringVar(&dataDir, "datadir", defaultDataDir(), "data directory")
	return cmd
}

func newVersionCmd() *cobra.Command {
	return &cobra.Command{
		Use:   "version",
		Short: "Print the version",
		Args:  cobra.NoArgs,
		Run: func(cmd *cobra.Command, _ []string) {
			fmt.Fprintf(cmd.OutOrStdout(), "aropeer %s\n", node.Version)
		},
	}
}
