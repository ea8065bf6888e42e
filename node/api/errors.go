package api

import (
	"errors"
	"fmt"
	"net/http"
)

// Sentinel errors for what callers branch on.
var (
	// ErrNotLoopback: the API address would expose it beyond this machine.
	ErrNotLoopback = errors.New("address is not loopback")
	// ErrAddrInUse: another process, most likely another node, holds the port.
	ErrAddrInUse = errors.New("address already in use")
	// ErrNotRunning: nothing listens on the API address, so no node runs
	// and the caller may open the store directly.
	ErrNotRunning = errors.New("node not running")
	// ErrUnauthorized: the request lacked the token or carried a wrong one.
	ErrUnauthorized = errors.New("unauthorized")
	// ErrNotFound: the node has no such resource (or no such endpoint).
	ErrNotFound = errors.New("not found")
)

// StatusError is a non-2xx reply from the node, carrying the message of its
// JSON error body.
type StatusError struct {
	Method  string
	Path    string
	Code    int
	Message string
}

func (e *StatusError) Error() string {
	return fmt.Sprintf("api: %s %s: %s (HTTP %d)", e.Method, e.Path, e.Message, e.Code)
}

// Is lets callers test the common cases with errors.Is instead of codes.
func (e *StatusError) Is(target error) bool {
	switch target {
	case ErrUnauthorized:
		return e.Code == http.StatusUnauthorized
	case ErrNotFound:
		return e.Code == http.StatusNotFound
	}
	return false
}
