package storage

import (
	"bytes"
	"context"
	"crypto/rand"
	"errors"
	"io"
	"math"
	mrand "math/rand/v2"
	"os"
	"path/filepath"
	"strings"
	"sync"
	"testing"
	"time"

	"github.com/ipfs/go-cid"
	"github.com/libp2p/go-libp2p/core/crypto"
	"github.com/libp2p/go-libp2p/core/host"
	"github.com/libp2p/go-libp2p/core/network"
	"github.com/libp2p/go-libp2p/core/protocol"
	mocknet "github.com/libp2p/go-libp2p/p2p/net/mock"
	ma "github.com/multiformats/go-multiaddr"
	"golang.org/x/sys/unix"

	"github.com/aropeer/aropeer/proofs"
	"github.com/aropeer/aropeer/wire"
)

// memPiece is a committed piece in memory, its data possibly damaged
// after the commitment.
type memPiece struct {
	tree *Tree
	data []byte
}

func (m *memPiece) Prove(piece cid.Cid, index uint64) (LeafProof, error) {
	if !piece.Equals(m.tree.CID()) {
		return LeafProof{}, errors.New("no such piece")
	}
	return m.tree.Prove(bytes.NewReader(m.data), index)
}

func (m *memPiece) ProveLeaves(piece cid.Cid, indices []uint64) ([]LeafProof, error) {
	return proveEach(indices, func(i uint64) (LeafProof, error) { return m.Prove(piece, i) })
}

// proveEach proves indices one by one with prove.
func proveEach(indices []uint64, prove func(uint64) (LeafProof, error)) ([]LeafProof, error) {
	out := make([]LeafProof, len(indices))
	for i, index := range indices {
		p, err := prove(index)
		if err != nil {
			return nil, err
		}
		out[i] = p
	}
	return out, nil
}

func newMemPiece(t testing.TB, size int, seed uint64) *memPiece {
	t.Helper()
	data := make([]byte, size)
	r := mrand.NewChaCha8([32]byte{byte(seed), byte(seed >> 8)})
	r.Read(data)
	tree, err := Commit(bytes.NewReader(data), int64(size), 0, nil)
	if err != nil {
		t.Fatal(err)
	}
	return &memPiece{tree: tree, data: data}
}

// protoNet is a keeper and an edge on an in-memory network; the edge
// answers storage challenges with answer.
type protoNet struct {
	keeper, edge host.Host
	mu           sync.Mutex
	challenge    proofs.Challenge
	answer       func(ctx context.Context, c proofs.Challenge, s network.Stream)
}

func newProtoNet(t testing.TB) *protoNet {
	t.Helper()
	mn := mocknet.New()
	t.Cleanup(func() { mn.Close() })
	pn := &protoNet{}
	add := func(i byte) host.Host {
		k, _, err := crypto.GenerateEd25519Key(rand.Reader)
		if err != nil {
			t.Fatal(err)
		}
		h, err := mn.AddPeer(k, ma.StringCast("/ip4/100.64.0."+string('0'+i)+"/tcp/4242"))
		if err != nil {
			t.Fatal(err)
		}
		return h
	}
	pn.keeper, pn.edge = add(1), add(2)
	pn.edge.SetStreamHandler(Protocol, func(s network.Stream) {
		pn.mu.Lock()
		c, answer := pn.challenge, pn.answer
		pn.mu.Unlock()
		answer(context.Background(), c, s)
	})
	if err := mn.LinkAll(); err != nil {
		t.Fatal(err)
	}
	if err := mn.ConnectAllButSelf(); err != nil {
		t.Fatal(err)
	}
	return pn
}

// challengeOf is the storage challenge of seed i on piece.
func (pn *protoNet) challengeOf(i int, piece *Tree) proofs.Challenge {
	return proofs.Challenge{
		Network: "devnet", Epoch: 1, Round: 31, Keeper: pn.keeper.ID(), Edge: pn.edge.ID(),
		Kind: proofs.KindStorage, Seed: bytes.Repeat([]byte{byte(i), byte(i >> 8), 0x5a, 0xa5}, 8),
		Piece: &proofs.Piece{CID: piece.CID(), Size: piece.Padded},
	}
}

// verify runs c through a Verifier against the edge's answer, within
// deadline.
func (pn *protoNet) verify(t testing.TB, v *Verifier, c proofs.Challenge, answer func(context.Context, proofs.Challenge, network.Stream), deadline time.Duration) proofs.Outcome {
	t.Helper()
	pn.mu.Lock()
	pn.challenge, pn.answer = c, answer
	pn.mu.Unlock()
	ctx, cancel := context.WithTimeout(context.Background(), deadline)
	defer cancel()
	open := func(ctx context.Context, p protocol.ID) (network.Stream, error) {
		return pn.keeper.NewStream(ctx, pn.edge.ID(), p)
	}
	out, err := v.Verify(ctx, c, open)
	if err != nil {
		t.Fatal(err)
	}
	return out
}

