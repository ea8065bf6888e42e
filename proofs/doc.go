// Package proofs holds the evidence of GPoW: the resource kinds, the
// challenge and receipt messages, the interfaces through which resource
// packages answer and judge challenges, and the receipt store. Resource
// packages import it for its types; the challenge engine for all of it.
package proofs
