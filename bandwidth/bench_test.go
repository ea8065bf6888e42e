package bandwidth

import (
	"context"
	"io"
	"syscall"
	"testing"
	"time"

	"github.com/libp2p/go-libp2p"
	"github.com/libp2p/go-libp2p/core/host"
	"github.com/libp2p/go-libp2p/core/network"
	"github.com/libp2p/go-libp2p/core/peer"
	"github.com/libp2p/go-libp2p/core/protocol"

	"github.com/aropeer/aropeer/proofs"
)

// loopbackHost is a libp2p host on TCP at 127.0.0.1 with the default
// security and muxer (the benchmark stands in for node, which alone
// builds hosts in the daemon).
func loopbackHost(b *testing.B) host.Host {
	b.Helper()
	h, err := libp2p.New(libp2p.ListenAddrStrings("/ip4/127.0.0.1/tcp/0"), libp2p.DisableRelay())
	if err != nil {
		b.Fatal(err)
	}
	b.Cleanup(func() { h.Close() })
	return h
}

// BenchmarkProbeLoopback runs a probe of n bytes each way between two
// libp2p hosts over loopback TCP, and in the same run copies n bytes
// each way over a bare stream of the same hosts; it reports both rates
// (MB/s of both directions' bytes over the wall time) and their ratio,
// which is what the keystream and its checks cost a probe (goal >= 0.8).
// The bare copy writes and reads in the probe's chunks. Both hosts share
// the process's cores, so it also reports the cores each used and the
// ratio of their CPU time per byte: on a shared machine, where the
// process gets about one core, that ratio is what the wall ratio shows.
func BenchmarkProbeLoopback(b *testing.B) {
	const n = 128 << 20
	keeper, edge := loopbackHost(b), loopbackHost(b)
	if err := keeper.Connect(b.Context(), peer.AddrInfo{ID: edge.ID(), Addrs: edge.Addrs()}); err != nil {
		b.Fatal(err)
	}
	const bare protocol.ID = "/aro/bench/copy"
	edge.SetStreamHandler(bare, func(s network.Stream) {
		defer s.Close()
		if err := drain(s, n); err != nil {
			s.Reset()
			return
		}
		fill(s, n)
	})
	r := NewResponder(edge.Peerstore().PrivKey(edge.ID()), WithMaxProbeBytes(n))
	c := proofs.Challenge{Network: "bench", Epoch: 1, Keeper: keeper.ID(), Edge: edge.ID(), Kind: proofs.KindBandwidth, Seed: []byte("bench seed")}
	edge.SetStreamHandler(Protocol, func(s network.Stream) { r.Serve(context.Background(), c, s) })
	// A claim whose probe is n bytes each way in 1 s; loopback runs
	// faster, so the probe lasts a fraction of that: meter it finely.
	claim := uint64(n * 8 / 1_000_000)
	v := NewVerifier(claims(claim, claim), WithProbeDuration(time.Second), WithMaxProbeBytes(n), WithInterval(2*time.Millisecond))
	open := func(ctx context.Context, p protocol.ID) (network.Stream, error) {
		return keeper.NewStream(ctx, edge.ID(), p)
	}

	var bareTime, probeTime, bareCPU, probeCPU time.Duration
	for b.Loop() {
		start, cpu := time.Now(), cpuTime()
		s, err := open(b.Context(), bare)
		if err != nil {
			b.Fatal(err)
		}
		if err := fill(s, n); err != nil {
			b.Fatal(err)
		}
		if err := drain(s, n); err != nil {
			b.Fatal(err)
		}
		s.Close()
		bareTime += time.Since(start)
		bareCPU += cpuTime() - cpu

		start, cpu = time.Now(), cpuTime()
		ctx, cancel := context.WithTimeout(b.Context(), 30*time.Second)
		out, err := v.Verify(ctx, c, open)
		cancel()
		if err != nil || out.Result != proofs.Pass {
			b.Fatalf("probe: %+v, %v", out, err)
		}
		probeTime += time.Since(start)
		probeCPU += cpuTime() - cpu
		c.Round++
	}
	mb := func(d time.Duration) float64 { return float64(b.N) * 2 * n / d.Seconds() / 1e6 }
	b.ReportMetric(mb(bareTime), "bare-MB/s")
	b.ReportMetric(mb(probeTime), "probe-MB/s")
	b.ReportMetric(bareTime.Seconds()/probeTime.Seconds(), "probe/bare")
	b.ReportMetric(bareCPU.Seconds()/bareTime.Seconds(), "bare-cores")
	b.ReportMetric(probeCPU.Seconds()/probeTime.Seconds(), "probe-cores")
	b.ReportMetric(bareCPU.Seconds()/probeCPU.Seconds(), "cpu-probe/bare")
}

// fill writes n zero bytes to s in the probe's chunks: the bare copy
// moves its bytes in the same writes and reads as the probe.
func fill(s network.Stream, n int64) error {
	buf := make([]byte, chunkSize)
	for n > 0 {
		k, err := s.Write(buf[:min(int64(len(buf)), n)])
		if err != nil {
			return err
		}
		n -= int64(k)
	}
	return nil
}

// drain reads n bytes from s in the probe's chunks.
func drain(s network.Stream, n int64) error {
	buf := make([]byte, chunkSize)
	for n > 0 {
		k, err := s.Read(buf[:min(int64(len(buf)), n)])
		n -= int64(k)
		if err != nil && (n > 0 || err != io.EOF) {
			return err
		}
	}
	return nil
}

// cpuTime is the CPU time the process has used, user and system.
func cpuTime() time.Duration {
	var ru syscall.Rusage
	if err := syscall.Getrusage(syscall.RUSAGE_SELF, &ru); err != nil {
		return 0
	}
	return time.Duration(ru.Utime.Nano() + ru.Stime.Nano())
}
