package storage

import (
	"bufio"
	"bytes"
	"crypto/sha256"
	"errors"
	"fmt"
	"io"
	mathrand "math/rand"
	"math/rand/v2"
	"os"
	"strconv"
	"strings"
	"testing"

	commp "github.com/filecoin-project/go-fil-commp-hashhash"
)

// longEnv runs the golden pieces over 64 MiB, up to 32 GiB: minutes of
// hashing, too long for the ordinary run.
const longEnv = "AROPEER_LONG"

// goldenVector is a line of testdata/*.txt: a piece computed by Lotus.
type goldenVector struct {
	payload int64
	padded  uint64
	cid     string
}

func readGolden(t *testing.T, name string) []goldenVector {
	t.Helper()
	f, err := os.Open("testdata/" + name)
	if err != nil {
		t.Fatal(err)
	}
	defer f.Close()
	var out []goldenVector
	sc := bufio.NewScanner(f)
	for sc.Scan() {
		parts := strings.Split(sc.Text(), ",")
		if len(parts) != 3 {
			t.Fatalf("%s: bad line %q", name, sc.Text())
		}
		payload, err1 := strconv.ParseInt(parts[0], 10, 64)
		padded, err2 := strconv.ParseUint(parts[1], 10, 64)
		if err := errors.Join(err1, err2); err != nil {
			t.Fatalf("%s: %v", name, err)
		}
		out = append(out, goldenVector{payload, padded, parts[2]})
	}
	if err := sc.Err(); err != nil || len(out) == 0 {
		t.Fatalf("%s: %d vectors, %v", name, len(out), err)
	}
	return out
}

// lotusRandom is the payload of random.txt: go-random's stream with seed
// 1337, generated exactly as go-fil-commp-hashhash's commp_test.go does
// (math/rand, 4 MiB buffers, each filled from Uint32s little-endian), but
// served by Read instead of through a pipe.
type lotusRandom struct {
	rand  *mathrand.Rand
	count int64 // bytes not generated yet
	buf   []byte
	rest  []byte // generated, not yet read
}

func newLotusRandom(size int64) *lotusRandom {
	return &lotusRandom{rand: mathrand.New(mathrand.NewSource(1337)), count: size, buf: make([]byte, 4<<20)}
}

func (g *lotusRandom) Read(p []byte) (int, error) {
	if len(g.rest) == 0 {
		if g.count == 0 {
			return 0, io.EOF
		}
		bufsize := int64(len(g.buf))
		if bufsize > g.count {
			bufsize = g.count
		}
		b := g.buf[:bufsize]
		var n uint32
		for i := int64(0); i < bufsize; {
			n = g.rand.Uint32()
			for j := 0; j < 4 && i < bufsize; j++ {
				b[i] = byte(n & 0xff)
				n >>= 8
				i++
			}
		}
		g.count -= bufsize
		g.rest = b
	}
	n := copy(p, g.rest)
	g.rest = g.rest[n:]
	return n, nil
}

// repeated is an endless reader of one byte value.
type repeated byte

func (r repeated) Read(p []byte) (int, error) {
	for i := range p {
		p[i] = byte(r)
	}
	return len(p), nil
}

// TestGoldenPieces commits the payloads Lotus committed and compares the
// padded sizes and piece CIDs.
func TestGoldenPieces(t *testing.T) {
	long := os.Getenv(longEnv) == "1"
	sources := map[string]func(size int64) io.Reader{
		"random.txt": func(size int64) io.Reader { return newLotusRandom(size) },
		"zero.txt":   func(size int64) io.Reader { return io.LimitReader(repeated(0), size) },
		"0xCC.txt":   func(size int64) io.Reader { return io.LimitReader(repeated(0xcc), size) },
	}
	for name, source := range sources {
		t.Run(name, func(t *testing.T) {
			for _, v := range readGolden(t, name) {
				t.Run(strconv.FormatInt(v.payload, 10), func(t *testing.T) {
					if v.payload > 64<<20 && !long {
						t.Skipf("pieces over 64 MiB take minutes; set %s=1 to run them", longEnv)
					}
					padded, err := PaddedSize(v.payload)
					if err != nil || padded != v.padded {
						t.Fatalf("PaddedSize(%d) = %d, %v; Lotus: %d", v.payload, padded, err, v.padded)
					}
					tree, err := Commit(source(v.payload), v.payload, 0, nil)
					if err != nil {
						t.Fatal(err)
					}
					if got := tree.CID().String(); got != v.cid {
						t.Fatalf("piece CID %s, Lotus: %s", got, v.cid)
					}
				})
			}
		})
	}
}

