package config

import (
	"errors"
	"fmt"
	"maps"
	"strconv"
	"strings"
	"time"

	"github.com/libp2p/go-libp2p/core/protocol"

	"github.com/aropeer/aropeer/beacon"
	"github.com/aropeer/aropeer/challenge"
	"github.com/aropeer/aropeer/compute"
	"github.com/aropeer/aropeer/proofs"
)

// ErrUnknownNetwork is returned by LookupNetwork for a name it does not know.
var ErrUnknownNetwork = errors.New("config: unknown network")

// Gossip topic kinds; Network.Topic turns one into a topic name.
// Beacon rounds travel on drand's own topic (beacon.TopicName), so that
// peers can listen to drand's gossip relays too.
const (
	TopicChallenges = "challenges"
	TopicReceipts   = "receipts"
	TopicReports    = "reports"
	TopicBatches    = "batches"
	TopicManifests  = "manifests"
)

// Network holds the parameters every peer of one network must agree on.
// It is a plain value: later issues add challenge probabilities and
// deadlines per resource, committee size, reward and penalty rates, the
// settlement backend and whether insecure-dev attestations are allowed.
type Network struct {
	// Name identifies the network in topics, signatures and batches.
	Name string
	// ProtocolPrefix prefixes the DHT's protocols and the gossip topics,
	// keeping them apart from the public IPFS network.
	ProtocolPrefix protocol.ID
	// Beacon is the drand chain whose rounds time and seed the network,
	// pinned by its hash: no beacon of another chain is ever accepted.
	Beacon beacon.Info
	// BeaconRelays are drand HTTP relays of Beacon's chain, the default of
	// a node's beacon.relays.
	BeaconRelays []string
	// LocalBeacon returns the signer of a devnet's own beacon, whose Info
	// is Beacon; nil on networks that follow a real drand chain.
	LocalBeacon func() *beacon.Signer
	// CommitteeSize is how many keepers challenge each edge in an epoch.
	CommitteeSize int
	// Probability is, per kind, the chance that a committee keeper
	// challenges an edge in a round.
	Probability map[proofs.Kind]float64
	// Deadline is, per kind, how long an edge has to answer.
	Deadline map[proofs.Kind]time.Duration
	// Retries is how many times a timed-out challenge is repeated, one
	// round apart, before it fails.
	Retries uint32
	// Window is how many rounds after its round a challenge (with its
	// retries) is still accepted.
	Window uint64
	// Keepers is the genesis list of keepers and stakes; a node's config
	// may give it for a network that has none built in (a devnet).
	Keepers []challenge.Keeper
	// EpochRounds is the number of rounds in an epoch.
	EpochRounds uint64
	// ChallengeDeadline bounds a challenge from issue to verified answer.
	ChallengeDeadline time.Duration
	// StorageLeaves is how many leaves a storage challenge checks.
	StorageLeaves int
	// ProbeDuration is how long a bandwidth probe streams each way, and
	// ProbeMaxBytes caps its bytes each way whatever the claim.
	ProbeDuration time.Duration
	ProbeMaxBytes uint64
	// ProbeRounds spaces an edge's bandwidth probes: at most one starts
	// in any ProbeRounds rounds (challenge.Params.ProbeRounds), enough
	// rounds for a probe's deadline.
	ProbeRounds uint64
	// Compute sizes compute spot-checks from an edge's claim and sets
	// their deadlines.
	Compute compute.Params

	// Rates price verified work for the epoch batches.
	Rates proofs.Rates
	// KeeperReward is a keeper's reward per receipt in a batch.
	KeeperReward uint64
	// BatchGrace is how many rounds after an epoch ends its batch is
	// built: at least Window plus the round of a last retry, so that the
	// epoch's last receipts are in.
	BatchGrace uint64
	// LeaderTimeout is how many rounds a batch leader has before the next
	// keeper of the draw proposes instead.
	LeaderTimeout uint64
	// DisputeEpochs is how many epochs after its own a receipt may be
	// disputed; SlashPPM the share of stake a proven fraud costs.
	DisputeEpochs uint64
	SlashPPM      uint64
}

// RoundPeriod is the time between the beacon's rounds.
func (n Network) RoundPeriod() time.Duration { return n.Beacon.Period }

// Topic returns the gossip topic of kind on n: "/aro/devnet/receipts".
func (n Network) Topic(kind string) string {
	return string(n.ProtocolPrefix) + "/" + n.Name + "/" + kind
}

