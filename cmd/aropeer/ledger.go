package main

import (
	"bytes"
	"encoding/hex"
	"encoding/json"
	"errors"
	"fmt"
	"net/url"
	"os"
	"strconv"
	"text/tabwriter"

	"github.com/ipfs/go-cid"
	"github.com/spf13/cobra"

	"github.com/aropeer/aropeer/node"
	"github.com/aropeer/aropeer/node/api"
)

// getFromNode asks the running node's API for path into v.
func getFromNode(cmd *cobra.Command, dataDir, path string, v any) error {
	client, cfg, err := clientFor(dataDir)
	if err != nil {
		return err
	}
	err = client.GetJSON(cmd.Context(), path, v)
	if errors.Is(err, api.ErrNotRunning) {
		return notRunning(dataDir, cfg)
	}
	return err
}

func newLedgerCmd() *cobra.Command {
	cmd := &cobra.Command{
		Use:   "ledger",
		Short: "Read the settlement ledger: head, accounts, epoch batches, and verify its blocks",
	}
	cmd.AddCommand(newLedgerStatusCmd(), newLedgerAccountsCmd(), newLedgerBatchCmd(), newLedgerVerifyCmd())
	return cmd
}

func newLedgerStatusCmd() *cobra.Command {
	var dataDir string
	var asJSON bool
	cmd := &cobra.Command{
		Use:   "status",
		Short: "Show the ledger's head and its latest batch",
		Args:  cobra.NoArgs,
		RunE: func(cmd *cobra.Command, _ []string) error {
			var st node.LedgerStatus
			if err := getFromNode(cmd, dataDir, node.LedgerPath, &st); err != nil {
				return err
			}
			if asJSON {
				return printJSON(cmd.OutOrStdout(), st)
			}
			last := "none yet"
			if st.LastBatch != nil {
				last = strconv.FormatUint(*st.LastBatch, 10)
			}
			tw := tabwriter.NewWriter(cmd.OutOrStdout(), 0, 0, 2, ' ', 0)
			fmt.Fprintf(tw, "network\t%s\nsequencer\t%s\nheight\t%d\nhead\t%s\nlast batch\tepoch %s\ncurrent epoch\t%d\naccounts\t%d keepers, %d edges\n",
				st.Network, st.Sequencer, st.Height, st.Hash, last, st.Epoch, st.Keepers, st.Edges)
			return tw.Flush()
		},
	}
	cmd.Flags().StringVar(&dataDir, "datadir", defaultDataDir(), "data directory")
	cmd.Flags().BoolVar(&asJSON, "json", false, "print JSON")
	return cmd
}

func newLedgerAccountsCmd() *cobra.Command {
	var dataDir string
	var asJSON bool
	cmd := &cobra.Command{
		Use:   "accounts",
		Short: "List every account: role, stake, balance and slashed stake",
		Args:  cobra.NoArgs,
		RunE: func(cmd *cobra.Command, _ []string) error {
			var list []node.AccountJSON
			if err := getFromNode(cmd, dataDir, node.LedgerAccountsPath, &list); err != nil {
				return err
			}
			if asJSON {
				return printJSON(cmd.OutOrStdout(), list)
			}
			tw := tabwriter.NewWriter(cmd.OutOrStdout(), 0, 0, 2, ' ', 0)
			fmt.Fprintln(tw, "ID\tROLE\tSTAKE\tBALANCE\tSLASHED")
			for _, a := range list {
				fmt.Fprintf(tw, "%s\t%s\t%d\t%d\t%d\n", a.ID, a.Role, a.Stake, a.Balance, a.Slashed)
			}
			return tw.Flush()
		},
	}
	cmd.Flags().StringVar(&dataDir, "datadir", defaultDataDir(), "data directory")
	cmd.Flags().BoolVar(&asJSON, "json", false, "print JSON")
	return cmd
}

