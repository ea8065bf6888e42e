// Package exchange is the receipts catch-up protocol /aro/receipts/1.0.0.
//
// A keeper that missed receipts in gossip fetches them from a peer before
// it co-signs an epoch batch: it asks for the peer's sorted CID list of the
// epoch (List), diffs it with its own, fetches the envelopes it lacks by
// CID (Fetch) and verifies and stores them (Sync). An edge does the same,
// filtered to the receipts about itself.
//
// Each stream carries one request and one response, each a canonical CBOR
// message in one length-prefixed frame, both under a deadline. A list
// answer is a page of at most MaxPage CIDs after a cursor; the client asks
// again from the last CID it got until the server says there is no more.
// A get request names at most MaxGet CIDs. A request the server will not
// serve gets an error response (a Code and a message) and the stream is
// closed.
//
// Neither side trusts the other. The server caps every read and the
// number of streams it serves at once; the client checks that lists are
// strictly sorted and that every envelope opens to the CID it asked for,
// of the epoch (and edge) it asked for.
package exchange