func TestPaddedSize(t *testing.T) {
	for _, c := range []struct {
		payload int64
		padded  uint64 // 0: refused
	}{
		{-1, 0}, {0, 0}, {64, 0}, {65, 128}, {127, 128}, {128, 256}, {254, 256},
		{255, 512}, {127 << 10, 128 << 10}, {127<<10 + 1, 256 << 10},
		{MaxPayload, MaxPadded}, {MaxPayload + 1, 0},
	} {
		got, err := PaddedSize(c.payload)
		if c.padded == 0 {
			if !errors.Is(err, ErrPayloadSize) {
				t.Errorf("PaddedSize(%d) = %d, %v; want ErrPayloadSize", c.payload, got, err)
			}
			continue
		}
		if err != nil || got != c.padded {
			t.Errorf("PaddedSize(%d) = %d, %v; want %d", c.payload, got, err, c.padded)
		}
	}
}

// naivePad pads payload bit by bit: bit i of the payload is bit
// i%254 of leaf i/254 (bits little-endian within bytes), then zero leaves
// up to padded bytes.
func naivePad(payload []byte, padded uint64) []byte {
	out := make([]byte, padded)
	for i := range uint64(len(payload)) * 8 {
		if payload[i/8]>>(i%8)&1 == 1 {
			o := i/254*256 + i%254
			out[o/8] |= 1 << (o % 8)
		}
	}
	return out
}

// naiveTree returns every level of the tree over padded leaves, leaves
// first, hashing with a fresh hash.Hash per node.
func naiveTree(leaves []byte) [][]byte {
	levels := [][]byte{leaves}
	for cur := leaves; len(cur) > LeafSize; {
		next := make([]byte, len(cur)/2)
		for i := 0; i < len(cur); i += 2 * LeafSize {
			h := sha256.New()
			h.Write(cur[i : i+2*LeafSize])
			sum := h.Sum(nil)
			sum[31] &= 0x3f
			copy(next[i/2:], sum)
		}
		levels = append(levels, next)
		cur = next
	}
	return levels
}

func naiveRoot(t testing.TB, payload []byte) [32]byte {
	padded, err := PaddedSize(int64(len(payload)))
	if err != nil {
		t.Fatal(err)
	}
	levels := naiveTree(naivePad(payload, padded))
	return [32]byte(levels[len(levels)-1])
}

// referenceRoot is go-fil-commp-hashhash's commitment of payload.
func referenceRoot(t testing.TB, r io.Reader) ([32]byte, uint64) {
	var cp commp.Calc
	if _, err := io.Copy(&cp, r); err != nil {
		t.Fatal(err)
	}
	root, padded, err := cp.Digest()
	if err != nil {
		t.Fatal(err)
	}
	return [32]byte(root), padded
}

func TestFr32MatchesBitByBit(t *testing.T) {
	rng := rand.New(rand.NewPCG(1, 2))
	for range 1000 {
		in := make([]byte, quadPayload)
		for i := range in {
			in[i] = byte(rng.Uint32())
		}
		if rng.IntN(4) == 0 {
			for i := range in {
				in[i] = 0xff // every bit set, so no top bit can leak
			}
		}
		out := make([]byte, quadPadded)
		fr32(out, in)
		if want := naivePad(in, quadPadded); !bytes.Equal(out, want) {
			t.Fatalf("fr32(%x) = %x, want %x", in, out, want)
		}
	}
}

// TestCommitSmallMatchesNaive checks every payload size over the first
// leaves and a few hundred more up to 64 KiB against the naive tree.
func TestCommitSmallMatchesNaive(t *testing.T) {
	rng := rand.New(rand.NewPCG(3, 4))
	sizes := []int{}
	for n := MinPayload; n <= 1100; n++ {
		sizes = append(sizes, n)
	}
	for range 200 {
		sizes = append(sizes, MinPayload+rng.IntN(64<<10))
	}
	for _, n := range sizes {
		data := make([]byte, n)
		for i := range data {
			data[i] = byte(rng.Uint32())
		}
		tree, err := Commit(bytes.NewReader(data), int64(n), 1+n%3, nil)
		if err != nil {
			t.Fatal(err)
		}
		if got, want := tree.Root(), naiveRoot(t, data); got != want {
			t.Fatalf("%d bytes: root %x, naive %x", n, got, want)
		}
	}
}

