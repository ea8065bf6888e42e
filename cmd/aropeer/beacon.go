package main

import (
	"encoding/hex"
	"errors"
	"fmt"
	"io"
	"os"
	"strconv"
	"text/tabwriter"
	"time"

	"github.com/spf13/cobra"

	"github.com/aropeer/aropeer/beacon"
	"github.com/aropeer/aropeer/node"
	"github.com/aropeer/aropeer/node/api"
	"github.com/aropeer/aropeer/node/config"
)

// maxChainInfoFile caps a --chain-info file; drand's is a few hundred bytes.
const maxChainInfoFile = 64 << 10

func newBeaconCmd() *cobra.Command {
	cmd := &cobra.Command{
		Use:   "beacon",
		Short: "Inspect and verify drand beacon rounds",
	}
	cmd.AddCommand(newBeaconInfoCmd(), newBeaconGetCmd(), newBeaconVerifyCmd())
	return cmd
}

func newBeaconInfoCmd() *cobra.Command {
	var network string
	var asJSON bool
	cmd := &cobra.Command{
		Use:   "info",
		Short: "Print the chain info of a network's beacon",
		Args:  cobra.NoArgs,
		RunE: func(cmd *cobra.Command, _ []string) error {
			n, err := config.LookupNetwork(network)
			if err != nil {
				return exitCode(2, err)
			}
			if asJSON {
				b, err := n.Beacon.MarshalJSON()
				if err != nil {
					return err
				}
				fmt.Fprintln(cmd.OutOrStdout(), string(b))
				return nil
			}
			printChainInfo(cmd.OutOrStdout(), n)
			return nil
		},
	}
	cmd.Flags().StringVar(&network, "network", "devnet", "network whose beacon to describe")
	cmd.Flags().BoolVar(&asJSON, "json", false, "print drand's chain info JSON")
	return cmd
}

func printChainInfo(w io.Writer, n config.Network) {
	info := n.Beacon
	tw := tabwriter.NewWriter(w, 0, 0, 2, ' ', 0)
	fmt.Fprintf(tw, "network\t%s\n", n.Name)
	fmt.Fprintf(tw, "chain hash\t%s\n", info.HashString())
	fmt.Fprintf(tw, "beacon id\t%s\n", info.BeaconID)
	fmt.Fprintf(tw, "scheme\t%s\n", info.Scheme)
	fmt.Fprintf(tw, "period\t%s\n", info.Period)
	fmt.Fprintf(tw, "genesis\t%s (%d)\n", time.Unix(info.GenesisTime, 0).UTC().Format(time.RFC3339), info.GenesisTime)
	fmt.Fprintf(tw, "public key\t%x\n", info.PublicKey)
	fmt.Fprintf(tw, "current round\t%d\n", info.RoundAt(time.Now()))
	if n.LocalBeacon != nil {
		fmt.Fprintf(tw, "source\tthe network's local beacon, over gossip\n")
	}
	for _, r := range n.BeaconRelays {
		fmt.Fprintf(tw, "relay\t%s\n", r)
	}
	tw.Flush()
}

func newBeaconGetCmd() *cobra.Command {
	var dataDir string
	var round uint64
	var asJSON bool
	cmd := &cobra.Command{
		Use:   "get",
		Short: "Print a verified round: from the running node, or from drand's relays",
		Args:  cobra.NoArgs,
		RunE: func(cmd *cobra.Command, _ []string) error {
			got, err := getBeacon(cmd, dataDir, round)
			if err != nil {
				return err
			}
			if asJSON {
				return printJSON(cmd.OutOrStdout(), got)
			}
			tw := tabwriter.NewWriter(cmd.OutOrStdout(), 0, 0, 2, ' ', 0)
			fmt.Fprintf(tw, "round\t%d\n", got.Round)
			fmt.Fprintf(tw, "randomness\t%s\n", got.Randomness)
			fmt.Fprintf(tw, "signature\t%s\n", got.Signature)
			if got.PreviousSignature != "" {
				fmt.Fprintf(tw, "previous signature\t%s\n", got.PreviousSignature)
			}
			fmt.Fprintf(tw, "source\t%s (verified)\n", got.Source)
			return tw.Flush()
		},
	}
	cmd.Flags().StringVar(&dataDir, "datadir", defaultDataDir(), "data directory of the node to ask")
	cmd.Flags().Uint64Var(&round, "round", 0, "round to get (default: the latest)")
	cmd.Flags().BoolVar(&asJSON, "json", false, "print JSON")
	return cmd
}

