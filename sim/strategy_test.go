package sim

import (
	"context"
	"testing"

	"github.com/libp2p/go-libp2p/core/network"

	"github.com/aropeer/aropeer/proofs"
)

// blockingResponder answers a challenge when its release channel closes.
type blockingResponder struct {
	proofs.Responder
	started, release chan struct{}
}

func (r blockingResponder) Serve(context.Context, proofs.Challenge, network.Stream) {
	r.started <- struct{}{}
	<-r.release
}

// resetStream records whether it was reset.
type resetStream struct {
	network.Stream
	reset bool
}

func (s *resetStream) Reset() error { s.reset = true; return nil }

// TestPresence: an offline edge that goes away refuses new challenges at
// once but finishes the answer in progress before its links are cut, so
// that the cut never lands inside an answer; back before the cut, its
// links were never cut.
func TestPresence(t *testing.T) {
	var p presence
	inner := blockingResponder{started: make(chan struct{}), release: make(chan struct{})}
	r := p.wrap(inner)
	cuts, relinks := 0, 0
	leave := func() { cuts++ }
	relink := func() { relinks++ }

	done := make(chan struct{})
	go func() {
		r.Serve(context.Background(), proofs.Challenge{}, &resetStream{})
		close(done)
	}()
	<-inner.started
	p.goAway(leave)
	p.mu.Lock()
	if cuts != 0 {
		t.Fatal("the links were cut in the middle of an answer")
	}
	p.mu.Unlock()

	refused := &resetStream{}
	r.Serve(context.Background(), proofs.Challenge{}, refused)
	if !refused.reset {
		t.Fatal("an edge that is away answered a new challenge")
	}

	close(inner.release)
	<-done
	p.mu.Lock()
	if cuts != 1 {
		t.Fatalf("links cut %d times once the answer was done, want 1", cuts)
	}
	p.mu.Unlock()
	p.comeBack(relink)
	if relinks != 1 {
		t.Fatalf("links restored %d times on return, want 1", relinks)
	}

	// Away and back with no answer in progress: cut at once, restored.
	p.goAway(leave)
	p.comeBack(relink)
	if cuts != 2 || relinks != 2 {
		t.Fatalf("cuts %d relinks %d, want 2 and 2", cuts, relinks)
	}
}

// TestPresenceBackBeforeTheCut: an edge back before its answer in progress
// ended never loses its links.
func TestPresenceBackBeforeTheCut(t *testing.T) {
	var p presence
	inner := blockingResponder{started: make(chan struct{}), release: make(chan struct{})}
	r := p.wrap(inner)
	cuts, relinks := 0, 0
	done := make(chan struct{})
	go func() {
		r.Serve(context.Background(), proofs.Challenge{}, &resetStream{})
		close(done)
	}()
	<-inner.started
	p.goAway(func() { cuts++ })
	p.comeBack(func() { relinks++ })
	close(inner.release)
	<-done
	if cuts != 0 || relinks != 0 {
		t.Fatalf("cuts %d relinks %d, want none", cuts, relinks)
	}
}
