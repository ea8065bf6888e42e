package challenge

import (
	"context"
	"fmt"
	"testing"

	pubsub "github.com/libp2p/go-libp2p-pubsub"

	"github.com/aropeer/aropeer/beacon"
)

// TestVerdict: gossip rejects, and so scores down the peer that forwarded
// it, only a challenge the schedule provably did not call for. One that
// arrives after its window, or that cannot be judged here yet, is ignored:
// an honest keeper whose queue held it a while must keep its score, or a
// busy network's keepers stop hearing each other.
func TestVerdict(t *testing.T) {
	cases := []struct {
		err  error
		want pubsub.ValidationResult
	}{
		{ErrTooOld, pubsub.ValidationIgnore},
		{ErrNotOffered, pubsub.ValidationIgnore},
		{ErrMismatch, pubsub.ValidationIgnore},
		{beacon.ErrUnavailable, pubsub.ValidationIgnore},
		{beacon.ErrNotYet, pubsub.ValidationIgnore},
		{context.DeadlineExceeded, pubsub.ValidationIgnore},
		{ErrWrongNetwork, pubsub.ValidationReject},
		{ErrFuture, pubsub.ValidationReject},
		{ErrTooManyAttempts, pubsub.ValidationReject},
		{ErrNotOnCommittee, pubsub.ValidationReject},
		{ErrNotScheduled, pubsub.ValidationReject},
		{ErrBadSeed, pubsub.ValidationReject},
	}
	for _, c := range cases {
		err := fmt.Errorf("%w: as the check words it", c.err)
		if got := verdict(err); got != c.want {
			t.Errorf("verdict(%v) = %v, want %v", err, got, c.want)
		}
	}
}