// NetworkParams returns the parameters of the network c joins: the
// built-in network, with a devnet's overrides from c.Devnet applied.
func (c Config) NetworkParams() (Network, error) {
	n, err := LookupNetwork(c.Network)
	if err != nil {
		return Network{}, err
	}
	if len(c.Devnet.Probability) == 0 {
		return n, nil
	}
	if n.LocalBeacon == nil {
		return Network{}, fmt.Errorf("config: devnet.probability: network %s is not a devnet; its parameters are fixed", n.Name)
	}
	n.Probability = maps.Clone(n.Probability)
	for _, s := range c.Devnet.Probability {
		kind, p, err := parseProbability(s)
		if err != nil {
			return Network{}, fmt.Errorf("config: devnet.probability %q: %w", s, err)
		}
		n.Probability[kind] = p
	}
	return n, nil
}

// parseProbability reads kind=p, p between 0 and 1.
func parseProbability(s string) (proofs.Kind, float64, error) {
	name, value, ok := strings.Cut(s, "=")
	if !ok {
		return "", 0, errors.New("want kind=p, like bandwidth=0.5")
	}
	kind, err := proofs.ParseKind(strings.TrimSpace(name))
	if err != nil {
		return "", 0, err
	}
	p, err := strconv.ParseFloat(strings.TrimSpace(value), 64)
	if err != nil || !(p >= 0 && p <= 1) {
		return "", 0, fmt.Errorf("probability %q: want a number from 0 to 1", value)
	}
	return kind, p, nil
}

// NetworkNames lists the built-in networks.
func NetworkNames() []string { return []string{"devnet"} }

// LookupNetwork returns the built-in network called name.
func LookupNetwork(name string) (Network, error) {
	switch name {
	case "devnet":
		// One machine, no outside service: a local beacon with 1-second
		// rounds and short epochs, so that an epoch passes in half a minute.
		return Network{
			Name:           "devnet",
			ProtocolPrefix: "/aro",
			Beacon:         beacon.DevnetSigner().Info(),
			LocalBeacon:    beacon.DevnetSigner,
			EpochRounds:    30,
			CommitteeSize:  3,
			Probability:    map[proofs.Kind]float64{proofs.KindLiveness: 0.1, proofs.KindStorage: 0.1, proofs.KindBandwidth: 0.02, proofs.KindCompute: 0.05},
			// A bandwidth probe streams 2 s each way, with a second for
			// stalls and one for the report.
			// A compute check's budget is at most Target·Slack + Overhead
			// (1.1 s); the rest is for the round trips and the rows.
			Deadline:      map[proofs.Kind]time.Duration{proofs.KindLiveness: 2 * time.Second, proofs.KindStorage: 2 * time.Second, proofs.KindBandwidth: 6 * time.Second, proofs.KindCompute: 5 * time.Second},
			Compute:       compute.DefaultParams(),
			StorageLeaves: 16,
			ProbeDuration: 2 * time.Second,
			// One machine runs every node of a devnet: 64 MiB each way
			// keeps a probe of a fast claim from starving the others.
			ProbeMaxBytes: 64 << 20,
			// A probe starts half a round into its round and has 6 s.
			ProbeRounds:       7,
			Retries:           3,
			Window:            8,
			ChallengeDeadline: 2 * time.Second,
			// A pass earns 10, a fail costs 30: an edge failing more than
			// a quarter of its challenges loses money.
			Rates: proofs.Rates{
				RewardPerPass:  map[proofs.Kind]uint64{proofs.KindLiveness: 10, proofs.KindStorage: 20, proofs.KindBandwidth: 20, proofs.KindCompute: 40},
				PenaltyPerFail: map[proofs.Kind]uint64{proofs.KindLiveness: 30, proofs.KindStorage: 60, proofs.KindBandwidth: 60, proofs.KindCompute: 120},
				MinShare:       800_000,
				// Declaring a lost piece costs a third of failing one
				// challenge on it.
				PenaltyPerFault: 20,
			},
			KeeperReward: 1,
			// The last retry of an epoch's last round starts up to Window
			// rounds after it and may take a bandwidth probe's 6 s; then
			// its receipt travels.
			BatchGrace:    16,
			LeaderTimeout: 5,
			DisputeEpochs: 4,
			SlashPPM:      500_000,
		}, nil
	}
	return Network{}, &explained{ErrUnknownNetwork, fmt.Sprintf(
		"config: unknown network %q: want one of %s", name, strings.Join(NetworkNames(), ", "))}
}
