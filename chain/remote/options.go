package remote

import (
	"log/slog"
	"time"
)

// Defaults of the options.
const (
	// DefaultTimeout bounds one exchange: the server's read, answer and
	// write, and each attempt of the client.
	DefaultTimeout = 10 * time.Second
	// DefaultAttempts is how many times the client tries an idempotent
	// call that found no answer.
	DefaultAttempts = 3
	// DefaultBackoff is the client's wait before its second attempt; it
	// doubles for each further one.
	DefaultBackoff = 200 * time.Millisecond
)

// Option configures Serve or a Client; one that does not apply is
// ignored. A non-positive value leaves the default, as the constructors
// have no error to report.
type Option func(*options)

type options struct {
	timeout  time.Duration
	attempts int
	backoff  time.Duration
	log      *slog.Logger
}

func newOptions(opts []Option) options {
	o := options{timeout: DefaultTimeout, attempts: DefaultAttempts, backoff: DefaultBackoff, log: slog.Default()}
	for _, opt := range opts {
		opt(&o)
	}
	return o
}

// WithTimeout sets how long one exchange may take, on the server from the
// stream's opening to its answer, on the client per attempt; the default
// is DefaultTimeout. A slow or silent peer is cut off after it.
func WithTimeout(d time.Duration) Option {
	return func(o *options) {
		if d > 0 {
			o.timeout = d
		}
	}
}

// WithRetries sets how many times a Client tries an idempotent call that
// got no answer, and its first backoff; the defaults are DefaultAttempts
// and DefaultBackoff.
func WithRetries(attempts int, backoff time.Duration) Option {
	return func(o *options) {
		if attempts > 0 {
			o.attempts = attempts
		}
		if backoff > 0 {
			o.backoff = backoff
		}
	}
}

// WithLogger sets a Client's logger (Serve takes its own); the default is
// slog.Default(). A component attribute is added.
func WithLogger(l *slog.Logger) Option {
	return func(o *options) {
		if l != nil {
			o.log = l
		}
	}
}
