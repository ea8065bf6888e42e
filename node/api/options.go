package api

import (
	"context"
	"errors"
	"fmt"
	"log/slog"
	"time"

	"github.com/prometheus/client_golang/prometheus"
)

// Defaults. Handlers that legitimately run longer (a large upload, say) can
// extend their own deadlines with http.NewResponseController.
const (
	DefaultMaxBodyBytes      = 1 << 20 // 1 MiB
	DefaultReadHeaderTimeout = 5 * time.Second
	DefaultReadTimeout       = 30 * time.Second
	DefaultWriteTimeout      = 30 * time.Second
	DefaultIdleTimeout       = 60 * time.Second
	// ShutdownTimeout bounds how long Serve waits for in-flight requests
	// once its context is done before it cancels them.
	ShutdownTimeout = 2 * time.Second
)

// Option configures a Server.
type Option func(*Server) error

// WithLogger sets the logger; the server adds a component attribute.
func WithLogger(l *slog.Logger) Option {
	return func(s *Server) error {
		if l == nil {
			return errors.New("nil logger")
		}
		s.log = l
		return nil
	}
}

// WithStatus serves f at GET /v1/status.
func WithStatus(f func(context.Context) (Status, error)) Option {
	return func(s *Server) error {
		if f == nil {
			return errors.New("nil status function")
		}
		s.status = f
		return nil
	}
}

// WithMetrics serves g's metrics at GET /metrics.
func WithMetrics(g prometheus.Gatherer) Option {
	return func(s *Server) error {
		if g == nil {
			return errors.New("nil metrics gatherer")
		}
		s.metrics = g
		return nil
	}
}

// WithReadTimeout bounds reading a whole request, body included.
func WithReadTimeout(d time.Duration) Option {
	return func(s *Server) error {
		if d <= 0 {
			return fmt.Errorf("read timeout %v: must be positive", d)
		}
		s.readTimeout = d
		return nil
	}
}

// WithReadHeaderTimeout bounds reading request headers, so an idle or slow
// client cannot hold a connection open.
func WithReadHeaderTimeout(d time.Duration) Option {
	return func(s *Server) error {
		if d <= 0 {
			return fmt.Errorf("read header timeout %v: must be positive", d)
		}
		s.readHeaderTimeout = d
		return nil
	}
}

// WithWriteTimeout bounds handling a request and writing its reply.
func WithWriteTimeout(d time.Duration) Option {
	return func(s *Server) error {
		if d <= 0 {
			return fmt.Errorf("write timeout %v: must be positive", d)
		}
		s.writeTimeout = d
		return nil
	}
}

// WithMaxBodyBytes sets the default request body cap for every route
// registered without its own [MaxBodyBytes].
func WithMaxBodyBytes(n int64) Option {
	return func(s *Server) error {
		if n <= 0 {
			return fmt.Errorf("max body bytes %d: must be positive", n)
		}
		s.maxBody = n
		return nil
	}
}

// RouteOption configures one route registered with Handle or
// HandleMutating.
type RouteOption func(*route)

type route struct {
	maxBody int64
}

// MaxBodyBytes overrides the server's request body cap for one route.
// Values below 1 are ignored.
func MaxBodyBytes(n int64) RouteOption {
	return func(r *route) {
		if n > 0 {
			r.maxBody = n
		}
	}
}