// TestHonestEdgePasses: an edge holding its piece passes every one of
// many challenges, each checking the network's 16 leaves.
func TestHonestEdgePasses(t *testing.T) {
	pn := newProtoNet(t)
	piece := newMemPiece(t, 300_000, 1)
	r := NewResponder(piece, DefaultLeaves, nil, nil)
	v := NewVerifier(DefaultLeaves)
	for i := range 50 {
		out := pn.verify(t, v, pn.challengeOf(i, piece.tree), r.Serve, 2*time.Second)
		if out.Result != proofs.Pass || out.Measurements["leaves"] != DefaultLeaves || len(out.Evidence) != 32 {
			t.Fatalf("challenge %d: %+v", i, out)
		}
	}
}

// damage overwrites n bytes of p's data from off, as a disk fault or a
// lazy edge would, after the commitment.
func damage(p *memPiece, off, n int) *memPiece {
	data := bytes.Clone(p.data)
	for i := off; i < off+n && i < len(data); i++ {
		data[i] ^= 0xff
	}
	return &memPiece{tree: p.tree, data: data}
}

// liar answers with proofs from its (damaged) data without checking them,
// as a cheating edge would.
func liar(p *memPiece) func(context.Context, proofs.Challenge, network.Stream) {
	return func(_ context.Context, c proofs.Challenge, s network.Stream) {
		var ans answer
		for _, i := range LeafIndices(c.Seed, c.Piece.Size, DefaultLeaves) {
			lp, err := p.Prove(c.Piece.CID, i)
			if err != nil {
				s.Reset()
				return
			}
			ans.Proofs = append(ans.Proofs, toAnswer(lp))
		}
		msg, _ := wire.Marshal(ans)
		wire.WriteFrame(s, msg, time.Now().Add(time.Second))
		s.Close()
	}
}

// TestCorruptionCaught: with a tenth of its piece damaged, an edge fails
// a challenge with probability 1-(1-f)^k (f the damaged share of leaves,
// k the leaves checked), so it is caught within the number of challenges
// that leaves less than a one-in-a-million chance of escaping; over many
// fixed seeds the detection rate is as the formula says. Both an edge
// that answers with its damaged data and one that checks its proofs
// first (and so names the leaf it cannot prove) fail, naming a leaf.
func TestCorruptionCaught(t *testing.T) {
	pn := newProtoNet(t)
	const size = 1 << 20 / 128 * 127 // a full 1 MiB padded piece
	piece := newMemPiece(t, size, 2)
	bad := damage(piece, size/2, size/10)
	leaves := float64(piece.tree.Padded / LeafSize)
	// Leaves holding damaged bytes: the damaged span of the payload, in
	// padded leaves (127 payload bytes fill 4 leaves).
	f := float64(size/10) * 128 / 127 / LeafSize / leaves
	p := 1 - math.Pow(1-f, DefaultLeaves)
	within := int(math.Ceil(math.Log(1e-6) / math.Log(1-p)))
	v := NewVerifier(DefaultLeaves)

	const trials = 200
	caught, first := 0, -1
	var damaged []cid.Cid
	checker := NewResponder(bad, DefaultLeaves, func(id cid.Cid, err error) { damaged = append(damaged, id) }, nil)
	for i := range trials {
		c := pn.challengeOf(i, piece.tree)
		out := pn.verify(t, v, c, liar(bad), 2*time.Second)
		checked := pn.verify(t, v, c, checker.Serve, 2*time.Second)
		if (out.Result == proofs.Fail) != (checked.Result == proofs.Fail) {
			t.Fatalf("challenge %d: the liar %s, the checking edge %s", i, out.Result, checked.Result)
		}
		if out.Result != proofs.Fail {
			if out.Result != proofs.Pass {
				t.Fatalf("challenge %d: %+v", i, out)
			}
			continue
		}
		if !strings.Contains(out.Reason, "leaf ") || !strings.Contains(checked.Reason, "could not prove leaf ") {
			t.Fatalf("challenge %d: reasons %q and %q do not name the leaf", i, out.Reason, checked.Reason)
		}
		caught++
		if first < 0 {
			first = i
		}
	}
	if first < 0 || first >= within {
		t.Errorf("first caught at challenge %d, want within %d (detection %.3f per challenge)", first, within, p)
	}
	// Within four binomial standard deviations of the formula.
	sd := math.Sqrt(trials * p * (1 - p))
	if got := float64(caught); math.Abs(got-trials*p) > 4*sd {
		t.Errorf("caught %d of %d, the formula expects %.0f ± %.0f", caught, trials, trials*p, 4*sd)
	}
	if len(damaged) != caught {
		t.Errorf("the checking edge learned of damage %d times in %d failed challenges", len(damaged), caught)
	}
	t.Logf("damaged share %.3f of leaves: detection %.3f per challenge, %d of %d caught, first at %d (bound %d)", f, p, caught, trials, first, within)
}