// TestCommitMatchesReference compares random sizes up to 64 MiB, read in
// random pieces, with go-fil-commp-hashhash.
func TestCommitMatchesReference(t *testing.T) {
	rng := rand.New(rand.NewPCG(5, 6))
	sizes := []int64{127 << 13, 127<<13 + 1, 127<<13 - 1, 1 << 20, 3 << 20, 64 << 20}
	for range 12 {
		// Log-uniform from 65 bytes to 64 MiB.
		sizes = append(sizes, max(MinPayload, int64(1)<<rng.IntN(26)+rng.Int64N(1<<20)))
	}
	seed := uint64(0)
	for _, size := range sizes {
		seed++
		t.Run(strconv.FormatInt(size, 10), func(t *testing.T) {
			src := func() io.Reader { return io.LimitReader(&chachaReader{rand.NewChaCha8([32]byte{byte(seed)})}, size) }
			want, wantPadded := referenceRoot(t, src())
			workers := 1 + int(seed%3)
			tree, err := Commit(&choppyReader{r: src(), rng: rng}, size, workers, nil)
			if err != nil {
				t.Fatal(err)
			}
			if tree.Padded != wantPadded || tree.Root() != want {
				t.Fatalf("%d workers: padded %d root %x; reference: %d %x", workers, tree.Padded, tree.Root(), wantPadded, want)
			}
		})
	}
}

// chachaReader is a fast deterministic source of payloads.
type chachaReader struct{ c *rand.ChaCha8 }

func (r *chachaReader) Read(p []byte) (int, error) { return r.c.Read(p) }

// choppyReader returns short reads of random lengths, as a network does.
type choppyReader struct {
	r   io.Reader
	rng *rand.Rand
}

func (c *choppyReader) Read(p []byte) (int, error) {
	if len(p) > 1 {
		p = p[:1+c.rng.IntN(len(p))]
	}
	return c.r.Read(p)
}

func TestCommitShortReader(t *testing.T) {
	_, err := Commit(io.LimitReader(repeated(1), 3<<20), 5<<20, 2, nil)
	if !errors.Is(err, io.ErrUnexpectedEOF) || !strings.Contains(err.Error(), "ended after") {
		t.Fatalf("Commit of a short reader: %v; want io.ErrUnexpectedEOF saying where it ended", err)
	}
	if _, err := Commit(bytes.NewReader(make([]byte, 100)), 64, 1, nil); !errors.Is(err, ErrPayloadSize) {
		t.Fatalf("Commit of 64 bytes: %v; want ErrPayloadSize", err)
	}
}

func TestCommitReadsExactlyPayload(t *testing.T) {
	const payload = 3<<20 + 17
	r := bytes.NewReader(make([]byte, payload+1000))
	if _, err := Commit(r, payload, 2, nil); err != nil {
		t.Fatal(err)
	}
	if r.Len() != 1000 {
		t.Fatalf("Commit left %d bytes unread, want 1000", r.Len())
	}
}

func TestCommitProgress(t *testing.T) {
	const payload = 5<<20 + 3
	var got []int64
	_, err := Commit(io.LimitReader(repeated(7), payload), payload, 2, func(done int64) {
		got = append(got, done)
	})
	if err != nil {
		t.Fatal(err)
	}
	if len(got) < 2 || got[len(got)-1] != payload {
		t.Fatalf("progress %v: want several calls ending at %d", got, payload)
	}
	for i := 1; i < len(got); i++ {
		if got[i] <= got[i-1] {
			t.Fatalf("progress %v is not increasing", got)
		}
	}
}

// TestCommitZeroPadding checks pieces just over a power of two, whose
// padding is almost half the tree, against the reference.
func TestCommitZeroPadding(t *testing.T) {
	for _, size := range []int64{127<<15 + 1, 127<<17 + 5000} {
		want, _ := referenceRoot(t, io.LimitReader(repeated(0xa5), size))
		tree, err := Commit(io.LimitReader(repeated(0xa5), size), size, 2, nil)
		if err != nil {
			t.Fatal(err)
		}
		if tree.Root() != want {
			t.Fatalf("%d bytes: root %x, reference %x", size, tree.Root(), want)
		}
	}
}

func ExampleCommit() {
	payload := bytes.Repeat([]byte{0xcc}, 1024)
	tree, err := Commit(bytes.NewReader(payload), int64(len(payload)), 0, nil)
	if err != nil {
		fmt.Println(err)
		return
	}
	fmt.Println(tree.Padded, tree.CID())
	// Output: 2048 baga6ea4seaqdlpnhgsndrgjeu4p46hahlsr4lybg6du4d56ooppdpxhcofxeuoi
}
