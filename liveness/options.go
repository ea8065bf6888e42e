package liveness

import (
	"log/slog"
	"time"
)

// Clock tells the time round trips are measured by.
type Clock interface {
	Now() time.Time
}

type systemClock struct{}

func (systemClock) Now() time.Time { return time.Now() }

// DefaultWriteTimeout bounds how long a Responder spends writing its
// heartbeat when the engine's context has no earlier deadline.
const DefaultWriteTimeout = 10 * time.Second

// Option configures a Responder or a Verifier. An option that does not
// apply to one of them is ignored by it; a nil or non-positive value
// leaves the default, since the constructors have no error to report.
type Option func(*options)

type options struct {
	clock        Clock
	writeTimeout time.Duration
	log          *slog.Logger
}

func newOptions(opts []Option) options {
	o := options{clock: systemClock{}, writeTimeout: DefaultWriteTimeout, log: slog.Default()}
	for _, opt := range opts {
		opt(&o)
	}
	o.log = o.log.With("component", "liveness")
	return o
}

// WithClock sets the clock a Verifier measures round trips by; the default
// is the system clock. Deadlines stay on the wall clock, as streams need.
func WithClock(c Clock) Option {
	return func(o *options) {
		if c != nil {
			o.clock = c
		}
	}
}

// WithWriteTimeout sets how long a Responder may spend writing its
// heartbeat; the default is DefaultWriteTimeout. The context's deadline
// applies when it is earlier.
func WithWriteTimeout(d time.Duration) Option {
	return func(o *options) {
		if d > 0 {
			o.writeTimeout = d
		}
	}
}

// WithLogger sets the logger a Responder reports unanswered challenges to;
// the default is slog.Default(). A component attribute is added.
func WithLogger(l *slog.Logger) Option {
	return func(o *options) {
		if l != nil {
			o.log = l
		}
	}
}
