package config_test

import (
	"errors"
	"testing"
	"time"

	"github.com/aropeer/aropeer/node/config"
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
