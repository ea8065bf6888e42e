package api

import (
	"bufio"
	"bytes"
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"io"
	"net/http"
	"strings"
	"syscall"
	"time"
)

// Client defaults.
const (
	// DefaultClientTimeout applies to a request whose context has no
	// deadline, so a wedged node cannot hang the CLI.
	DefaultClientTimeout = 10 * time.Second
	// MaxResponseBytes caps a reply the client will read.
	MaxResponseBytes = 64 << 20
	// maxErrorBytes caps the part of an error reply kept as its message.
	maxErrorBytes = 4 << 10
)

// Client talks to a running node's API. It is safe for concurrent use.
type Client struct {
	addr        string
	token       string
	addrErr     error // a bad or non-loopback addr, reported by every call
	hc          *http.Client
	maxResponse int64
}

// NewClient returns a client for the API at addr (host:port, loopback
// only). token is the contents of <datadir>/api.token; it may be empty for
// reads. When set it is sent with every request.
func NewClient(addr, token string) *Client {
	return &Client{
		addr:    addr,
		token:   strings.TrimSpace(token),
		addrErr: checkLoopbackAddr(addr),
		hc: &http.Client{
			Transport: &http.Transport{
				// Never route the token through a proxy from the environment.
				Proxy:               nil,
				MaxIdleConnsPerHost: 4,
				IdleConnTimeout:     30 * time.Second,
			},
			// Redirects are not part of this API; following one could
			// carry the request somewhere else.
			CheckRedirect: func(*http.Request, []*http.Request) error {
				return http.ErrUseLastResponse
			},
		},
		maxResponse: MaxResponseBytes,
	}
}

// CloseIdleConnections closes kept-alive connections, e.g. before a test
// checks for leaked goroutines.
func (c *Client) CloseIdleConnections() { c.hc.CloseIdleConnections() }

// Status returns the node's status.
func (c *Client) Status(ctx context.Context) (Status, error) {
	var st Status
	err := c.GetJSON(ctx, StatusPath, &st)
	return st, err
}

// Metrics returns the node's metrics in the Prometheus text format.
func (c *Client) Metrics(ctx context.Context) (string, error) {
	b, err := c.do(ctx, http.MethodGet, MetricsPath, nil, "text/plain")
	return string(b), err
}

// GetJSON fetches path (with any query) and decodes the JSON reply into v;
// a nil v discards it.
func (c *Client) GetJSON(ctx context.Context, path string, v any) error {
	b, err := c.do(ctx, http.MethodGet, path, nil, "application/json")
	if err != nil {
		return err
	}
	return decodeReply(http.MethodGet, path, b, v)
}

// PostJSON sends body as JSON to path with the token and decodes the JSON
// reply into v; a nil body sends none, a nil v discards the reply.
func (c *Client) PostJSON(ctx context.Context, path string, body, v any) error {
	var rd io.Reader
	if body != nil {
		b, err := json.Marshal(body)
		if err != nil {
			return fmt.Errorf("api: POST %s: encode request: %w", path, err)
		}
		rd = bytes.NewReader(b)
	}
	b, err := c.do(ctx, http.MethodPost, path, rd, "application/json")
	if err != nil {
		return err
	}
	return decodeReply(http.MethodPost, path, b, v)
}

func decodeReply(method, path string, b []byte, v any) error {
	if v == nil {
		return nil
	}
	if err := json.Unmarshal(b, v); err != nil {
		return fmt.Errorf("api: %s %s: decode reply: %w", method, path, err)
	}
	return nil
}

