package beacon

import (
	"context"
	"errors"
	"fmt"
	"log/slog"
	"sync"
)

// Local is a devnet's beacon: one BLS key that signs each round at its
// time and hands it to be gossiped. A round passes only while Run runs:
// rounds before it started, between two runs or while the process was too
// stalled to sign them did not happen, and Get never invents them.
type Local struct {
	signer    *Signer
	info      Info
	verify    *Verifier
	verifyErr error
	clock     Clock
	log       *slog.Logger
	rounds    *recentRounds

	mu      sync.Mutex
	running bool
	from    uint64 // first round of the current run
	spans   []span // the rounds signed, oldest first
}

// span is a run of consecutive rounds the local beacon signed.
type span struct{ first, last uint64 }

// maxSpans bounds the record of signed rounds; a new span starts only
// when the beacon restarts or stalls, so this reaches far back.
const maxSpans = 64

// localCache is how many rounds the local beacon keeps for Get and Watch;
// older rounds it signed are signed again on demand.
const localCache = 1000

// LocalOption configures a Local beacon.
type LocalOption func(*Local)

// WithLocalClock sets the clock rounds are signed by; the default is the
// system clock.
func WithLocalClock(c Clock) LocalOption {
	return func(l *Local) {
		if c != nil {
			l.clock = c
		}
	}
}

// WithLocalLogger sets the logger; the default is slog.Default().
func WithLocalLogger(lg *slog.Logger) LocalOption {
	return func(l *Local) {
		if lg != nil {
			l.log = lg
		}
	}
}

// NewLocal prepares a local beacon for signer's chain. It starts nothing.
func NewLocal(signer *Signer, opts ...LocalOption) *Local {
	info := signer.Info()
	l := &Local{
		signer: signer,
		info:   info,
		clock:  SystemClock(),
		log:    slog.Default(),
	}
	l.verify, l.verifyErr = NewVerifier(info)
	for _, opt := range opts {
		opt(l)
	}
	l.log = l.log.With("component", "beacon", "source", "local")
	l.rounds = newRecentRounds(info, l.clock, localCache, info.Period)
	return l
}

// Name names the source in logs and metrics.
func (l *Local) Name() string { return "local" }

// Info returns the chain info of the local key.
func (l *Local) Info() Info { return l.info.clone() }

// Run signs each round at its time, from the current round on, until ctx
// ends, and hands each beacon to publish. A failed publish is logged and
// the next round still signed: the round is kept here whatever the network
// did with it. Run returns nil when ctx ends, and an error if the beacon
// cannot sign or is already running.
func (l *Local) Run(ctx context.Context, publish func(context.Context, Beacon) error) error {
	if l.verifyErr != nil {
		return fmt.Errorf("beacon: local beacon: %w", l.verifyErr)
	}
	next := max(l.info.RoundAt(l.clock.Now()), 1)
	if err := l.start(next); err != nil {
		return err
	}
	defer l.stop()
	l.log.Info("local beacon started", "round", next, "chain", l.info.HashString())
	for ctx.Err() == nil {
		now := l.clock.Now()
		if wait := l.info.TimeOf(next).Sub(now); wait > 0 {
			select {
			case <-ctx.Done():
			case <-l.clock.After(wait):
			}
			continue
		}
		if cur := l.info.RoundAt(now); cur > next {
			l.log.Warn("local beacon was too late to sign rounds; they did not happen", "first", next, "last", cur-1)
			next = cur
		}
		b, err := l.sign(next)
		if err != nil {
			return err
		}
		l.keep(b)
		if err := publish(ctx, b); err != nil && ctx.Err() == nil {
			l.log.Warn("local beacon could not publish a round", "round", next, "err", err)
		}
		next++
	}
	return nil
}

func (l *Local) start(from uint64) error {
	l.mu.Lock()
	defer l.mu.Unlock()
	if l.running {
		return errors.New("beacon: local beacon is already running")
	}
	l.running, l.from = true, from
	return nil
}

func (l *Local) stop() {
	l.mu.Lock()
	l.running = false
	l.mu.Unlock()
}

// sign signs round and checks the result, so that the local beacon never
// hands out what its peers would reject.
func (l *Local) sign(round uint64) (Beacon, error) {
	b, err := l.signer.Sign(round)
	if err != nil {
		return Beacon{}, fmt.Errorf("beacon: local beacon: sign round %d: %w", round, err)
	}
	if b, err = withRandomness(b); err != nil {
		return Beacon{}, fmt.Errorf("beacon: local beacon: %w", err)
	}
	if err := l.verify.Verify(b); err != nil {
		return Beacon{}, fmt.Errorf("beacon: local beacon: own round %d: %w", round, err)
	}
	return b, nil
}

// keep records a signed round for Get and Watch.
func (l *Local) keep(b Beacon) {
	l.rounds.add(b)
	l.mu.Lock()
	defer l.mu.Unlock()
	if n := len(l.spans); n > 0 && l.spans[n-1].last+1 == b.Round {
		l.spans[n-1].last = b.Round
		return
	}
	l.spans = append(l.spans, span{b.Round, b.Round})
	if len(l.spans) > maxSpans {
		l.spans = l.spans[1:]
	}
}

// Get returns a round the local beacon signed. A round still to come fails
// with ErrNotYet; the round being signed right now is waited for; a round
// in which the beacon was not running fails with ErrUnavailable.
func (l *Local) Get(ctx context.Context, round uint64) (Beacon, error) {
	if round == 0 {
		return Beacon{}, fmt.Errorf("beacon: round 0 has no beacon: %w", ErrUnavailable)
	}
	if b, ok := l.rounds.lookup(round); ok {
		return b, nil
	}
	if l.rounds.notYet(round, l.clock.Now()) {
		return Beacon{}, fmt.Errorf("beacon: round %d: %w", round, ErrNotYet)
	}
	l.mu.Lock()
	signed := l.signed(round)
	pending := l.running && round >= l.from
	l.mu.Unlock()
	switch {
	case signed:
		// Older than the cache. BLS signing is deterministic, so signing
		// again gives the very beacon that was published then.
		return l.sign(round)
	case pending:
		return l.rounds.wait(ctx, round)
	}
	return Beacon{}, fmt.Errorf("beacon: local beacon was not running in round %d: %w", round, ErrUnavailable)
}

// signed reports whether round was signed; l.mu is held.
func (l *Local) signed(round uint64) bool {
	for _, s := range l.spans {
		if s.first <= round && round <= s.last {
			return true
		}
	}
	return false
}

// Watch delivers the rounds the local beacon signs from the current round
// on, in order, each once, until ctx ends.
func (l *Local) Watch(ctx context.Context) <-chan Beacon {
	return l.rounds.watch(ctx, l.info.RoundAt(l.clock.Now()))
}