func newLedgerBatchCmd() *cobra.Command {
	var dataDir string
	var asJSON bool
	cmd := &cobra.Command{
		Use:   "batch EPOCH|latest",
		Short: "Show the batch applied for an epoch (or the latest): root, results, signers",
		Args:  cobra.ExactArgs(1),
		RunE: func(cmd *cobra.Command, args []string) error {
			var epoch uint64
			if args[0] == "latest" {
				var st node.LedgerStatus
				if err := getFromNode(cmd, dataDir, node.LedgerPath, &st); err != nil {
					return err
				}
				if st.LastBatch == nil {
					return fmt.Errorf("no batch on the ledger yet (current epoch %d)", st.Epoch)
				}
				epoch = *st.LastBatch
			} else {
				e, err := strconv.ParseUint(args[0], 10, 64)
				if err != nil {
					return exitCode(2, fmt.Errorf("epoch %q: want a number or latest", args[0]))
				}
				epoch = e
			}
			var b node.BatchJSON
			if err := getFromNode(cmd, dataDir, node.LedgerBatchPath+strconv.FormatUint(epoch, 10), &b); err != nil {
				return err
			}
			if asJSON {
				return printJSON(cmd.OutOrStdout(), b)
			}
			w := cmd.OutOrStdout()
			fmt.Fprintf(w, "epoch %d of %s: %s at height %d\nreceipts root %s over %d receipts\nsigned by %d keepers\n\n",
				b.Epoch, b.Network, b.Status, b.Height, b.ReceiptsRoot, b.Receipts, len(b.Signers))
			tw := tabwriter.NewWriter(w, 0, 0, 2, ' ', 0)
			fmt.Fprintln(tw, "EDGE\tCHALLENGES\tPASSES\tFAILS\tTIMEOUTS\tUPTIME\tSCORE\tREWARD\tPENALTY")
			for _, r := range b.Results {
				var c, p, f, t uint64
				for _, k := range r.Kinds {
					c, p, f, t = c+k.Challenges, p+k.Passes, f+k.Fails, t+k.Timeouts
				}
				fmt.Fprintf(tw, "%s\t%d\t%d\t%d\t%d\t%s\t%s\t%d\t%d\n", r.Edge, c, p, f, t, ppm(r.UptimePPM), ppm(r.ScorePPM), r.Reward, r.Penalty)
			}
			return tw.Flush()
		},
	}
	cmd.Flags().StringVar(&dataDir, "datadir", defaultDataDir(), "data directory")
	cmd.Flags().BoolVar(&asJSON, "json", false, "print JSON")
	return cmd
}

func ppm(v uint64) string { return fmt.Sprintf("%.1f%%", float64(v)/1e4) }

func newLedgerVerifyCmd() *cobra.Command {
	var dataDir string
	var asJSON bool
	cmd := &cobra.Command{
		Use:   "verify",
		Short: "Download every block of the ledger, replay them, and check the head",
		Args:  cobra.NoArgs,
		RunE: func(cmd *cobra.Command, _ []string) error {
			var v node.VerifyJSON
			if err := getFromNode(cmd, dataDir, node.LedgerVerifyPath, &v); err != nil {
				return err
			}
			if asJSON {
				if err := printJSON(cmd.OutOrStdout(), v); err != nil {
					return err
				}
			} else if v.OK {
				fmt.Fprintf(cmd.OutOrStdout(), "ok: %d blocks replay to height %d, head %s, %d accounts\n", v.Blocks, v.Height, v.Hash, v.Accounts)
			}
			if !v.OK {
				return fmt.Errorf("ledger does not verify: %s", v.Error)
			}
			return nil
		},
	}
	cmd.Flags().StringVar(&dataDir, "datadir", defaultDataDir(), "data directory")
	cmd.Flags().BoolVar(&asJSON, "json", false, "print JSON")
	return cmd
}

func newReportCmd() *cobra.Command {
	var dataDir, epoch, edge string
	var asJSON bool
	cmd := &cobra.Command{
		Use:   "report",
		Short: "Show an edge's epoch: claimed, verified, earned, and every failed challenge",
		Args:  cobra.NoArgs,
		RunE: func(cmd *cobra.Command, _ []string) error {
			q := url.Values{}
			if epoch != "" {
				if _, err := strconv.ParseUint(epoch, 10, 64); err != nil {
					return exitCode(2, fmt.Errorf("epoch %q: want a number", epoch))
				}
				q.Set("epoch", epoch)
			}
			if edge != "" {
				q.Set("edge", edge)
			}
			path := node.ReportPath + "?" + q.Encode()
			var r node.ReportJSON
			if err := getFromNode(cmd, dataDir, path, &r); err != nil {
				return err
			}
			if asJSON {
				return printJSON(cmd.OutOrStdout(), r)
			}
			return printReport(cmd, r)
		},
	}
	cmd.Flags().StringVar(&dataDir, "datadir", defaultDataDir(), "data directory")
	cmd.Flags().StringVar(&epoch, "epoch", "", "epoch to report (default: the latest settled one)")
	cmd.Flags().StringVar(&edge, "edge", "", "edge to report (default: this node, if an edge; required on a keeper)")
	cmd.Flags().BoolVar(&asJSON, "json", false, "print JSON")
	return cmd
}

