package main

import (
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"io"
	"log/slog"
	"os"
	"path/filepath"
	"strings"
	"text/tabwriter"
	"time"

	"github.com/ipfs/go-cid"
	"github.com/spf13/cobra"

	"github.com/aropeer/aropeer/node"
	"github.com/aropeer/aropeer/node/api"
	"github.com/aropeer/aropeer/node/config"
	"github.com/aropeer/aropeer/storage/pieces"
	"github.com/aropeer/aropeer/store"
)

func newStoreCmd() *cobra.Command {
	cmd := &cobra.Command{
		Use:   "store",
		Short: "Manage the pieces an edge stores and offers: add, list, remove, verify",
		Long: `store manages an edge's pieces: each is committed as Filecoin commits a
piece, and its piece CID is what keepers challenge. The commands go
through the running node's API, or open the data directory directly when
no node runs.`,
	}
	cmd.AddCommand(newStoreAddCmd(), newStoreListCmd(), newStoreRemoveCmd(), newStoreVerifyCmd())
	return cmd
}

// withPieces runs viaAPI against the running node, or direct against the
// piece store opened in dataDir when no node runs.
func withPieces(cmd *cobra.Command, dataDir string, viaAPI func(*api.Client) error, direct func(*store.DB, *pieces.Store) error) error {
	client, _, err := clientFor(dataDir)
	if err != nil {
		return err
	}
	err = viaAPI(client)
	if !errors.Is(err, api.ErrNotRunning) {
		return err
	}
	return openPieces(dataDir, direct)
}

// openPieces runs fn on the store and piece store of dataDir, opened
// directly: only while no node runs there.
func openPieces(dataDir string, fn func(*store.DB, *pieces.Store) error) error {
	db, err := store.Open(config.Datadir(dataDir).StorePath())
	if err != nil {
		return err
	}
	defer db.Close()
	ps, err := pieces.Open(db, config.Datadir(dataDir).PiecesPath(), pieces.WithLogger(quietLog()))
	if err != nil {
		return err
	}
	return fn(db, ps)
}

// progress draws a bar on a terminal and plain lines (every tenth)
// elsewhere, on w.
type progress struct {
	w     io.Writer
	tty   bool
	what  string
	start time.Time
	tenth int64
}

func newProgress(what string) *progress {
	fi, err := os.Stderr.Stat()
	tty := err == nil && fi.Mode()&os.ModeCharDevice != 0
	return &progress{w: os.Stderr, tty: tty, what: what, start: time.Now(), tenth: -1}
}

func (p *progress) update(done, total int64) {
	if total <= 0 {
		return
	}
	frac := float64(done) / float64(total)
	rate := float64(done) / max(time.Since(p.start).Seconds(), 1e-3) / (1 << 20)
	if p.tty {
		const width = 30
		bar := strings.Repeat("#", int(frac*width)) + strings.Repeat(" ", width-int(frac*width))
		fmt.Fprintf(p.w, "\r%s [%s] %3.0f%%  %s of %s  %.0f MiB/s", p.what, bar, frac*100, mib(done), mib(total), rate)
		return
	}
	if t := done * 10 / total; t > p.tenth {
		p.tenth = t
		fmt.Fprintf(p.w, "%s: %d%% (%s of %s, %.0f MiB/s)\n", p.what, t*10, mib(done), mib(total), rate)
	}
}

func (p *progress) finish() {
	if p.tty {
		fmt.Fprintln(p.w)
	}
}

func mib(n int64) string { return fmt.Sprintf("%.1f MiB", float64(n)/(1<<20)) }

// streamProgress reads a long operation's progress lines into bar and
// returns its last line.
func streamProgress(ctx context.Context, client *api.Client, path string, body any, bar *progress) (node.ProgressJSON, error) {
	var last node.ProgressJSON
	err := client.PostStream(ctx, path, body, func(line []byte) error {
		var p node.ProgressJSON
		if err := json.Unmarshal(line, &p); err != nil {
			return fmt.Errorf("progress line %q: %w", line, err)
		}
		bar.update(p.Done, p.Total)
		last = p
		return nil
	})
	bar.finish()
	if err == nil && last.Error != "" {
		err = errors.New(last.Error)
	}
	return last, err
}

func newStoreAddCmd() *cobra.Command {
	var dataDir string
	var asJSON bool
	cmd := &cobra.Command{
		Use:   "add FILE",
		Short: "Copy a file into the store, commit it, and offer it: prints its piece CID",
		Args:  cobra.ExactArgs(1),
		RunE: func(cmd *cobra.Command, args []string) error {
			path, err := filepath.Abs(args[0])
			if err != nil {
				return exitCode(2, err)
			}
			if _, err := os.Stat(path); err != nil {
				return exitCode(2, err)
			}
			bar := newProgress("committing " + filepath.Base(path))
			var piece node.PieceJSON
			err = withPieces(cmd, dataDir, func(c *api.Client) error {
				last, err := streamProgress(cmd.Context(), c, node.PiecesPath, node.AddPieceRequest{Path: path}, bar)
				if err == nil && last.Piece != nil {
					piece = *last.Piece
				}
				return err
			}, func(db *store.DB, ps *pieces.Store) error {
				p, err := ps.AddFile(cmd.Context(), path, bar.update)
				bar.finish()
				if err == nil {
					piece = node.PieceView(db, p)
				}
				return err
			})
			if err != nil {
				return err
			}
			if asJSON {
				return printJSON(cmd.OutOrStdout(), piece)
			}
			fmt.Fprintf(cmd.OutOrStdout(), "%s\tpadded size %d\n", piece.CID, piece.Padded)
			return nil
		},
	}
	cmd.Flags().StringVar(&dataDir, "datadir", defaultDataDir(), "data directory")
	cmd.Flags().BoolVar(&asJSON, "json", false, "print JSON")
	return cmd
}

