package main

import (
	"context"
	"io"
	"log/slog"

	"github.com/libp2p/go-libp2p/gologshim"
)

// newLogger builds the process's logger and routes go-libp2p's own logs
// through it: errors only, and warnings too at debug, since libp2p warns
// about what it also returns to us (a listener that failed) and about
// what an operator cannot act on. fx's start-up narration is dropped: its
// failures come back to us as errors, and the user sees each once.
func newLogger(w io.Writer, level, format string) *slog.Logger {
	var lv slog.Level
	_ = lv.UnmarshalText([]byte(level)) // validated with the config
	opts := &slog.HandlerOptions{Level: lv}
	var h slog.Handler
	if format == "json" {
		h = slog.NewJSONHandler(w, opts)
	} else {
		h = slog.NewTextHandler(w, opts)
	}
	libMin := slog.LevelError
	if lv <= slog.LevelDebug {
		libMin = slog.LevelWarn
	}
	gologshim.SetDefaultHandler(libraryHandler{Handler: h, min: libMin})
	return slog.New(h)
}

// libraryHandler filters the logs of the libraries we build on.
type libraryHandler struct {
	slog.Handler
	min  slog.Level
	drop bool
}

func (h libraryHandler) Enabled(ctx context.Context, l slog.Level) bool {
	return !h.drop && l >= h.min && h.Handler.Enabled(ctx, l)
}

func (h libraryHandler) WithAttrs(as []slog.Attr) slog.Handler {
	drop := h.drop
	for _, a := range as {
		if a.Key == "system" && a.Value.String() == "fx" {
			drop = true
		}
	}
	return libraryHandler{Handler: h.Handler.WithAttrs(as), min: h.min, drop: drop}
}

func (h libraryHandler) WithGroup(name string) slog.Handler {
	return libraryHandler{Handler: h.Handler.WithGroup(name), min: h.min, drop: h.drop}
}
