package main

import (
	"encoding/json"
	"errors"
	"fmt"
	"io"
	"maps"
	"net/url"
	"slices"
	"strings"
	"text/tabwriter"

	"github.com/ipfs/go-cid"
	"github.com/spf13/cobra"

	"github.com/aropeer/aropeer/challenge"
	"github.com/aropeer/aropeer/node"
	"github.com/aropeer/aropeer/node/api"
	"github.com/aropeer/aropeer/node/config"
	"github.com/aropeer/aropeer/proofs"
	"github.com/aropeer/aropeer/store"
)

func printJSON(w io.Writer, v any) error {
	enc := json.NewEncoder(w)
	enc.SetIndent("", "  ")
	return enc.Encode(v)
}

// short abbreviates a peer ID or CID for tables.
func short(s string) string {
	if len(s) <= 12 {
		return s
	}
	return s[:4] + "…" + s[len(s)-6:]
}

func newChallengesCmd() *cobra.Command {
	var dataDir string
	var asJSON bool
	cmd := &cobra.Command{
		Use:   "challenges",
		Short: "Show recent challenges this node issued or answered",
		Args:  cobra.NoArgs,
		RunE: func(cmd *cobra.Command, _ []string) error {
			client, cfg, err := clientFor(dataDir)
			if err != nil {
				return err
			}
			var list []challenge.Activity
			err = client.GetJSON(cmd.Context(), node.ChallengesPath, &list)
			if errors.Is(err, api.ErrNotRunning) {
				return notRunning(dataDir, cfg)
			}
			if err != nil {
				return err
			}
			if asJSON {
				return printJSON(cmd.OutOrStdout(), list)
			}
			tw := tabwriter.NewWriter(cmd.OutOrStdout(), 0, 0, 2, ' ', 0)
			fmt.Fprintln(tw, "TIME\tROLE\tKIND\tROUND\tTRY\tKEEPER\tEDGE\tRESULT\tREASON")
			for _, a := range list {
				fmt.Fprintf(tw, "%s\t%s\t%s\t%d\t%d\t%s\t%s\t%s\t%s\n", a.Time.Format("15:04:05"), a.Role, a.Kind, a.Round, a.Attempt+1, short(a.Keeper), short(a.Edge), a.Result, a.Reason)
			}
			return tw.Flush()
		},
	}
	cmd.Flags().StringVar(&dataDir, "datadir", defaultDataDir(), "data directory")
	cmd.Flags().BoolVar(&asJSON, "json", false, "print JSON")
	return cmd
}

func newReceiptsCmd() *cobra.Command {
	cmd := &cobra.Command{
		Use:   "receipts",
		Short: "List and show the signed receipts in this node's store",
	}
	cmd.AddCommand(newReceiptsListCmd(), newReceiptsShowCmd(), newReceiptsProveCmd(), newReceiptsVerifyProofCmd())
	return cmd
}

func newReceiptsListCmd() *cobra.Command {
	var dataDir, edge, epoch, kind string
	var asJSON bool
	cmd := &cobra.Command{
		Use:   "list",
		Short: "List receipts, filtered by edge, epoch and kind",
		Args:  cobra.NoArgs,
		RunE: func(cmd *cobra.Command, _ []string) error {
			f, err := node.ParseReceiptFilter(epoch, edge, kind, "")
			if err != nil {
				return exitCode(2, err)
			}
			q := url.Values{}
			for k, v := range map[string]string{"epoch": epoch, "edge": edge, "kind": kind} {
				if v != "" {
					q.Set(k, v)
				}
			}
			var list []proofs.ReceiptJSON
			err = fromNodeOrStore(cmd, dataDir, node.ReceiptsPath+"?"+q.Encode(), &list, func(rs *proofs.ReceiptStore) error {
				list, err = node.ListReceipts(rs, f)
				return err
			})
			if err != nil {
				return err
			}
			if asJSON {
				return printJSON(cmd.OutOrStdout(), list)
			}
			tw := tabwriter.NewWriter(cmd.OutOrStdout(), 0, 0, 2, ' ', 0)
			fmt.Fprintln(tw, "CID\tEPOCH\tROUND\tKIND\tKEEPER\tEDGE\tTRY\tOUTCOME\tMEASUREMENTS\tREASON")
			for _, r := range list {
				fmt.Fprintf(tw, "%s\t%d\t%d\t%s\t%s\t%s\t%d\t%s\t%s\t%s\n", short(r.CID), r.Epoch, r.Round, r.Kind, short(r.Keeper), short(r.Edge), r.Attempt+1, r.Outcome, measurements(r.Measurements), r.Reason)
			}
			return tw.Flush()
		},
	}
	f := cmd.Flags()
	f.StringVar(&dataDir, "datadir", defaultDataDir(), "data directory")
	f.StringVar(&edge, "edge", "", "only receipts about this edge (peer ID)")
	f.StringVar(&epoch, "epoch", "", "only receipts of this epoch")
	f.StringVar(&kind, "kind", "", "only receipts of this kind: liveness, storage, bandwidth, compute")
	f.BoolVar(&asJSON, "json", false, "print JSON")
	return cmd
}

func measurements(m map[string]int64) string {
	parts := make([]string, 0, len(m))
	for _, k := range slices.Sorted(maps.Keys(m)) {
		parts = append(parts, fmt.Sprintf("%s=%d", k, m[k]))
	}
	return strings.Join(parts, " ")
}

func newReceiptsShowCmd() *cobra.Command {
	var dataDir string
	cmd := &cobra.Command{
		Use:   "show CID",
		Short: "Show one receipt as JSON",
		Args:  cobra.ExactArgs(1),
		RunE: func(cmd *cobra.Command, args []string) error {
			id, err := cid.Decode(args[0])
			if err != nil {
				return exitCode(2, fmt.Errorf("%q is not a receipt CID", args[0]))
			}
			var view proofs.ReceiptJSON
			err = fromNodeOrStore(cmd, dataDir, node.ReceiptsPath+"/"+id.String(), &view, func(rs *proofs.ReceiptStore) error {
				r, _, err := rs.Get(id)
				if errors.Is(err, store.ErrNotFound) {
					return fmt.Errorf("no receipt %s in %s", id, dataDir)
				}
				view = proofs.ReceiptView(id, r)
				return err
			})
			if err != nil {
				return err
			}
			return printJSON(cmd.OutOrStdout(), view)
		},
	}
	cmd.Flags().StringVar(&dataDir, "datadir", defaultDataDir(), "data directory")
	return cmd
}

// fromNodeOrStore asks the running node's API; when no node runs, it opens
// the store itself, which only one process may do at a time.
func fromNodeOrStore(cmd *cobra.Command, dataDir, path string, v any, direct func(*proofs.ReceiptStore) error) error {
	client, _, err := clientFor(dataDir)
	if err != nil {
		return err
	}
	err = client.GetJSON(cmd.Context(), path, v)
	if !errors.Is(err, api.ErrNotRunning) {
		return err
	}
	db, err := store.Open(config.Datadir(dataDir).StorePath())
	if err != nil {
		return err
	}
	defer db.Close()
	return direct(proofs.NewReceiptStore(db))
}
