package compute

import (
	"context"
	"errors"
	"os/exec"
	"path/filepath"
	"slices"
	"strings"
	"testing"
	"time"

	"github.com/aropeer/aropeer/proofs"
)

// buildWorker builds compute/internal/testworker into a temporary
// directory, once per test.
func buildWorker(t *testing.T) string {
	t.Helper()
	gotool, err := exec.LookPath("go")
	if err != nil {
		t.Skip("the go tool is not on PATH: the Exec tests need it to build their worker")
	}
	bin := filepath.Join(t.TempDir(), "testworker")
	out, err := exec.Command(gotool, "build", "-o", bin, "./internal/testworker").CombinedOutput()
	if err != nil {
		t.Fatalf("build the test worker: %v\n%s", err, out)
	}
	return bin
}

// TestExecWorker: the Exec executor with an honest worker gives the CPU
// executor's product and passes a check over the stream; a worker that
// crashes, hangs, or writes garbage, half a product or one of another
// size gives an error wrapping ErrWorker that says which.
func TestExecWorker(t *testing.T) {
	bin := buildWorker(t)
	seed := MatrixSeed([]byte("exec"), make([]byte, NonceSize))
	const n = 70
	want, err := CPU{}.Multiply(context.Background(), n, seed)
	if err != nil {
		t.Fatal(err)
	}
	got, err := Exec{Program: bin, Timeout: 20 * time.Second}.Multiply(context.Background(), n, seed)
	if err != nil {
		t.Fatal(err)
	}
	if !slices.Equal(got.C, want.C) {
		t.Fatal("the worker's product differs from the CPU executor's")
	}

	pn := newProtoNet(t)
	r := newResponder(t, Exec{Program: bin, Timeout: 20 * time.Second})
	if out := pn.verify(t, newVerifier(t, testClaim), pn.challengeOf(5), r.Serve, 20*time.Second); out.Result != proofs.Pass {
		t.Fatalf("over the stream: %+v", out)
	}

	for mode, say := range map[string]string{
		"crash":   "crashing as asked",
		"hang":    "in time",
		"garbage": `magic "not "`,
		"short":   "bad output: C after",
		"big":     "product of size 71, want 70",
	} {
		x := Exec{Program: bin, Args: []string{"-mode", mode}, Timeout: 20 * time.Second}
		if mode == "hang" {
			x.Timeout = 300 * time.Millisecond
		}
		_, err := x.Multiply(context.Background(), n, seed)
		if !errors.Is(err, ErrWorker) || !strings.Contains(err.Error(), say) {
			t.Errorf("mode %s: %v, want an ErrWorker saying %q", mode, err, say)
		}
	}
	// A program that is not there.
	if _, err := (Exec{Program: filepath.Join(t.TempDir(), "none")}).Multiply(context.Background(), n, seed); !errors.Is(err, ErrWorker) {
		t.Errorf("missing program: %v", err)
	}
}

// TestWorkerFormat: what EncodeInput writes ReadInput reads back, and
// what WriteOutput writes ReadOutput reads back, for its size only.
func TestWorkerFormat(t *testing.T) {
	a, b := Matrices(5, [32]byte{4})
	n, a2, b2, err := ReadInput(strings.NewReader(string(EncodeInput(5, a, b))))
	if err != nil || n != 5 || !slices.Equal(a, a2) || !slices.Equal(b, b2) {
		t.Fatalf("input round trip: %v", err)
	}
	p, err := CPU{}.Multiply(context.Background(), 5, [32]byte{4})
	if err != nil {
		t.Fatal(err)
	}
	var out strings.Builder
	if err := WriteOutput(&out, p); err != nil {
		t.Fatal(err)
	}
	if len(out.String()) != headerSize+4*25 {
		t.Fatalf("output of %d bytes", len(out.String()))
	}
	q, err := ReadOutput(strings.NewReader(out.String()), 5)
	if err != nil || !slices.Equal(q.C, p.C) {
		t.Fatalf("output round trip: %v", err)
	}
	if _, err := ReadOutput(strings.NewReader(out.String()), 6); err == nil {
		t.Fatal("read a product of 5 as one of 6")
	}
}
