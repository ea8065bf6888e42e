package sim

import (
	"context"
	"testing"
	"testing/synctest"
	"time"

	"github.com/libp2p/go-libp2p/core/network"

	"github.com/aropeer/aropeer/beacon"
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

// TestPresence: an offline edge answers by the round a challenge reaches
// it in: every challenge in a round it is present in, even at the round's
// very end, and none in a round it is away in. Its links are cut only
// when the answer it began before is done, never in the middle of one,
// and are back for the next round it is present in.
func TestPresence(t *testing.T) {
	synctest.Test(t, func(t *testing.T) {
		info := beacon.Info{Period: time.Second, GenesisTime: time.Now().Unix()}
		p := &presence{info: info}
		inner := blockingResponder{started: make(chan struct{}), release: make(chan struct{})}
		r := p.wrap(inner)
		cuts, relinks := 0, 0
		p.follow(func(round uint64) bool { return round == 2 || round == 3 }, func() { cuts++ })
		serve := func() *resetStream {
			s := &resetStream{}
			r.Serve(context.Background(), proofs.Challenge{}, s)
			return s
		}

		// Round 1, present: an answer begun at its very end runs on into
		// round 2, in which the edge is away.
		time.Sleep(time.Second - time.Millisecond)
		done := make(chan *resetStream)
		go func() { done <- serve() }()
		<-inner.started
		time.Sleep(10 * time.Millisecond)
		if got := info.RoundAt(time.Now()); got != 2 {
			t.Fatalf("round %d, want 2", got)
		}
		p.roundBegun()
		if cuts != 0 {
			t.Fatal("the links were cut in the middle of an answer")
		}
		if s := serve(); !s.reset {
			t.Fatal("an edge away in round 2 answered a challenge")
		}
		close(inner.release)
		if s := <-done; s.reset {
			t.Fatal("the answer begun in round 1 was refused")
		}
		if cuts != 1 {
			t.Fatalf("links cut %d times once the answer was done, want 1", cuts)
		}

		// Back before round 4, and answering in it.
		time.Sleep(2 * time.Second)
		p.comeBack(func() { relinks++ })
		if relinks != 1 {
			t.Fatalf("links restored %d times, want 1", relinks)
		}
		inner.release = make(chan struct{})
		close(inner.release)
		r = p.wrap(inner)
		go func() { <-inner.started }()
		if s := serve(); s.reset {
			t.Fatalf("an edge present in round %d refused a challenge", info.RoundAt(time.Now()))
		}
	})
}

// TestPresenceBackBeforeTheAnswerEnds: an edge away for one round, whose
// answer begun before it runs past the runner's call to bring it back,
// keeps its links: cut then, they would be missing in the round it is
// present in.
func TestPresenceBackBeforeTheAnswerEnds(t *testing.T) {
	synctest.Test(t, func(t *testing.T) {
		info := beacon.Info{Period: time.Second, GenesisTime: time.Now().Unix()}
		p := &presence{info: info}
		inner := blockingResponder{started: make(chan struct{}), release: make(chan struct{})}
		r := p.wrap(inner)
		cuts := 0
		p.follow(func(round uint64) bool { return round == 2 }, func() { cuts++ })
		done := make(chan struct{})
		go func() {
			r.Serve(context.Background(), proofs.Challenge{}, &resetStream{})
			close(done)
		}()
		<-inner.started
		time.Sleep(time.Second) // round 2 begins: away
		p.roundBegun()
		time.Sleep(750 * time.Millisecond)
		p.comeBack(func() { t.Error("links restored that were never cut") })
		time.Sleep(100 * time.Millisecond)
		close(inner.release)
		<-done
		if cuts != 0 {
			t.Fatalf("links cut %d times after the edge was brought back for round 3", cuts)
		}
	})
}
