package main

import (
	"errors"
	"fmt"
	"io"
	"maps"
	"slices"
	"strings"
	"text/tabwriter"
	"time"

	"github.com/spf13/cobra"

	"github.com/aropeer/aropeer/node/api"
	"github.com/aropeer/aropeer/node/config"
)

// clientFor returns an API client for the node of dataDir, found from its
// config.
func clientFor(dataDir string) (*api.Client, config.Config, error) {
	cfg, err := loadConfig(dataDir, overrides{})
	if err != nil {
		return nil, cfg, err
	}
	token, err := config.ReadToken(config.Datadir(dataDir).TokenPath())
	if err != nil && !errors.Is(err, config.ErrNoToken) {
		return nil, cfg, err
	}
	return api.NewClient(cfg.API.Addr, token), cfg, nil
}

// notRunning is the answer of a read command when no node is running.
func notRunning(dataDir string, cfg config.Config) error {
	return exitCode(3, fmt.Errorf("no node is running for %s (nothing answers on %s); start it with: aropeer run --datadir %s", dataDir, cfg.API.Addr, dataDir))
}

func newStatusCmd() *cobra.Command {
	var dataDir string
	var asJSON bool
	cmd := &cobra.Command{
		Use:   "status",
		Short: "Show the running node's status",
		Args:  cobra.NoArgs,
		RunE: func(cmd *cobra.Command, _ []string) error {
			client, cfg, err := clientFor(dataDir)
			if err != nil {
				return err
			}
			st, err := client.Status(cmd.Context())
			if errors.Is(err, api.ErrNotRunning) {
				return notRunning(dataDir, cfg)
			}
			if err != nil {
				return err
			}
			if asJSON {
				return printJSON(cmd.OutOrStdout(), st)
			}
			printStatus(cmd.OutOrStdout(), st)
			return nil
		},
	}
	cmd.Flags().StringVar(&dataDir, "datadir", defaultDataDir(), "data directory")
	cmd.Flags().BoolVar(&asJSON, "json", false, "print the API's JSON")
	return cmd
}

func printStatus(w io.Writer, st api.Status) {
	tw := tabwriter.NewWriter(w, 0, 0, 2, ' ', 0)
	fmt.Fprintf(tw, "peer id\t%s\n", st.PeerID)
	fmt.Fprintf(tw, "roles\t%s\n", strings.Join(st.Roles, ", "))
	fmt.Fprintf(tw, "network\t%s\n", st.Network)
	fmt.Fprintf(tw, "version\t%s\n", st.Version)
	fmt.Fprintf(tw, "uptime\t%s\n", (time.Duration(st.UptimeSeconds) * time.Second).String())
	fmt.Fprintf(tw, "connected peers\t%d\n", st.ConnectedPeers)
	fmt.Fprintf(tw, "DHT routing table\t%d\n", st.DHTRoutingTableSize)
	if st.LatestRound > 0 {
		fmt.Fprintf(tw, "latest round\t%d\n", st.LatestRound)
	}
	for i, a := range st.ListenAddrs {
		label := ""
		if i == 0 {
			label = "listening on"
		}
		fmt.Fprintf(tw, "%s\t%s\n", label, a)
	}
	for _, t := range slices.Sorted(maps.Keys(st.Topics)) {
		fmt.Fprintf(tw, "topic %s\t%d mesh peers\n", t, st.Topics[t])
	}
	tw.Flush()
}
