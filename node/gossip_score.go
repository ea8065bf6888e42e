package node

import (
	"net"
	"time"

	pubsub "github.com/libp2p/go-libp2p-pubsub"
	"github.com/libp2p/go-libp2p/core/peer"
)

// Score parameters follow the gossipsub v1.1 spec's guidance for
// low-traffic topics: reward first deliveries, leave out mesh delivery
// rates (a quiet topic must not look like a lazy peer), and punish invalid
// messages hard, since every message is signed and checkable.

// defaultTopicScore is the score of a topic whose package sets none.
func defaultTopicScore() *pubsub.TopicScoreParams {
	return &pubsub.TopicScoreParams{
		SkipAtomicValidation: true,
		TopicWeight:          1,

		TimeInMeshWeight:  0.01,
		TimeInMeshQuantum: time.Second,
		TimeInMeshCap:     100,

		FirstMessageDeliveriesWeight: 1,
		FirstMessageDeliveriesDecay:  0.9,
		FirstMessageDeliveriesCap:    50,

		// P4 is squared: one invalid message costs 100, three cost 900,
		// enough to drop a peer below the gossip threshold.
		InvalidMessageDeliveriesWeight: -100,
		InvalidMessageDeliveriesDecay:  0.99,
	}
}

// bootstrapScore lifts the configured bootstrap peers above the PX
// threshold: when their mesh is full they prune with peer exchange, and
// that is how a new node finds mesh peers beyond them (gossipsub v1.1's
// bootstrapper design).
const bootstrapScore = 20

func peerScoreParams(trusted []*net.IPNet, bootstrap []peer.ID) *pubsub.PeerScoreParams {
	boot := make(map[peer.ID]bool, len(bootstrap))
	for _, p := range bootstrap {
		boot[p] = true
	}
	return &pubsub.PeerScoreParams{
		Topics:        make(map[string]*pubsub.TopicScoreParams),
		TopicScoreCap: 100,

		AppSpecificScore: func(p peer.ID) float64 {
			if boot[p] {
				return bootstrapScore
			}
			return 0
		},
		AppSpecificWeight: 1,

		IPColocationFactorWeight:    -10,
		IPColocationFactorThreshold: 10,
		IPColocationFactorWhitelist: trusted,

		BehaviourPenaltyWeight:    -1,
		BehaviourPenaltyThreshold: 6,
		BehaviourPenaltyDecay:     0.99,

		DecayInterval: time.Second,
		DecayToZero:   0.01,
		RetainScore:   10 * time.Minute,
	}
}

func peerScoreThresholds() *pubsub.PeerScoreThresholds {
	return &pubsub.PeerScoreThresholds{
		GossipThreshold:             -500,
		PublishThreshold:            -1000,
		GraylistThreshold:           -2500,
		AcceptPXThreshold:           10,
		OpportunisticGraftThreshold: 5,
	}
}
