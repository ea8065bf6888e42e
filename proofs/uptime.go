package proofs

import (
	"github.com/ipfs/go-cid"
	"github.com/libp2p/go-libp2p/core/peer"
)

// Uptime is an edge's share of passed liveness challenges in an epoch,
// each challenge counted once by its final verdict: a pass, or a fail
// after containment ran out. Challenges still in containment are not
// counted yet. ok is false when no challenge of the epoch has a verdict.
func (s *ReceiptStore) Uptime(edge peer.ID, epoch uint64) (uptime float64, ok bool, err error) {
	final := make(map[cid.Cid]Result)
	f := Filter{Epoch: &epoch, Edge: edge, Kind: KindLiveness}
	err = s.List(f, func(_ cid.Cid, r Receipt) error {
		if r.Result == Timeout {
			return nil
		}
		// A challenge names one keeper, and all its attempts share its
		// CID: a pass on any attempt makes it a pass.
		if prev, seen := final[r.Challenge]; !seen || prev != Pass {
			final[r.Challenge] = r.Result
		}
		return nil
	})
	if err != nil || len(final) == 0 {
		return 0, false, err
	}
	passed := 0
	for _, res := range final {
		if res == Pass {
			passed++
		}
	}
	return float64(passed) / float64(len(final)), true, nil
}