// TestSilentEdgeTimesOut: no answer before the deadline is a timeout.
func TestSilentEdgeTimesOut(t *testing.T) {
	pn := newProtoNet(t)
	piece := newMemPiece(t, 4096, 3)
	silent := func(ctx context.Context, _ proofs.Challenge, s network.Stream) {
		time.Sleep(300 * time.Millisecond)
		s.Reset()
	}
	out := pn.verify(t, NewVerifier(0), pn.challengeOf(0, piece.tree), silent, 100*time.Millisecond)
	if out.Result != proofs.Timeout {
		t.Fatalf("%+v, want a timeout", out)
	}
	// A stream reset before the deadline shows no cheating either: it is
	// retried like silence, not failed.
	reset := func(_ context.Context, _ proofs.Challenge, s network.Stream) { s.Reset() }
	out = pn.verify(t, NewVerifier(0), pn.challengeOf(1, piece.tree), reset, 5*time.Second)
	if out.Result != proofs.Timeout || !strings.Contains(out.Reason, "stream failed") {
		t.Fatalf("reset at once: %+v, want a timeout", out)
	}
}

// TestWrongAnswersFail: proofs of other leaves, too few proofs, a
// malformed frame and a proof for another piece each fail with a reason.
func TestWrongAnswersFail(t *testing.T) {
	pn := newProtoNet(t)
	piece := newMemPiece(t, 8192, 4)
	other := newMemPiece(t, 8192, 5)
	c := pn.challengeOf(7, piece.tree)
	send := func(ans answer) func(context.Context, proofs.Challenge, network.Stream) {
		return func(_ context.Context, _ proofs.Challenge, s network.Stream) {
			msg, _ := wire.Marshal(ans)
			wire.WriteFrame(s, msg, time.Now().Add(time.Second))
			s.Close()
		}
	}
	honest := func(p *memPiece, shift uint64) answer {
		var ans answer
		for _, i := range LeafIndices(c.Seed, c.Piece.Size, DefaultLeaves) {
			lp, err := p.tree.Prove(bytes.NewReader(p.data), (i+shift)%(p.tree.Padded/LeafSize))
			if err != nil {
				t.Fatal(err)
			}
			ans.Proofs = append(ans.Proofs, toAnswer(lp))
		}
		return ans
	}
	shifted := honest(piece, 1)
	few := honest(piece, 0)
	few.Proofs = few.Proofs[:3]
	badPath := honest(piece, 0)
	badPath.Proofs[5].Path[2][0] ^= 1
	for name, tc := range map[string]struct {
		answer func(context.Context, proofs.Challenge, network.Stream)
		reason string
	}{
		"other leaves":       {send(shifted), "asks for leaf"},
		"too few proofs":     {send(few), "3 proofs for 16 leaves"},
		"a flipped path bit": {send(badPath), "does not match piece"},
		"another piece":      {send(honest(other, 0)), "does not match piece"},
		"garbage": {func(_ context.Context, _ proofs.Challenge, s network.Stream) {
			wire.WriteFrame(s, []byte{0xff, 0x00}, time.Now().Add(time.Second))
			s.Close()
		}, "malformed answer"},
	} {
		out := pn.verify(t, NewVerifier(0), c, tc.answer, 2*time.Second)
		if out.Result != proofs.Fail || !strings.Contains(out.Reason, tc.reason) {
			t.Errorf("%s: %+v, want a fail saying %q", name, out, tc.reason)
		}
	}
}

// TestLeafIndices: the same seed gives the same leaves, within the
// piece, and seeds spread them.
func TestLeafIndices(t *testing.T) {
	seed := bytes.Repeat([]byte{7}, 32)
	a, b := LeafIndices(seed, 1<<20, 16), LeafIndices(seed, 1<<20, 16)
	if len(a) != 16 || !slicesEqual(a, b) {
		t.Fatalf("%v, %v", a, b)
	}
	hist := make([]int, 4)
	for i := range 1000 {
		for _, l := range LeafIndices([]byte{byte(i), byte(i >> 8)}, 4*LeafSize*256, 4) {
			if l >= 4*256 {
				t.Fatalf("leaf %d outside a piece of 1024 leaves", l)
			}
			hist[l/256]++
		}
	}
	for q, n := range hist {
		if n < 850 || n > 1150 {
			t.Errorf("quarter %d of the piece drew %d of 4000 leaves", q, n)
		}
	}
}

