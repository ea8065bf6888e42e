// Package compute proves an edge's accelerator with spot-checks of exact
// int8 matrix products: that it did the work, and that it is the class of
// device it claims.
//
// Both sides generate n x n int8 matrices A and B from the challenge seed
// and a nonce the keeper sends with the task (MatrixSeed, Matrices). The
// edge computes C = A·B exactly in int32 with an Executor (CPU in Go,
// Exec for an external GPU worker), commits the rows of C in an RFC 6962
// tree (proofs.HashTree) and sends the root before a deadline its claimed
// TOPS sets (Params.Budget). Only then the keeper draws a few rows from
// its own randomness, gets them with their audit paths, and recomputes
// them exactly: an edge that computed a share f of the rows passes with
// probability at most f^m, and one slower than its claim misses the
// deadline. Protocol describes the frames.
package compute
