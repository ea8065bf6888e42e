package beacon

import (
	"crypto/sha256"
	"runtime"
	"testing"
	"time"

	"github.com/drand/drand/v2/common"
	"github.com/drand/drand/v2/crypto"
	"github.com/drand/kyber"
	bls "github.com/drand/kyber-bls12381"
)

// The goal: at least 1,000 quicknet verifications per second on
// 2 cores. Run with
//
//	go test ./beacon/ -run '^$' -bench . -cpu 1,2
//
// BenchmarkVerify is one core (b.Loop); BenchmarkVerifyParallel spreads
// over GOMAXPROCS (the -cpu value). Both report verifs/s and how many
// pairing-product baselines, measured in the same run, one verification
// costs.

func benchGolden(b *testing.B, name string) (*Verifier, Beacon) {
	b.Helper()
	files := map[string][2]string{
		"quicknet": {"quicknet_info.json", "quicknet_1000.json"},
		"default":  {"default_info.json", "default_2634945.json"},
	}[name]
	v := goldenVerifier(b, files[0])
	bc := readGoldenBeacon(b, files[1])
	if err := v.Verify(bc); err != nil {
		b.Fatal(err)
	}
	return v, bc
}

// pairingBaseline times the pairing product a BLS verification checks,
// e(H(m), pk) · e(-sig, g) == 1 on quicknet's G1 signature, outside the
// benchmark timer, and returns its cost per check.
func pairingBaseline(b *testing.B) time.Duration {
	b.Helper()
	suite := bls.NewBLS12381Suite()
	v, bc := benchGolden(b, "quicknet")
	sig := suite.G1().Point()
	if err := sig.UnmarshalBinary(bc.Signature); err != nil {
		b.Fatal(err)
	}
	hm := suite.G1().Point().(kyber.HashablePoint).Hash(v.scheme.DigestBeacon(&common.Beacon{Round: bc.Round}))
	base := suite.G2().Point().Base()
	const n = 50
	start := time.Now()
	for range n {
		if !suite.ValidatePairing(hm, v.public, sig, base) {
			b.Fatal("baseline pairing product does not check")
		}
	}
	return time.Since(start) / n
}

func BenchmarkVerify(b *testing.B) {
	for _, name := range []string{"quicknet", "default"} {
		b.Run(name, func(b *testing.B) {
			v, bc := benchGolden(b, name)
			pairing := pairingBaseline(b)
			for b.Loop() {
				if err := v.Verify(bc); err != nil {
					b.Fatal(err)
				}
			}
			per := b.Elapsed() / time.Duration(b.N)
			b.ReportMetric(float64(b.N)/b.Elapsed().Seconds(), "verifs/s")
			b.ReportMetric(float64(pairing.Nanoseconds()), "pairing-ns")
			b.ReportMetric(float64(per)/float64(pairing), "x-pairing")
		})
	}
}

func BenchmarkVerifyParallel(b *testing.B) {
	for _, name := range []string{"quicknet", "default"} {
		b.Run(name, func(b *testing.B) {
			v, bc := benchGolden(b, name)
			pairing := pairingBaseline(b)
			b.ResetTimer()
			b.RunParallel(func(pb *testing.PB) {
				for pb.Next() {
					if err := v.Verify(bc); err != nil {
						b.Error(err)
						return
					}
				}
			})
			// Wall-clock throughput over all goroutines, and the CPU time
			// of one verification (wall time x procs, which assumes the
			// procs had their cores to themselves) against the baseline.
			procs := runtime.GOMAXPROCS(0)
			b.ReportMetric(float64(b.N)/b.Elapsed().Seconds(), "verifs/s")
			b.ReportMetric(float64(b.Elapsed())*float64(procs)/float64(b.N)/float64(pairing), "x-pairing")
		})
	}
}

// BenchmarkVerifyParts splits a quicknet verification into its costs, to
// show where a faster library would have to win.
func BenchmarkVerifyParts(b *testing.B) {
	v, bc := benchGolden(b, "quicknet")
	suite := bls.NewBLS12381Suite()
	msg := v.scheme.DigestBeacon(&common.Beacon{Round: bc.Round})
	b.Run("sha256-48B", func(b *testing.B) {
		for b.Loop() {
			sha256.Sum256(bc.Signature)
		}
	})
	b.Run("decode-sig-G1", func(b *testing.B) {
		for b.Loop() {
			if err := suite.G1().Point().UnmarshalBinary(bc.Signature); err != nil {
				b.Fatal(err)
			}
		}
	})
	b.Run("hash-to-G1", func(b *testing.B) {
		for b.Loop() {
			suite.G1().Point().(kyber.HashablePoint).Hash(msg)
		}
	})
	b.Run("pairing-product", func(b *testing.B) {
		sig := suite.G1().Point()
		if err := sig.UnmarshalBinary(bc.Signature); err != nil {
			b.Fatal(err)
		}
		hm := suite.G1().Point().(kyber.HashablePoint).Hash(msg)
		base := suite.G2().Point().Base()
		for b.Loop() {
			if !suite.ValidatePairing(hm, v.public, sig, base) {
				b.Fatal("pairing product does not check")
			}
		}
	})
	b.Run("drand-VerifyBeacon", func(b *testing.B) {
		sch := crypto.NewPedersenBLSUnchainedG1()
		db := &common.Beacon{Round: bc.Round, Signature: bc.Signature}
		for b.Loop() {
			if err := sch.VerifyBeacon(db, v.public); err != nil {
				b.Fatal(err)
			}
		}
	})
}

func BenchmarkSign(b *testing.B) {
	s := DevnetSigner()
	var round uint64
	for b.Loop() {
		round++
		if _, err := s.Sign(round); err != nil {
			b.Fatal(err)
		}
	}
}

func BenchmarkSeed(b *testing.B) {
	bc := readGoldenBeacon(b, "quicknet_1000.json")
	edge, keeper := []byte("12D3KooWEdgeEdgeEdgeEdgeEdgeEdgeEdgeEdgeEdgeEdge"), []byte("12D3KooWKeeperKeeperKeeperKeeperKeeperKeeperKe")
	for b.Loop() {
		Seed(bc, "aro/committee", edge, keeper)
	}
}