func newStoreListCmd() *cobra.Command {
	var dataDir string
	var asJSON bool
	cmd := &cobra.Command{
		Use:   "list",
		Short: "List the pieces stored: CID, sizes, faults declared",
		Args:  cobra.NoArgs,
		RunE: func(cmd *cobra.Command, _ []string) error {
			var list []node.PieceJSON
			err := withPieces(cmd, dataDir, func(c *api.Client) error {
				return c.GetJSON(cmd.Context(), node.PiecesPath, &list)
			}, func(db *store.DB, ps *pieces.Store) (err error) {
				list, err = node.ListPieces(db, ps)
				return err
			})
			if err != nil {
				return err
			}
			if asJSON {
				if list == nil {
					list = []node.PieceJSON{}
				}
				return printJSON(cmd.OutOrStdout(), list)
			}
			tw := tabwriter.NewWriter(cmd.OutOrStdout(), 0, 0, 2, ' ', 0)
			fmt.Fprintln(tw, "CID\tPAYLOAD\tPADDED\tNAME\tADDED\tFAULT")
			for _, p := range list {
				fault := "-"
				if p.Faulty {
					fault = fmt.Sprintf("declared in round %d", p.FaultRound)
				}
				fmt.Fprintf(tw, "%s\t%d\t%d\t%s\t%s\t%s\n", p.CID, p.Payload, p.Padded, p.Name, p.Added.Format(time.DateTime), fault)
			}
			return tw.Flush()
		},
	}
	cmd.Flags().StringVar(&dataDir, "datadir", defaultDataDir(), "data directory")
	cmd.Flags().BoolVar(&asJSON, "json", false, "print JSON")
	return cmd
}

func newStoreRemoveCmd() *cobra.Command {
	var dataDir string
	cmd := &cobra.Command{
		Use:   "remove CID",
		Short: "Remove a piece from the store and from the edge's offer",
		Args:  cobra.ExactArgs(1),
		RunE: func(cmd *cobra.Command, args []string) error {
			id, err := cid.Decode(args[0])
			if err != nil {
				return exitCode(2, fmt.Errorf("%q is not a piece CID", args[0]))
			}
			err = withPieces(cmd, dataDir, func(c *api.Client) error {
				return c.Delete(cmd.Context(), node.PiecesPath+"/"+id.String())
			}, func(db *store.DB, ps *pieces.Store) error {
				return node.RemovePiece(db, ps, id)
			})
			if errors.Is(err, store.ErrNotFound) {
				return fmt.Errorf("no piece %s in %s", id, dataDir)
			}
			if err != nil {
				return err
			}
			fmt.Fprintf(cmd.OutOrStdout(), "removed %s\n", id)
			return nil
		},
	}
	cmd.Flags().StringVar(&dataDir, "datadir", defaultDataDir(), "data directory")
	return cmd
}

func newStoreVerifyCmd() *cobra.Command {
	var dataDir string
	var asJSON bool
	cmd := &cobra.Command{
		Use:   "verify [CID]",
		Short: "Recompute pieces from their data and report (and declare) any that no longer match",
		Args:  cobra.MaximumNArgs(1),
		RunE: func(cmd *cobra.Command, args []string) error {
			id := cid.Undef
			req := node.VerifyPiecesRequest{}
			if len(args) == 1 {
				c, err := cid.Decode(args[0])
				if err != nil {
					return exitCode(2, fmt.Errorf("%q is not a piece CID", args[0]))
				}
				id, req.CID = c, c.String()
			}
			bar := newProgress("verifying")
			var checks []node.CheckJSON
			err := withPieces(cmd, dataDir, func(c *api.Client) error {
				last, err := streamProgress(cmd.Context(), c, node.VerifyPiecesPath, req, bar)
				checks = last.Checks
				return err
			}, func(db *store.DB, ps *pieces.Store) (err error) {
				cfg, err := loadConfig(dataDir, overrides{})
				if err != nil {
					return err
				}
				nw, err := cfg.NetworkParams()
				if err != nil {
					return err
				}
				checks, err = node.VerifyPieces(cmd.Context(), db, ps, id, nw.Beacon.RoundAt(time.Now()), bar.update)
				bar.finish()
				return err
			})
			if errors.Is(err, store.ErrNotFound) {
				return fmt.Errorf("no piece %s in %s", id, dataDir)
			}
			if err != nil {
				return err
			}
			if asJSON {
				if checks == nil {
					checks = []node.CheckJSON{}
				}
				if err := printJSON(cmd.OutOrStdout(), checks); err != nil {
					return err
				}
			}
			bad := 0
			for _, c := range checks {
				if !c.OK {
					bad++
					if !asJSON {
						fmt.Fprintf(cmd.OutOrStdout(), "DAMAGED %s: %s; declared faulty\n", c.CID, c.Reason)
					}
				} else if !asJSON {
					fmt.Fprintf(cmd.OutOrStdout(), "ok %s\n", c.CID)
				}
			}
			if bad > 0 {
				return exitCode(1, fmt.Errorf("%d of %d pieces no longer match their commitment", bad, len(checks)))
			}
			return nil
		},
	}
	cmd.Flags().StringVar(&dataDir, "datadir", defaultDataDir(), "data directory")
	cmd.Flags().BoolVar(&asJSON, "json", false, "print JSON")
	return cmd
}

// quietLog logs only warnings and errors, to stderr: the commands print
// their own results.
func quietLog() *slog.Logger {
	return slog.New(slog.NewTextHandler(os.Stderr, &slog.HandlerOptions{Level: slog.LevelWarn}))
}
