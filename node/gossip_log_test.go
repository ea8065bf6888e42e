package node

import (
	"bytes"
	"log/slog"
	"strings"
	"testing"

	mocknet "github.com/libp2p/go-libp2p/p2p/net/mock"
)

// TestGossipLogHandler: gossipsub's warnings reach the node's log, its
// info does not, and on an in-memory host (no decaying tags) neither does
// the warning its tag tracer repeats for every message.
func TestGossipLogHandler(t *testing.T) {
	mn := mocknet.New()
	defer mn.Close()
	h, err := mn.GenPeer()
	if err != nil {
		t.Fatal(err)
	}
	var out bytes.Buffer
	log := slog.New(gossipLogHandler(h, slog.NewTextHandler(&out, nil)))
	log.Info("joined topic")
	log.Warn("error bumping delivery tag", "err", "no decaying tag registered for topic t")
	log.Warn("peer sent a bad message")
	got := out.String()
	if strings.Contains(got, "joined topic") || strings.Contains(got, "bumping") {
		t.Errorf("kept what it should drop:\n%s", got)
	}
	if !strings.Contains(got, "peer sent a bad message") {
		t.Errorf("dropped a warning:\n%s", got)
	}
}
