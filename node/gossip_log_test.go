package node

import (
	"bytes"
	"log/slog"
	"strings"
	"testing"
)

// TestGossipLogHandler: gossipsub's warnings reach the node's log, its
// info does not, and neither does the warning its tag tracer repeats for
// every message, on a host without decaying tags or with a full decayer.
func TestGossipLogHandler(t *testing.T) {
	var out bytes.Buffer
	log := slog.New(gossipLogHandler(slog.NewTextHandler(&out, nil)))
	log.Info("joined topic")
	log.Warn("error bumping delivery tag", "err", "no decaying tag registered for topic t")
	log.Warn("error bumping delivery tag", "err", "unable to bump decaying tag for peer p, tag t, delta 1; queue full (len=128)")
	log.Warn("peer sent a bad message")
	got := out.String()
	if strings.Contains(got, "joined topic") || strings.Contains(got, "bumping") {
		t.Errorf("kept what it should drop:\n%s", got)
	}
	if !strings.Contains(got, "peer sent a bad message") {
		t.Errorf("dropped a warning:\n%s", got)
	}
}
