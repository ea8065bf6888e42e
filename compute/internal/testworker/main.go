// Command testworker is a compute worker for the tests of compute.Exec:
// it speaks the worker protocol (see compute/worker/README.md) on the
// CPU, or misbehaves as -mode says: crash (exit 2 after a message on
// stderr), hang (never answer), garbage (random bytes), short (half of
// C), big (C of another size).
package main

import (
	"bufio"
	"bytes"
	"context"
	"encoding/hex"
	"flag"
	"fmt"
	"os"
	"slices"
	"strconv"
	"time"

	"github.com/aropeer/aropeer/compute"
)

func main() {
	mode := flag.String("mode", "honest", "honest, crash, hang, garbage, short or big")
	flag.Parse()
	if err := run(*mode, flag.Args()); err != nil {
		fmt.Fprintln(os.Stderr, "testworker:", err)
		os.Exit(2)
	}
}

func run(mode string, args []string) error {
	if len(args) != 2 {
		return fmt.Errorf("want arguments <n> <seed-hex>, got %q", args)
	}
	n, err := strconv.Atoi(args[0])
	if err != nil {
		return err
	}
	s, err := hex.DecodeString(args[1])
	if err != nil || len(s) != 32 {
		return fmt.Errorf("seed %q is not 32 bytes of hex", args[1])
	}
	seed := [32]byte(s)
	in, a, b, err := compute.ReadInput(bufio.NewReader(os.Stdin))
	if err != nil {
		return fmt.Errorf("stdin: %w", err)
	}
	wantA, wantB := compute.Matrices(n, seed)
	if in != n || !slices.Equal(a, wantA) || !slices.Equal(b, wantB) {
		return fmt.Errorf("stdin holds other matrices than those of n=%d and the seed", n)
	}
	switch mode {
	case "crash":
		return fmt.Errorf("crashing as asked")
	case "hang":
		time.Sleep(time.Hour)
	case "garbage":
		os.Stdout.Write(bytes.Repeat([]byte("not a product "), 100))
		return nil
	case "big":
		n++
		seed = [32]byte{}
	}
	p, err := compute.CPU{}.Multiply(context.Background(), n, seed)
	if err != nil {
		return err
	}
	var out bytes.Buffer
	if err := compute.WriteOutput(&out, p); err != nil {
		return err
	}
	if mode == "short" {
		out.Truncate(out.Len() / 2)
	}
	_, err = os.Stdout.Write(out.Bytes())
	return err
}
