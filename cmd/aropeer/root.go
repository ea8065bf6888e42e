package main

import (
	"errors"
	"fmt"
	"io"
	"os"
	"strings"

	"github.com/spf13/cobra"

	"github.com/aropeer/aropeer/node/config"
)

// exitError carries the exit status a command wants; its message is
// already the one line the user sees.
type exitError struct {
	code int
	err  error
}

func (e *exitError) Error() string { return e.err.Error() }
func (e *exitError) Unwrap() error { return e.err }

// exitCode wraps err so that the command exits with code.
func exitCode(code int, err error) error { return &exitError{code: code, err: err} }

func execute(args []string, stdout, stderr io.Writer) int {
	root := newRootCmd()
	root.SetArgs(args)
	root.SetOut(stdout)
	root.SetErr(stderr)
	err := root.Execute()
	if err == nil {
		return 0
	}
	fmt.Fprintf(stderr, "aropeer: %s\n", oneLine(err))
	var ee *exitError
	if errors.As(err, &ee) {
		return ee.code
	}
	return 1
}

// oneLine folds a (possibly joined) error into the single line a user sees.
func oneLine(err error) string {
	return strings.Join(strings.Fields(strings.ReplaceAll(err.Error(), "\n", "; ")), " ")
}

// defaultDataDir is $ARO_DATADIR or ~/.aropeer; "" when neither can be
// found, so that the command asks for --datadir.
func defaultDataDir() string {
	d, err := config.DefaultDatadir(os.Getenv)
	if err != nil {
		return ""
	}
	return string(d)
}

func newRootCmd() *cobra.Command {
	root := &cobra.Command{
		Use:           "aropeer",
		Short:         "aropeer runs a GPoW node: edge, keeper or bootstrap",
		SilenceUsage:  true,
		SilenceErrors: true,
	}
	root.SetFlagErrorFunc(func(_ *cobra.Command, err error) error {
		return exitCode(2, fmt.Errorf("%w (see aropeer --help)", err))
	})
	root.AddCommand(
		newInitCmd(),
		newRunCmd(),
		newStatusCmd(),
		newIDCmd(),
		newVersionCmd(),
		newDevnetCmd(),
		newBeaconCmd(),
		newChallengesCmd(),
		newReceiptsCmd(),
		newLedgerCmd(),
		newReportCmd(),
		newStoreCmd(),
		newSimCmd(),
	)
	return root
}