func printReport(cmd *cobra.Command, r node.ReportJSON) error {
	w := cmd.OutOrStdout()
	state := "settled"
	if !r.Settled {
		state = "not settled yet"
	}
	fmt.Fprintf(w, "edge %s, epoch %d (%s)\n\n", r.Edge, r.Epoch, state)
	tw := tabwriter.NewWriter(w, 0, 0, 2, ' ', 0)
	fmt.Fprintln(tw, "KIND\tANSWERED\tCHALLENGES\tPASSES\tFAILS\tTIMEOUTS\tFAULTS\tVERIFIED")
	for _, c := range r.Claims {
		faults := 0
		for _, p := range c.Offer.Pieces {
			if p.Faulty {
				faults++
			}
		}
		line := fmt.Sprintf("%s\t%d\t-\t-\t-\t-\t%d\t-", c.Offer.Kind, c.Answered, faults)
		if r.Result != nil {
			for _, k := range r.Result.Kinds {
				if k.Kind == c.Offer.Kind {
					line = fmt.Sprintf("%s\t%d\t%d\t%d\t%d\t%d\t%d\t%d", k.Kind, c.Answered, k.Challenges, k.Passes, k.Fails, k.Timeouts, k.Faults, k.Verified)
				}
			}
		}
		fmt.Fprintln(tw, line)
	}
	if err := tw.Flush(); err != nil {
		return err
	}
	if r.Result != nil {
		fmt.Fprintf(w, "\nreward %d, penalty %d, score %s, uptime %s", r.Result.Reward, r.Result.Penalty, ppm(r.Result.ScorePPM), ppm(r.Result.UptimePPM))
		if r.Balance != nil {
			fmt.Fprintf(w, ", balance now %d", *r.Balance)
		}
		fmt.Fprintln(w)
	}
	if len(r.Failures) == 0 {
		fmt.Fprintln(w, "\nno failed challenges")
		return nil
	}
	fmt.Fprintf(w, "\n%d challenges not passed:\n", len(r.Failures))
	tw = tabwriter.NewWriter(w, 0, 0, 2, ' ', 0)
	fmt.Fprintln(tw, "ROUND\tKIND\tTRY\tKEEPER\tOUTCOME\tREASON")
	for _, f := range r.Failures {
		fmt.Fprintf(tw, "%d\t%s\t%d\t%s\t%s\t%s\n", f.Round, f.Kind, f.Attempt+1, short(f.Keeper), f.Outcome, f.Reason)
	}
	return tw.Flush()
}

func newReceiptsProveCmd() *cobra.Command {
	var dataDir, out string
	cmd := &cobra.Command{
		Use:   "prove CID",
		Short: "Write a receipt's inclusion proof in its epoch's batch as JSON",
		Args:  cobra.ExactArgs(1),
		RunE: func(cmd *cobra.Command, args []string) error {
			id, err := cid.Decode(args[0])
			if err != nil {
				return exitCode(2, fmt.Errorf("%q is not a receipt CID", args[0]))
			}
			var p node.ProofJSON
			if err := getFromNode(cmd, dataDir, node.ProofPath+id.String(), &p); err != nil {
				return err
			}
			if out == "" || out == "-" {
				return printJSON(cmd.OutOrStdout(), p)
			}
			b, err := json.MarshalIndent(p, "", "  ")
			if err != nil {
				return err
			}
			return os.WriteFile(out, append(b, '\n'), 0o644)
		},
	}
	cmd.Flags().StringVar(&dataDir, "datadir", defaultDataDir(), "data directory")
	cmd.Flags().StringVarP(&out, "output", "o", "", "write the proof to this file (default: standard output)")
	return cmd
}

func newReceiptsVerifyProofCmd() *cobra.Command {
	var dataDir string
	cmd := &cobra.Command{
		Use:   "verify-proof FILE",
		Short: "Check an inclusion proof against the batch root on the ledger",
		Args:  cobra.ExactArgs(1),
		RunE: func(cmd *cobra.Command, args []string) error {
			raw, err := os.ReadFile(args[0])
			if err != nil {
				return exitCode(2, err)
			}
			var p node.ProofJSON
			dec := json.NewDecoder(bytesReader(raw))
			dec.DisallowUnknownFields()
			if err := dec.Decode(&p); err != nil {
				return exitCode(2, fmt.Errorf("%s is not an inclusion proof: %w", args[0], err))
			}
			var b node.BatchJSON
			if err := getFromNode(cmd, dataDir, node.LedgerBatchPath+strconv.FormatUint(p.Epoch, 10), &b); err != nil {
				return err
			}
			if b.ReceiptsRoot != p.ReceiptsRoot || b.Receipts != p.Receipts {
				return fmt.Errorf("proof is against root %s of %d receipts, the ledger's batch of epoch %d has root %s of %d", p.ReceiptsRoot, p.Receipts, p.Epoch, b.ReceiptsRoot, b.Receipts)
			}
			root, err := hexBytes(b.ReceiptsRoot)
			if err != nil {
				return err
			}
			if err := p.Check(root, b.Receipts); err != nil {
				return fmt.Errorf("proof does not verify: %w", err)
			}
			fmt.Fprintf(cmd.OutOrStdout(), "ok: receipt %s is leaf %d of %d under the batch root of epoch %d on the ledger\n", p.Receipt, p.Index, p.Receipts, p.Epoch)
			return nil
		},
	}
	cmd.Flags().StringVar(&dataDir, "datadir", defaultDataDir(), "data directory")
	return cmd
}

func bytesReader(b []byte) *bytes.Reader { return bytes.NewReader(b) }

func hexBytes(s string) ([]byte, error) {
	b, err := hex.DecodeString(s)
	if err != nil {
		return nil, fmt.Errorf("root %q: %w", s, err)
	}
	return b, nil
}
