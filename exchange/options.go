package exchange

import (
	"log/slog"
	"time"
)

// Defaults of the options.
const (
	DefaultTimeout    = 10 * time.Second
	DefaultMaxStreams = 16
	DefaultMaxList    = 1_000_000
)

// Option configures Serve or a client call. An option that does not apply
// to one of them is ignored by it; a non-positive or nil value leaves the
// default, since Serve has no error to report.
type Option func(*options)

type options struct {
	timeout    time.Duration
	maxStreams int
	pageSize   int
	maxList    int
	log        *slog.Logger
}

func newOptions(opts []Option) options {
	o := options{
		timeout:    DefaultTimeout,
		maxStreams: DefaultMaxStreams,
		pageSize:   MaxPage,
		maxList:    DefaultMaxList,
		log:        slog.Default(),
	}
	for _, opt := range opts {
		opt(&o)
	}
	o.log = o.log.With("component", "exchange")
	return o
}

// WithTimeout bounds each stream, from opening to the last byte of the
// response, on both sides (default DefaultTimeout). A client's context
// deadline applies when it is earlier.
func WithTimeout(d time.Duration) Option {
	return func(o *options) {
		if d > 0 {
			o.timeout = d
		}
	}
}

// WithMaxStreams bounds the streams a server serves at once (default
// DefaultMaxStreams); it answers more with CodeBusy.
func WithMaxStreams(n int) Option {
	return func(o *options) {
		if n > 0 {
			o.maxStreams = n
		}
	}
}

// WithPageSize sets the CIDs of one list page (default and most MaxPage):
// what a client asks for and what a server answers at most.
func WithPageSize(n int) Option {
	return func(o *options) {
		if n > 0 {
			o.pageSize = min(n, MaxPage)
		}
	}
}

// WithMaxList caps the CIDs a client accepts in one list (default
// DefaultMaxList), so a server cannot make it page forever.
func WithMaxList(n int) Option {
	return func(o *options) {
		if n > 0 {
			o.maxList = n
		}
	}
}

// WithLogger sets the logger a server reports failed streams to (default
// slog.Default()). A component attribute is added.
func WithLogger(l *slog.Logger) Option {
	return func(o *options) {
		if l != nil {
			o.log = l
		}
	}
}
