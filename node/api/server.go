package api

import (
	"context"
	"errors"
	"fmt"
	"log/slog"
	"net"
	"net/http"
	"runtime/debug"
	"strings"
	"sync"
	"syscall"
	"time"

	"github.com/prometheus/client_golang/prometheus"
)

// Server is the node's HTTP API on a loopback address. Create it with New,
// register routes, then Listen and Serve.
type Server struct {
	addr    string
	token   string
	log     *slog.Logger
	status  func(context.Context) (Status, error)
	metrics prometheus.Gatherer

	readHeaderTimeout time.Duration
	readTimeout       time.Duration
	writeTimeout      time.Duration
	idleTimeout       time.Duration
	shutdownTimeout   time.Duration
	maxBody           int64

	mux *http.ServeMux

	mu      sync.Mutex
	ln      net.Listener
	serving bool // Serve has been called; it owns ln from then on
	closed  bool
}

// New returns a server for addr, which must be a loopback host and a port
// ("127.0.0.1:8547", "[::1]:0", "localhost:8547"). token guards the routes
// registered with HandleMutating. New starts nothing.
func New(addr, token string, opts ...Option) (*Server, error) {
	if err := checkLoopbackAddr(addr); err != nil {
		return nil, err
	}
	if token == "" || strings.TrimSpace(token) != token {
		return nil, errors.New("api: token is empty or has surrounding spaces; pass the contents of <datadir>/api.token, trimmed")
	}
	s := &Server{
		addr:              addr,
		token:             token,
		log:               slog.Default(),
		readHeaderTimeout: DefaultReadHeaderTimeout,
		readTimeout:       DefaultReadTimeout,
		writeTimeout:      DefaultWriteTimeout,
		idleTimeout:       DefaultIdleTimeout,
		shutdownTimeout:   ShutdownTimeout,
		maxBody:           DefaultMaxBodyBytes,
		mux:               http.NewServeMux(),
	}
	for _, o := range opts {
		if err := o(s); err != nil {
			return nil, fmt.Errorf("api: %w", err)
		}
	}
	s.log = s.log.With("component", "api")
	if s.status != nil {
		s.Handle("GET "+StatusPath, statusHandler(s.status))
	}
	if s.metrics != nil {
		s.Handle("GET "+MetricsPath, metricsHandler(s.metrics, s.log))
	}
	return s, nil
}

// Handle registers a read route. pattern is a net/http ServeMux pattern
// ("GET /v1/receipts/{cid}"); like ServeMux, it panics on an invalid or
// conflicting pattern, which is a programming error.
func (s *Server) Handle(pattern string, h http.Handler, opts ...RouteOption) {
	s.mux.Handle(pattern, s.limit(h, opts))
}

// HandleMutating registers a route that changes state: it answers only
// requests bearing the server's token, and 401 to every other.
func (s *Server) HandleMutating(pattern string, h http.Handler, opts ...RouteOption) {
	// Authenticate before anything reads the body.
	s.mux.Handle(pattern, requireToken(s.token, s.limit(h, opts)))
}

// Listen binds the API socket, so that a busy port is reported at start-up
// rather than from a background goroutine.
func (s *Server) Listen() error {
	s.mu.Lock()
	defer s.mu.Unlock()
	return s.listenLocked()
}

func (s *Server) listenLocked() error {
	switch {
	case s.closed:
		return errors.New("api: listen: server closed")
	case s.serving:
		return errors.New("api: listen: server already served")
	case s.ln != nil:
		return errors.New("api: listen: already listening")
	}
	ln, err := net.Listen("tcp", s.addr)
	if errors.Is(err, syscall.EADDRINUSE) {
		return fmt.Errorf("api: listen %s: %w: another aropeer node may be running; stop it or set api.addr in config.toml", s.addr, ErrAddrInUse)
	}
	if err != nil {
		return fmt.Errorf("api: listen %s: %w", s.addr, err)
	}
	// "localhost" is resolved by the system; make sure it stayed local.
	if a, ok := ln.Addr().(*net.TCPAddr); !ok || !a.IP.IsLoopback() {
		_ = ln.Close()
		return fmt.Errorf("api: listen %s: bound %s: %w", s.addr, ln.Addr(), ErrNotLoopback)
	}
	s.ln = ln
	return nil
}