// getBeacon asks the running node; with no node running, it asks the
// network's drand relays directly, verifying what they serve.
func getBeacon(cmd *cobra.Command, dataDir string, round uint64) (api.BeaconRound, error) {
	client, cfg, err := clientFor(dataDir)
	if err != nil {
		return api.BeaconRound{}, err
	}
	path := node.BeaconPath + "latest"
	if round > 0 {
		path = node.BeaconPath + strconv.FormatUint(round, 10)
	}
	var got api.BeaconRound
	err = client.GetJSON(cmd.Context(), path, &got)
	if err == nil || !errors.Is(err, api.ErrNotRunning) {
		return got, err
	}
	n, err := cfg.NetworkParams()
	if err != nil {
		return got, err
	}
	relays := cfg.Beacon.Relays
	if len(relays) == 0 {
		relays = n.BeaconRelays
	}
	if len(relays) == 0 {
		return got, notRunning(dataDir, cfg)
	}
	src, err := beacon.NewHTTPSource(n.Beacon, relays)
	if err != nil {
		return got, err
	}
	if round == 0 {
		round = n.Beacon.RoundAt(time.Now())
	}
	b, relay, err := src.GetFrom(cmd.Context(), round)
	if err != nil {
		return got, err
	}
	return node.BeaconJSON(b, "http "+relay), nil
}

func newBeaconVerifyCmd() *cobra.Command {
	var chainHash, chainInfo, sig, prev string
	var round uint64
	cmd := &cobra.Command{
		Use:   "verify --chain-hash HASH --round R --signature HEX",
		Short: "Verify one round of a known chain offline (exit 0: verifies, 1: does not, 2: unusable input)",
		Args:  cobra.NoArgs,
		RunE: func(cmd *cobra.Command, _ []string) error {
			info, err := chainFor(chainHash, chainInfo)
			if err != nil {
				return exitCode(2, err)
			}
			if round == 0 {
				return exitCode(2, errors.New("--round is required and must be at least 1"))
			}
			b := beacon.Beacon{Round: round}
			if b.Signature, err = hex.DecodeString(sig); err != nil || len(b.Signature) == 0 {
				return exitCode(2, fmt.Errorf("--signature %q: want the round's signature in hex", sig))
			}
			if prev != "" {
				if b.PreviousSignature, err = hex.DecodeString(prev); err != nil {
					return exitCode(2, fmt.Errorf("--previous-signature %q: want hex", prev))
				}
			}
			v, err := beacon.NewVerifier(info)
			if err != nil {
				return exitCode(2, err)
			}
			b = beacon.Complete(b)
			if err := v.Verify(b); err != nil {
				return exitCode(1, fmt.Errorf("round %d does not verify against chain %s: %w", round, info.HashString(), err))
			}
			fmt.Fprintf(cmd.OutOrStdout(), "round %d of chain %s verifies; randomness %x\n", round, info.HashString(), b.Randomness)
			return nil
		},
	}
	f := cmd.Flags()
	f.StringVar(&chainHash, "chain-hash", "", "hash of a built-in chain (League of Entropy default or quicknet, or the devnet's)")
	f.StringVar(&chainInfo, "chain-info", "", "file with any chain's info, in drand's JSON format")
	f.Uint64Var(&round, "round", 0, "round number")
	f.StringVar(&sig, "signature", "", "the round's signature, hex")
	f.StringVar(&prev, "previous-signature", "", "the previous round's signature, hex (chained schemes)")
	return cmd
}

// chainFor finds the chain to verify against: a file, or a known hash.
func chainFor(hash, file string) (beacon.Info, error) {
	switch {
	case file != "":
		f, err := os.Open(file)
		if err != nil {
			return beacon.Info{}, fmt.Errorf("--chain-info: %w", err)
		}
		defer f.Close()
		data, err := io.ReadAll(io.LimitReader(f, maxChainInfoFile+1))
		if err != nil {
			return beacon.Info{}, fmt.Errorf("--chain-info: %w", err)
		}
		if len(data) > maxChainInfoFile {
			return beacon.Info{}, fmt.Errorf("--chain-info %s is over %d bytes: not a chain info file", file, maxChainInfoFile)
		}
		info, err := beacon.ParseInfoJSON(data)
		if err != nil {
			return beacon.Info{}, fmt.Errorf("--chain-info %s: %w", file, err)
		}
		if hash != "" && info.HashString() != hash {
			return beacon.Info{}, fmt.Errorf("--chain-info %s is chain %s, not --chain-hash %s", file, info.HashString(), hash)
		}
		return info, nil
	case hash != "":
		if info, ok := beacon.LookupChain(hash); ok {
			return info, nil
		}
		for _, name := range config.NetworkNames() {
			if n, err := config.LookupNetwork(name); err == nil && n.Beacon.HashString() == hash {
				return n.Beacon, nil
			}
		}
		return beacon.Info{}, fmt.Errorf("--chain-hash %s is not a chain aropeer knows; give its info with --chain-info FILE", hash)
	}
	return beacon.Info{}, errors.New("give --chain-hash or --chain-info")
}
