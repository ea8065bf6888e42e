package compute

import (
	"bufio"
	"bytes"
	"context"
	"encoding/binary"
	"encoding/hex"
	"errors"
	"fmt"
	"io"
	"os/exec"
	"strconv"
	"time"
)

// The worker protocol of Exec. A worker is run as
//
//	program [args...] <n> <seed-hex>
//
// with n the matrix size in decimal and seed-hex the 32-byte matrix seed
// in lower-case hex (a worker may regenerate A and B from it, see
// Matrices). Its standard input carries the matrices:
//
//	"AROA" | uint32 LE n | A: n*n int8, row-major | B: n*n int8, row-major
//
// and it must write C = A·B, exact, to standard output:
//
//	"AROC" | uint32 LE n | C: n*n int32 LE, row-major
//
// and exit 0. Anything else (another size, fewer or more bytes, a
// non-zero exit, no answer before the timeout) is an error.
// compute/worker/README.md says the same, with an example worker.
const (
	InputMagic  = "AROA"
	OutputMagic = "AROC"
	headerSize  = 8
)

// Exec multiplies by running an external worker program, one run per
// check: a GPU worker (compute/worker/torch_worker.py) or any program
// that speaks the worker protocol above.
type Exec struct {
	// Program and Args are the worker's command; n and the seed follow
	// Args.
	Program string
	Args    []string
	// Timeout bounds one run on top of the context's deadline; 0 means
	// only the context's.
	Timeout time.Duration
	// Env, if not nil, is the worker's environment (as exec.Cmd.Env).
	Env []string
}

var _ Executor = Exec{}

// ErrWorker is wrapped by every error of a worker that did not give a
// product: it crashed, hung, or wrote something else.
var ErrWorker = errors.New("compute: worker failed")

// maxStderr caps what of a worker's standard error an error quotes.
const maxStderr = 512

// Multiply runs the worker on the matrices of (n, seed) and reads C from
// its output.
func (x Exec) Multiply(ctx context.Context, n int, seed [32]byte) (*Product, error) {
	if n < 1 || n > maxN {
		return nil, fmt.Errorf("compute: exec: size %d outside 1 to %d", n, maxN)
	}
	if x.Timeout > 0 {
		var cancel context.CancelFunc
		ctx, cancel = context.WithTimeout(ctx, x.Timeout)
		defer cancel()
	}
	cmd := exec.CommandContext(ctx, x.Program, append(append([]string(nil), x.Args...), strconv.Itoa(n), hex.EncodeToString(seed[:]))...)
	cmd.Env = x.Env
	// A worker that ignores the kill signal's cousins, or leaves a child
	// holding its pipes, must not hold the edge: give up on its output a
	// moment after the kill.
	cmd.WaitDelay = time.Second
	var stderr bytes.Buffer
	cmd.Stderr = &capped{buf: &stderr, max: maxStderr}
	a, b := Matrices(n, seed)
	cmd.Stdin = bytes.NewReader(EncodeInput(n, a, b))
	stdout, err := cmd.StdoutPipe()
	if err != nil {
		return nil, fmt.Errorf("compute: exec: %w", err)
	}
	if err := cmd.Start(); err != nil {
		return nil, fmt.Errorf("%w: start %s: %w", ErrWorker, x.Program, err)
	}
	p, readErr := ReadOutput(bufio.NewReaderSize(stdout, 1<<16), n)
	if readErr == nil {
		// Nothing may follow C.
		if k, _ := io.Copy(io.Discard, io.LimitReader(stdout, 1)); k > 0 {
			readErr = errors.New("more output after C")
		}
	}
	waitErr := cmd.Wait()
	switch {
	case ctx.Err() != nil:
		return nil, fmt.Errorf("%w: %s: no product of size %d in time: %w", ErrWorker, x.Program, n, ctx.Err())
	case waitErr != nil:
		return nil, fmt.Errorf("%w: %s: %w%s", ErrWorker, x.Program, waitErr, quote(stderr.Bytes()))
	case readErr != nil:
		return nil, fmt.Errorf("%w: %s: bad output: %w%s", ErrWorker, x.Program, readErr, quote(stderr.Bytes()))
	}
	return p, nil
}