// Addr is the bound address once Listen has succeeded (with the real port
// when addr asked for port 0), and nil before or after.
func (s *Server) Addr() net.Addr {
	s.mu.Lock()
	defer s.mu.Unlock()
	if s.ln == nil {
		return nil
	}
	return s.ln.Addr()
}

// Close releases the socket bound by Listen when Serve is never going to
// run, say because another component failed to start. It does not stop a
// running Serve: cancel Serve's context for that.
func (s *Server) Close() error {
	s.mu.Lock()
	defer s.mu.Unlock()
	s.closed = true
	if s.serving || s.ln == nil {
		return nil
	}
	err := s.ln.Close()
	s.ln = nil
	if err != nil {
		return fmt.Errorf("api: close: %w", err)
	}
	return nil
}

// Serve serves requests until ctx is done, then shuts down: in-flight
// requests get ShutdownTimeout to finish, after which their contexts are
// cancelled and their connections closed. It calls Listen if the caller has
// not, may be called once, returns nil on a clean stop, and returns only
// after every goroutine it started has stopped: a handler that ignores its
// request context's cancellation therefore holds Serve up.
func (s *Server) Serve(ctx context.Context) error {
	s.mu.Lock()
	if s.ln == nil {
		if err := s.listenLocked(); err != nil {
			s.mu.Unlock()
			return err
		}
	}
	if s.serving {
		s.mu.Unlock()
		return errors.New("api: serve: already served")
	}
	s.serving = true
	ln := s.ln
	s.mu.Unlock()
	defer func() {
		s.mu.Lock()
		s.ln = nil
		s.mu.Unlock()
	}()

	// Requests keep ctx's values but not its cancellation, so that a
	// graceful shutdown lets them finish; base is cancelled only to cut
	// off the ones that overrun.
	base, cancelBase := context.WithCancel(context.WithoutCancel(ctx))
	defer cancelBase()
	var inflight sync.WaitGroup
	srv := &http.Server{
		Handler:           s.root(&inflight),
		ReadHeaderTimeout: s.readHeaderTimeout,
		ReadTimeout:       s.readTimeout,
		WriteTimeout:      s.writeTimeout,
		IdleTimeout:       s.idleTimeout,
		MaxHeaderBytes:    64 << 10,
		ErrorLog:          slog.NewLogLogger(s.log.Handler(), slog.LevelWarn),
		BaseContext:       func(net.Listener) context.Context { return base },
	}

	errc := make(chan error, 1)
	go func() { errc <- srv.Serve(ln) }()
	s.log.Info("API listening", "addr", ln.Addr().String())

	select {
	case err := <-errc:
		// The accept loop failed on its own; stop whatever it started.
		cancelBase()
		_ = srv.Close()
		inflight.Wait()
		return fmt.Errorf("api: serve %s: %w", ln.Addr(), err)
	case <-ctx.Done():
	}

	sctx, cancel := context.WithTimeout(context.Background(), s.shutdownTimeout)
	defer cancel()
	if err := srv.Shutdown(sctx); err != nil {
		// Still a stop the caller asked for, so not an error to return.
		s.log.Warn("API requests still running at shutdown; cancelling them",
			"timeout", s.shutdownTimeout, "err", err)
		cancelBase()
		_ = srv.Close()
	}
	err := <-errc
	inflight.Wait()
	if err != nil && !errors.Is(err, http.ErrServerClosed) {
		return fmt.Errorf("api: serve %s: %w", ln.Addr(), err)
	}
	return nil
}

// root wraps the mux with what every request gets: in-flight tracking,
// the Host check and panic recovery.
func (s *Server) root(inflight *sync.WaitGroup) http.Handler {
	return http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		inflight.Add(1)
		defer inflight.Done()
		// A web page the operator visits can reach loopback through DNS
		// rebinding; its requests then carry the attacker's host name.
		if !loopbackHostHeader(r.Host) {
			WriteError(w, http.StatusForbidden, fmt.Errorf("host %q refused: the API answers only to loopback names", r.Host))
			return
		}
		start := time.Now()
		rw := &responseWriter{ResponseWriter: w}
		defer s.recoverPanic(rw, r)
		s.mux.ServeHTTP(rw, r)
		s.log.Debug("request", "method", r.Method, "path", r.URL.Path,
			"status", rw.code, "duration", time.Since(start))
	})
}

