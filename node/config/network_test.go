package config_test

import (
	"errors"
	"maps"
	"testing"
	"time"

	"github.com/aropeer/aropeer/node/config"
	"github.com/aropeer/aropeer/proofs"
)

func TestLookupNetwork(t *testing.T) {
	n, err := config.LookupNetwork("devnet")
	if err != nil {
		t.Fatal(err)
	}
	if n.Name != "devnet" || n.ProtocolPrefix != "/aro" || n.RoundPeriod() != time.Second ||
		n.EpochRounds != 30 || n.ChallengeDeadline != 2*time.Second {
		t.Errorf("devnet = %+v", n)
	}
	topics := map[string]string{
		config.TopicChallenges: "/aro/devnet/challenges",
		config.TopicReceipts:   "/aro/devnet/receipts",
		config.TopicReports:    "/aro/devnet/reports",
		config.TopicBatches:    "/aro/devnet/batches",
		config.TopicManifests:  "/aro/devnet/manifests",
	}
	for kind, want := range topics {
		if got := n.Topic(kind); got != want {
			t.Errorf("Topic(%s) = %s; want %s", kind, got, want)
		}
	}

	_, err = config.LookupNetwork("mainnet")
	if !errors.Is(err, config.ErrUnknownNetwork) {
		t.Fatalf("LookupNetwork(mainnet) = %v; want ErrUnknownNetwork", err)
	}
	if want := `config: unknown network "mainnet": want one of devnet`; err.Error() != want {
		t.Errorf("error %q; want %q", err, want)
	}
}

// TestDevnetProbability: a devnet's challenge probabilities can be
// changed by config (and so by ARO_DEVNET_PROBABILITY) per kind; the
// others keep the network's.
func TestDevnetProbability(t *testing.T) {
	c := config.Default()
	if err := c.ApplyEnv([]string{"ARO_DEVNET_PROBABILITY=bandwidth=0.5, storage = 1"}); err != nil {
		t.Fatal(err)
	}
	if err := c.Validate(); err != nil {
		t.Fatal(err)
	}
	n, err := c.NetworkParams()
	if err != nil {
		t.Fatal(err)
	}
	builtIn, _ := config.LookupNetwork("devnet")
	want := map[proofs.Kind]float64{proofs.KindBandwidth: 0.5, proofs.KindStorage: 1, proofs.KindLiveness: builtIn.Probability[proofs.KindLiveness], proofs.KindCompute: builtIn.Probability[proofs.KindCompute]}
	if !maps.Equal(n.Probability, want) {
		t.Errorf("probabilities %v, want %v", n.Probability, want)
	}
	if builtIn.Probability[proofs.KindBandwidth] == 0.5 {
		t.Error("the built-in network was changed")
	}
}
