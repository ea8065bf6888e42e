package config

import (
	"errors"
	"fmt"
	"strings"
	"time"

	"github.com/libp2p/go-libp2p/core/protocol"
)

// ErrUnknownNetwork is returned by LookupNetwork for a name it does not know.
var ErrUnknownNetwork = errors.New("config: unknown network")

// Gossip topic kinds; Network.Topic turns one into a topic name.
const (
	TopicBeacon     = "beacon"
	TopicChallenges = "challenges"
	TopicReceipts   = "receipts"
	TopicReports    = "reports"
	TopicBatches    = "batches"
	TopicManifests  = "manifests"
)

// Network holds the parameters every peer of one network must agree on.
// It is a plain value: later issues add the beacon's chain info, challenge
// probabilities and deadlines per resource, committee size, reward and
// penalty rates, the settlement backend and whether insecure-dev
// attestations are allowed.
type Network struct {
	// Name identifies the network in topics, signatures and batches.
	Name string
	// ProtocolPrefix prefixes the DHT's protocols and the gossip topics,
	// keeping them apart from the public IPFS network.
	ProtocolPrefix protocol.ID
	// RoundPeriod is the beacon's period.
	RoundPeriod time.Duration
	// EpochRounds is the number of rounds in an epoch.
	EpochRounds uint64
	// ChallengeDeadline bounds a challenge from issue to verified answer.
	ChallengeDeadline time.Duration
}

// Topic returns the gossip topic of kind on n: "/aro/devnet/receipts".
func (n Network) Topic(kind string) string {
	return string(n.ProtocolPrefix) + "/" + n.Name + "/" + kind
}

// NetworkNames lists the built-in networks.
func NetworkNames() []string { return []string{"devnet"} }

// LookupNetwork returns the built-in network called name.
func LookupNetwork(name string) (Network, error) {
	switch name {
	case "devnet":
		// One machine, no outside service: short rounds and epochs so that
		// a whole epoch passes in half a minute.
		return Network{
			Name:              "devnet",
			ProtocolPrefix:    "/aro",
			RoundPeriod:       time.Second,
			EpochRounds:       30,
			ChallengeDeadline: 2 * time.Second,
		}, nil
	}
	return Network{}, &explained{ErrUnknownNetwork, fmt.Sprintf(
		"config: unknown network %q: want one of %s", name, strings.Join(NetworkNames(), ", "))}
}