// recoverPanic turns a handler panic into a 500 and a logged error, instead
// of net/http's dropped connection and stack trace on stderr.
func (s *Server) recoverPanic(w *responseWriter, r *http.Request) {
	v := recover()
	if v == nil {
		return
	}
	if v == http.ErrAbortHandler { // net/http's own signal to abort quietly
		panic(v)
	}
	s.log.Error("API handler panicked", "method", r.Method, "path", r.URL.Path,
		"panic", fmt.Sprint(v), "stack", string(debug.Stack()))
	if w.code != 0 {
		// Part of a reply is out; abort the connection so the client sees
		// a broken reply rather than a truncated one that looks whole.
		panic(http.ErrAbortHandler)
	}
	WriteError(w, http.StatusInternalServerError, errors.New("internal error; see the node's log"))
}

// limit caps the request body of one route.
func (s *Server) limit(h http.Handler, opts []RouteOption) http.Handler {
	rt := route{maxBody: s.maxBody}
	for _, o := range opts {
		o(&rt)
	}
	n := rt.maxBody
	return http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		// Refuse a declared oversize body before the handler runs; bodies of
		// unknown length are cut off by MaxBytesReader as they are read.
		if r.ContentLength > n {
			WriteError(w, http.StatusRequestEntityTooLarge,
				fmt.Errorf("request body of %d bytes is over the %d-byte limit", r.ContentLength, n))
			return
		}
		r.Body = http.MaxBytesReader(w, r.Body, n)
		h.ServeHTTP(w, r)
	})
}

// responseWriter records whether, and with what code, a reply was started.
type responseWriter struct {
	http.ResponseWriter
	code int
}

func (w *responseWriter) WriteHeader(code int) {
	if w.code == 0 && code >= 200 { // 1xx replies are not final
		w.code = code
	}
	w.ResponseWriter.WriteHeader(code)
}

func (w *responseWriter) Write(b []byte) (int, error) {
	if w.code == 0 {
		w.code = http.StatusOK
	}
	return w.ResponseWriter.Write(b)
}

// Flush keeps streaming handlers working through the wrapper.
func (w *responseWriter) Flush() {
	if w.code == 0 {
		w.code = http.StatusOK
	}
	_ = http.NewResponseController(w.ResponseWriter).Flush()
}

// Unwrap lets http.ResponseController reach the connection, e.g. for a
// handler that extends its own deadlines.
func (w *responseWriter) Unwrap() http.ResponseWriter { return w.ResponseWriter }

// checkLoopbackAddr refuses any address that would expose the API beyond
// this machine, including an empty host, which means every interface.
func checkLoopbackAddr(addr string) error {
	host, _, err := net.SplitHostPort(addr)
	if err != nil {
		return fmt.Errorf("api: address %q: %w; want host:port, e.g. 127.0.0.1:8547", addr, err)
	}
	if !isLoopbackHost(host) {
		return fmt.Errorf("api: address %q: %w; use 127.0.0.1, ::1 or localhost (api.addr in config.toml)", addr, ErrNotLoopback)
	}
	return nil
}

func isLoopbackHost(host string) bool {
	if strings.EqualFold(host, "localhost") {
		return true
	}
	ip := net.ParseIP(host)
	return ip != nil && ip.IsLoopback()
}

// loopbackHostHeader reports whether a request's Host names this machine.
// An absent Host (HTTP/1.0) cannot come from a browser, so it passes.
func loopbackHostHeader(h string) bool {
	if h == "" {
		return true
	}
	host, _, err := net.SplitHostPort(h)
	if err != nil { // no port
		host = strings.TrimSuffix(strings.TrimPrefix(h, "["), "]")
	}
	return isLoopbackHost(host)
}