// do runs one request and returns the body of a 2xx reply.
func (c *Client) do(ctx context.Context, method, path string, body io.Reader, accept string) ([]byte, error) {
	if _, ok := ctx.Deadline(); !ok {
		var cancel context.CancelFunc
		ctx, cancel = context.WithTimeout(ctx, DefaultClientTimeout)
		defer cancel()
	}
	resp, err := c.send(ctx, method, path, body, accept)
	if err != nil {
		return nil, err
	}
	defer resp.Body.Close()
	b, err := io.ReadAll(io.LimitReader(resp.Body, c.maxResponse+1))
	if err != nil {
		return nil, fmt.Errorf("api: %s %s: read reply: %w", method, path, err)
	}
	if int64(len(b)) > c.maxResponse {
		return nil, fmt.Errorf("api: %s %s: reply over %d bytes", method, path, c.maxResponse)
	}
	return b, nil
}

// Delete sends DELETE path with the token, discarding the reply.
func (c *Client) Delete(ctx context.Context, path string) error {
	_, err := c.do(ctx, http.MethodDelete, path, nil, "application/json")
	return err
}

// PostStream sends body as JSON to path with the token and calls line for
// each line of the reply as it arrives: the newline-delimited JSON with
// which long operations report progress. Only ctx bounds it.
func (c *Client) PostStream(ctx context.Context, path string, body any, line func([]byte) error) error {
	b, err := json.Marshal(body)
	if err != nil {
		return fmt.Errorf("api: POST %s: encode request: %w", path, err)
	}
	resp, err := c.send(ctx, http.MethodPost, path, bytes.NewReader(b), "application/x-ndjson")
	if err != nil {
		return err
	}
	defer resp.Body.Close()
	sc := bufio.NewScanner(resp.Body)
	sc.Buffer(make([]byte, 64<<10), int(min(c.maxResponse, 16<<20)))
	for sc.Scan() {
		if err := line(sc.Bytes()); err != nil {
			return err
		}
	}
	if err := sc.Err(); err != nil {
		return fmt.Errorf("api: POST %s: read reply: %w", path, err)
	}
	return nil
}

// send runs one request and returns a 2xx reply, whose body the caller
// closes.
func (c *Client) send(ctx context.Context, method, path string, body io.Reader, accept string) (*http.Response, error) {
	if c.addrErr != nil {
		return nil, c.addrErr
	}
	if !strings.HasPrefix(path, "/") {
		return nil, fmt.Errorf("api: %s %q: path must start with /", method, path)
	}
	req, err := http.NewRequestWithContext(ctx, method, "http://"+c.addr+path, body)
	if err != nil {
		return nil, fmt.Errorf("api: %s %s: %w", method, path, err)
	}
	req.Header.Set("Accept", accept)
	if body != nil {
		req.Header.Set("Content-Type", "application/json")
	}
	if c.token != "" {
		req.Header.Set("Authorization", "Bearer "+c.token)
	}

	resp, err := c.hc.Do(req)
	if err != nil {
		if errors.Is(err, syscall.ECONNREFUSED) {
			return nil, fmt.Errorf("api: %s %s: nothing listens on %s: %w", method, path, c.addr, ErrNotRunning)
		}
		// *url.Error repeats method and URL; keep only its cause.
		if u := errors.Unwrap(err); u != nil {
			err = u
		}
		return nil, fmt.Errorf("api: %s %s on %s: %w", method, path, c.addr, err)
	}
	if resp.StatusCode < 200 || resp.StatusCode > 299 {
		defer resp.Body.Close()
		b, _ := io.ReadAll(io.LimitReader(resp.Body, maxErrorBytes))
		return nil, &StatusError{Method: method, Path: path, Code: resp.StatusCode, Message: errorMessage(resp.StatusCode, b)}
	}
	return resp, nil
}

// errorMessage takes the message of a JSON error body, falling back to the
// text of a plain one (net/http's own 404 and 405) or the status text.
func errorMessage(code int, b []byte) string {
	var eb errorBody
	if json.Unmarshal(b, &eb) == nil && eb.Error != "" {
		return eb.Error
	}
	if s := strings.TrimSpace(string(b)); s != "" && !strings.HasPrefix(s, "{") {
		return s
	}
	return http.StatusText(code)
}
