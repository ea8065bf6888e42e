// Package liveness proves that an edge is up: a keeper opens a stream on
// Protocol with a challenge, and the edge answers with one signed
// Heartbeat that names the challenge's network, round, attempt, both
// peers and a nonce derived from the challenge. The keeper checks the
// signature and every field, and measures the round trip; receipts of
// passed heartbeats give an edge its uptime.
//
// The nonce changes with each attempt, so a heartbeat recorded for one
// attempt cannot answer a retry; the signature binds the edge, so no
// other peer can answer for it.
package liveness
