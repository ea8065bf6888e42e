package settle

import (
	"fmt"
	"testing"

	"github.com/libp2p/go-libp2p/core/peer"
)

// TestReportRound: an edge's two filings of its report both fall in the
// epoch, however short, and a thousand edges' first filings spread over
// the epoch's first reportRounds rather than bunch in one.
func TestReportRound(t *testing.T) {
	const edges = 1000
	for rounds := uint64(1); rounds <= 40; rounds++ {
		counts := make(map[uint64]int)
		for i := range edges {
			first := reportRound(peer.ID(fmt.Sprint("edge ", i)), rounds)
			if first >= rounds || (rounds >= 3 && first+2 >= rounds) {
				t.Fatalf("%d-round epochs: edge %d files in round %d and %d", rounds, i, first, first+2)
			}
			counts[first]++
		}
		if rounds >= 6 {
			for r := range uint64(reportRounds) {
				// 250 a round on average; 150 is far below.
				if counts[r] < 150 {
					t.Errorf("%d-round epochs: %d of %d edges file first in round %d: %v", rounds, counts[r], edges, r, counts)
				}
			}
		}
	}
}
