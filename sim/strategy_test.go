package sim

import (
	"context"
	"testing"

	"github.com/libp2p/go-libp2p/core/network"

	"github.com/aropeer/aropeer/proofs"
)

// answering records the challenges it answered.
type answering struct {
	proofs.Responder
	answered []proofs.Challenge
}

func (r *answering) Serve(_ context.Context, c proofs.Challenge, _ network.Stream) {
	r.answered = append(r.answered, c)
}

// resetStream records whether it was reset.
type resetStream struct {
	network.Stream
	reset bool
}

func (s *resetStream) Reset() error { s.reset = true; return nil }

// TestPresence: an offline edge refuses the attempts due in the rounds it
// is away in, a challenge's round plus its attempt, and answers the rest,
// whenever they reach it; before the runner knows the rounds, it answers
// every one.
func TestPresence(t *testing.T) {
	p := &presence{}
	inner := &answering{}
	r := p.wrap(inner)
	serve := func(round uint64, attempt uint32) bool {
		s := &resetStream{}
		before := len(inner.answered)
		r.Serve(context.Background(), proofs.Challenge{Round: round, Attempt: attempt}, s)
		answered := len(inner.answered) > before
		if answered == s.reset {
			t.Fatalf("round %d attempt %d: answered %v, stream reset %v", round, attempt, answered, s.reset)
		}
		return answered
	}
	if !serve(2, 0) {
		t.Fatal("an edge whose rounds away are not yet known refused a challenge")
	}
	p.follow(func(round uint64) bool { return round == 2 || round == 3 })
	for _, tc := range []struct {
		round   uint64
		attempt uint32
		answer  bool
	}{
		{1, 0, true},
		{2, 0, false},
		{1, 1, false}, // a retry due in round 2
		{2, 1, false},
		{2, 2, true}, // the second retry is due in round 4
		{4, 0, true},
	} {
		if got := serve(tc.round, tc.attempt); got != tc.answer {
			t.Errorf("round %d attempt %d: answered %v, want %v", tc.round, tc.attempt, got, tc.answer)
		}
	}
}