func slicesEqual(a, b []uint64) bool {
	if len(a) != len(b) {
		return false
	}
	for i := range a {
		if a[i] != b[i] {
			return false
		}
	}
	return true
}

// filePiece proves from a piece's data file.
type filePiece struct {
	tree *Tree
	f    *os.File
}

func (p filePiece) ProveLeaves(_ cid.Cid, indices []uint64) ([]LeafProof, error) {
	return proveEach(indices, func(i uint64) (LeafProof, error) { return p.tree.Prove(p.f, i) })
}

// BenchmarkAnswerFromDisk measures what a storage challenge costs an
// honest edge: the 16 proofs of a 1 GiB piece read from its data file,
// each checked, the answer encoded; and the keeper's check of it. It
// reports the time per answer and the deadline's margin over it (the
// network's 2 s divided by the time), with the data file in the page
// cache ("warm") and evicted before each answer ("cold", as far as the
// kernel lets a file be evicted).
func BenchmarkAnswerFromDisk(b *testing.B) {
	const payload = 127 << 23 // 1 GiB padded
	path := filepath.Join(b.TempDir(), "piece")
	f, err := os.Create(path)
	if err != nil {
		b.Fatal(err)
	}
	defer f.Close()
	src := mrand.NewChaCha8([32]byte{9})
	buf := make([]byte, 1<<20)
	for written := 0; written < payload; written += len(buf) {
		src.Read(buf)
		if _, err := f.Write(buf[:min(len(buf), payload-written)]); err != nil {
			b.Fatal(err)
		}
	}
	if _, err := f.Seek(0, io.SeekStart); err != nil {
		b.Fatal(err)
	}
	tree, err := Commit(f, payload, 0, nil)
	if err != nil {
		b.Fatal(err)
	}
	if err := f.Sync(); err != nil {
		b.Fatal(err)
	}
	r := NewResponder(filePiece{tree, f}, DefaultLeaves, nil, nil)
	v := NewVerifier(DefaultLeaves)
	const deadline = 2 * time.Second
	for _, cold := range []bool{false, true} {
		name := "warm"
		if cold {
			name = "cold"
		}
		b.Run(name, func(b *testing.B) {
			i := 0
			var spent time.Duration
			for b.Loop() {
				if cold {
					b.StopTimer()
					unix.Fadvise(int(f.Fd()), 0, 0, unix.FADV_DONTNEED)
					b.StartTimer()
				}
				start := time.Now()
				c := proofs.Challenge{Kind: proofs.KindStorage, Seed: []byte{byte(i), byte(i >> 8), 1, 2}, Piece: &proofs.Piece{CID: tree.CID(), Size: tree.Padded}}
				i++
				msg, err := wire.Marshal(r.prove(c))
				if err != nil {
					b.Fatal(err)
				}
				if out := v.judge(c, msg); out.Result != proofs.Pass {
					b.Fatalf("%+v", out)
				}
				spent += time.Since(start)
			}
			per := spent / time.Duration(b.N)
			b.ReportMetric(float64(per.Microseconds())/1000, "ms/answer")
			b.ReportMetric(float64(deadline)/float64(per), "deadline-margin")
		})
	}
}

// FuzzAnswer feeds the keeper's judge what an edge may send: it never
// panics, and passes only answers whose every proof holds.
func FuzzAnswer(f *testing.F) {
	piece := newMemPiece(f, 5000, 7)
	c := proofs.Challenge{Kind: proofs.KindStorage, Seed: []byte{1, 2, 3}, Piece: &proofs.Piece{CID: piece.tree.CID(), Size: piece.tree.Padded}}
	good, err := wire.Marshal(NewResponder(piece, 4, nil, nil).prove(c))
	if err != nil {
		f.Fatal(err)
	}
	f.Add(good)
	f.Add(good[:len(good)/2])
	f.Add([]byte{0xa1, 0x65, 'e', 'r', 'r', 'o', 'r', 0x61, 'x'})
	v := NewVerifier(4)
	f.Fuzz(func(t *testing.T, data []byte) {
		out := v.judge(c, data)
		if out.Result == proofs.Pass && !bytes.Equal(data, good) {
			// Another encoding of the same proofs cannot decode: the
			// decoder is strict and canonical.
			t.Fatalf("passed an answer other than the honest one: %x", data)
		}
		if out.Result != proofs.Pass && out.Reason == "" {
			t.Fatalf("a %s without a reason", out.Result)
		}
	})
}
