package bandwidth

import (
	"bytes"
	"errors"
	"testing"

	"golang.org/x/crypto/chacha20"
)

func BenchmarkKeystream(b *testing.B) {
	k := NewKeystream([]byte("seed"), Up, 0)
	buf := make([]byte, 256<<10)
	b.SetBytes(int64(len(buf)))
	for b.Loop() {
		k.Read(buf)
	}
	b.ReportMetric(float64(b.N)*float64(len(buf))/b.Elapsed().Seconds()/1e9, "GB/s")
}

func BenchmarkCheck(b *testing.B) {
	buf := make([]byte, 256<<10)
	k := NewKeystream([]byte("seed"), Up, 0)
	c := NewChecker([]byte("seed"), Up, 0)
	b.SetBytes(int64(len(buf)))
	for b.Loop() {
		b.StopTimer()
		k.Read(buf)
		b.StartTimer()
		if _, err := c.Write(buf); err != nil {
			b.Fatal(err)
		}
	}
	b.ReportMetric(float64(b.N)*float64(len(buf))/b.Elapsed().Seconds()/1e9, "GB/s")
}

// TestKeystreamMatchesXCrypto: the keystream is RFC 8439 ChaCha20, the
// same bytes golang.org/x/crypto/chacha20 gives, read in any sizes.
func TestKeystreamMatchesXCrypto(t *testing.T) {
	seed := []byte("round 9 seed")
	for _, d := range []Direction{Up, Down} {
		key, nonce := keystreamKey(seed, d, 3)
		ref, err := chacha20.NewUnauthenticatedCipher(key[:], nonce[:])
		if err != nil {
			t.Fatal(err)
		}
		ks := NewKeystream(seed, d, 3)
		for _, n := range []int{1, 63, 64, 65, 200, 4096, 100_000, 1 << 20, 7} {
			got, want := make([]byte, n), make([]byte, n)
			ks.Read(got)
			ref.XORKeyStream(want, want)
			if !bytes.Equal(got, want) {
				t.Fatalf("%s: read of %d bytes differs from x/crypto", d, n)
			}
		}
	}
}

// TestKeystreamsDiffer: each direction and attempt has its own stream.
func TestKeystreamsDiffer(t *testing.T) {
	seen := map[string]bool{}
	for _, s := range []string{"a", "b"} {
		for _, d := range []Direction{Up, Down} {
			for a := range uint32(2) {
				b := make([]byte, 32)
				NewKeystream([]byte(s), d, a).Read(b)
				if seen[string(b)] {
					t.Fatalf("seed %s %s attempt %d repeats a stream", s, d, a)
				}
				seen[string(b)] = true
			}
		}
	}
}

// TestCheckerFindsOffset: the checker passes the keystream in any write
// sizes and names the first wrong byte's offset.
func TestCheckerFindsOffset(t *testing.T) {
	seed := []byte("s")
	data := make([]byte, 300_000)
	NewKeystream(seed, Up, 0).Read(data)
	for _, bad := range []int{-1, 0, 1, 32<<10 - 1, 32 << 10, 123_457, len(data) - 1} {
		for _, step := range []int{1000, 32 << 10, 70_001, len(data)} {
			if step == 1000 && bad > 50_000 {
				continue
			}
			d := bytes.Clone(data)
			if bad >= 0 {
				d[bad] ^= 1
			}
			c := NewChecker(seed, Up, 0)
			var err error
			total := 0
			for off := 0; off < len(d) && err == nil; off += step {
				var n int
				n, err = c.Write(d[off:min(off+step, len(d))])
				total += n
			}
			var m *MismatchError
			switch {
			case bad < 0 && (err != nil || c.Checked() != int64(len(d))):
				t.Fatalf("step %d: honest stream: %v after %d", step, err, c.Checked())
			case bad >= 0 && (!errors.As(err, &m) || m.Offset != int64(bad) || total != bad):
				t.Fatalf("step %d: wrong byte at %d: %v, %d bytes written", step, bad, err, total)
			}
		}
	}
}
