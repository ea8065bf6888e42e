package api

import "time"

// SetMaxResponse lets tests exercise the reply cap without 64 MiB replies.
func (c *Client) SetMaxResponse(n int64) { c.maxResponse = n }

// SetShutdownTimeout lets tests exercise a forced shutdown quickly.
func (s *Server) SetShutdownTimeout(d time.Duration) { s.shutdownTimeout = d }
