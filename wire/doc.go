// Package wire holds the encodings every aropeer message shares: canonical
// CBOR, content identifiers, signed envelopes and stream framing. It
// imports nothing else from the module.
//
// # Canonical CBOR
//
// Messages are encoded with Marshal, which writes RFC 8949 core
// deterministic CBOR (shortest integers, lengths and floats, map keys
// sorted by their encoded bytes, definite lengths) and no tags. Unmarshal
// accepts only that encoding: it decodes, re-encodes and compares, and
// also refuses duplicate keys, unknown struct fields, trailing bytes and
// input over a size cap. So a message has one encoding, a signature over
// it and its CID can be recomputed by anyone, and two peers never read
// one message two ways.
//
// Message structs should be maps with short string keys and omitempty:
//
//	type Receipt struct {
//		Network string `cbor:"net"`
//		Epoch   uint64 `cbor:"epoch"`
//		Reason  string `cbor:"reason,omitempty"`
//	}
//
// String keys keep messages valid DAG-CBOR, as their dag-cbor CIDs claim:
// DAG-CBOR allows only string map keys, and for string keys the core
// deterministic order (by encoded bytes) is DAG-CBOR's length-first order.
// Being a map, a message can gain an optional field later (old decoders
// reject the new field while it is set, which is the safe direction).
// Avoid floats in messages (use integer units: DAG-CBOR wants 64-bit
// floats, core deterministic CBOR the shortest), and never decode into a
// non-zero value. A cid.Cid field encodes as a byte string of the binary
// CID, not a DAG-CBOR link (tags are refused); mark it omitempty if it may
// be undefined, since an undefined CID encodes as an empty byte string
// that does not decode.
//
// # CIDs
//
// A message is named by CIDOf its canonical bytes: CIDv1, codec dag-cbor,
// multihash sha2-256 ("bafyrei..."). The CID names the message, not the
// envelope that carries it: two signatures over one message, by one key
// or by several, give one CID, and a receipt's identity is its content.
// Whoever needs to know who signed keeps the envelope beside the CID.
//
// # Signed envelopes
//
// Signed messages travel in libp2p signed envelopes (core/record). Each
// message type declares a Domain: the signature domain, mixed into what is
// signed so a signature for one type never verifies as another, and the
// payload type written in the envelope. Seal and SealMessage sign; Open
// and OpenMessage check the size cap, the payload type and the signature,
// and return the signer's peer ID. Open accepts only the canonical
// envelope encoding (the one Seal writes), parses it without copying, and
// costs little more than the signature check itself.
//
// # Framing
//
// On streams, every message is one frame: its length as an unsigned varint
// (minimal, as go-msgio reads it), then the bytes. ReadFrame checks the
// length against a per-protocol cap before reading the body, and grows
// its buffer as bytes arrive (from a 64 KiB first chunk), so a peer that
// announces a large frame and sends little costs little. It reports
// ErrFrameTooLarge, ErrBadFrame and ErrTimeout. Reads and writes take a
// deadline. Conn wraps a libp2p stream with a cap and a timeout,
// encodes and decodes messages, and resets the stream after any bad read
// or failed write, as every protocol handler should.
package wire