func quote(stderr []byte) string {
	s := string(bytes.TrimSpace(stderr))
	if s == "" {
		return ""
	}
	return fmt.Sprintf(" (stderr: %q)", s)
}

// capped keeps the first max bytes written to it and drops the rest.
type capped struct {
	buf *bytes.Buffer
	max int
}

func (c *capped) Write(p []byte) (int, error) {
	if room := c.max - c.buf.Len(); room > 0 {
		c.buf.Write(p[:min(room, len(p))])
	}
	return len(p), nil
}

// EncodeInput is a worker's standard input for A and B of size n.
func EncodeInput(n int, a, b []int8) []byte {
	out := make([]byte, headerSize, headerSize+2*n*n)
	copy(out, InputMagic)
	binary.LittleEndian.PutUint32(out[4:], uint32(n))
	for _, m := range [][]int8{a, b} {
		for _, v := range m {
			out = append(out, byte(v))
		}
	}
	return out
}

// ReadInput reads a worker's standard input: A and B of size n, which
// it takes from the header, at most maxN.
func ReadInput(r io.Reader) (n int, a, b []int8, err error) {
	var h [headerSize]byte
	if _, err := io.ReadFull(r, h[:]); err != nil {
		return 0, nil, nil, fmt.Errorf("header: %w", err)
	}
	if string(h[:4]) != InputMagic {
		return 0, nil, nil, fmt.Errorf("magic %q, want %q", h[:4], InputMagic)
	}
	m := binary.LittleEndian.Uint32(h[4:])
	if m < 1 || m > maxN {
		return 0, nil, nil, fmt.Errorf("size %d outside 1 to %d", m, maxN)
	}
	n = int(m)
	buf := make([]byte, 2*n*n)
	if _, err := io.ReadFull(r, buf); err != nil {
		return 0, nil, nil, fmt.Errorf("matrices of size %d: %w", n, err)
	}
	ab := asInt8(buf)
	return n, ab[: n*n : n*n], ab[n*n:], nil
}

// WriteOutput writes C in the worker output format.
func WriteOutput(w io.Writer, p *Product) error {
	buf := make([]byte, headerSize, headerSize+4*len(p.C))
	copy(buf, OutputMagic)
	binary.LittleEndian.PutUint32(buf[4:], uint32(p.N))
	for _, v := range p.C {
		buf = binary.LittleEndian.AppendUint32(buf, uint32(v))
	}
	_, err := w.Write(buf)
	return err
}

// ReadOutput reads a worker's output for a product of size n: exactly
// the header and n*n int32, never more (it reads no further).
func ReadOutput(r io.Reader, n int) (*Product, error) {
	var h [headerSize]byte
	if _, err := io.ReadFull(r, h[:]); err != nil {
		return nil, fmt.Errorf("header: %w", err)
	}
	if string(h[:4]) != OutputMagic {
		return nil, fmt.Errorf("magic %q, want %q", h[:4], OutputMagic)
	}
	if m := binary.LittleEndian.Uint32(h[4:]); m != uint32(n) {
		return nil, fmt.Errorf("product of size %d, want %d", m, n)
	}
	c := make([]int32, n*n)
	var row [4 << 10]byte
	for i := 0; i < len(c); {
		k := min(len(row)/4, len(c)-i)
		if _, err := io.ReadFull(r, row[:4*k]); err != nil {
			return nil, fmt.Errorf("C after %d of %d values: %w", i, n*n, err)
		}
		for j := range k {
			c[i+j] = int32(binary.LittleEndian.Uint32(row[4*j:]))
		}
		i += k
	}
	return &Product{N: n, C: c}, nil
}
