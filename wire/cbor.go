package wire

import (
	"bytes"
	"errors"
	"fmt"
	"sync"

	"github.com/fxamacker/cbor/v2"
)

// Decoding caps. The byte cap (maxSize) is the caller's; these bound what a
// small input can expand into: one CBOR byte can become a 16-byte interface
// value, and each nesting level costs a stack frame.
const (
	maxNestedLevels  = 16
	maxArrayElements = 1 << 17
	maxMapPairs      = 1 << 16
)

var (
	// ErrTooLarge means the input is longer than the caller's size cap.
	ErrTooLarge = errors.New("wire: input too large")
	// ErrNonCanonical means the input decodes but is not the one canonical
	// encoding of the value it decodes to.
	ErrNonCanonical = errors.New("wire: non-canonical encoding")
)

// codec holds the encoding and decoding modes. Both are immutable and safe
// for concurrent use.
type codec struct {
	enc cbor.EncMode
	dec cbor.DecMode
	// reenc is enc writing into a caller's buffer, for Unmarshal's check.
	reenc cbor.UserBufferEncMode
}

// codecs is built on first use; sync.OnceValue keeps it out of init() and
// it never changes afterwards.
var codecs = sync.OnceValue(newCodec)

func newCodec() codec {
	eo := cbor.CoreDetEncOptions()
	// No tags at all: nothing in a message needs one, and a tag would be one
	// more thing a verifier has to interpret the same way.
	eo.TagsMd = cbor.TagsForbidden
	enc, err := eo.EncMode()
	if err != nil {
		panic("wire: cbor encoding options: " + err.Error()) // constant options; a bug, not input
	}
	reenc, err := eo.UserBufferEncMode()
	if err != nil {
		panic("wire: cbor encoding options: " + err.Error())
	}
	dec, err := cbor.DecOptions{
		DupMapKey:         cbor.DupMapKeyEnforcedAPF,
		IndefLength:       cbor.IndefLengthForbidden,
		TagsMd:            cbor.TagsForbidden,
		MaxNestedLevels:   maxNestedLevels,
		MaxArrayElements:  maxArrayElements,
		MaxMapPairs:       maxMapPairs,
		ExtraReturnErrors: cbor.ExtraDecErrorUnknownField,
		FieldNameMatching: cbor.FieldNameMatchingCaseSensitive,
		UTF8:              cbor.UTF8RejectInvalid,
	}.DecMode()
	if err != nil {
		panic("wire: cbor decoding options: " + err.Error())
	}
	return codec{enc: enc, dec: dec, reenc: reenc}
}

// Marshal returns the canonical CBOR encoding of v (RFC 8949 core
// deterministic encoding, no tags).
func Marshal(v any) ([]byte, error) {
	b, err := codecs().enc.Marshal(v)
	if err != nil {
		return nil, fmt.Errorf("wire: encode %T: %w", v, err)
	}
	return b, nil
}

// Unmarshal decodes data into v, which must be a non-nil pointer to a zero
// value. It accepts only the canonical encoding: data must be at most
// maxSize bytes, well formed, a single item with no trailing bytes, free of
// duplicate keys, indefinite lengths, tags and fields v does not have, and
// equal to Marshal of what it decodes to. On error, v is left in an
// unspecified state and must not be used.
func Unmarshal(data []byte, v any, maxSize int) error {
	if err := UnmarshalTrusted(data, v, maxSize); err != nil {
		return err
	}
	// The decoder accepts some non-shortest forms and any key order; the
	// re-encoding is the only test that covers every rule at once, and it
	// also catches fields v cannot hold exactly (omitted zero values, ints
	// read into floats, and so on).
	same, err := encodesTo(v, data)
	if err != nil {
		return fmt.Errorf("wire: decode %T: re-encode: %w", v, err)
	}
	if !same {
		return fmt.Errorf("wire: decode %T: %w", v, ErrNonCanonical)
	}
	return nil
}

// encodesTo reports whether v's canonical encoding is data. A message of
// up to half maxPooledReencoding, every gossiped one among them, is
// encoded into a pooled buffer: every message a node receives is encoded
// again to check it, and a fresh slice each time was a tenth of what a
// keeper of a busy network allocated.
func encodesTo(v any, data []byte) (bool, error) {
	if 2*len(data) > maxPooledReencoding {
		again, err := codecs().enc.Marshal(v)
		return err == nil && bytes.Equal(again, data), err
	}
	buf := reencodings.Get().(*bytes.Buffer)
	defer func() {
		if buf.Cap() <= maxPooledReencoding { // not one an odd message grew
			buf.Reset()
			reencodings.Put(buf)
		}
	}()
	// Room for the encoding, which should be data, and as much again: a
	// map's pairs are sorted in the buffer's spare capacity.
	buf.Grow(2 * len(data))
	err := codecs().reenc.MarshalToBuffer(v, buf)
	return err == nil && bytes.Equal(buf.Bytes(), data), err
}

var reencodings = sync.Pool{New: func() any { return new(bytes.Buffer) }}

// maxPooledReencoding bounds the buffers encodesTo keeps.
const maxPooledReencoding = 64 << 10

// UnmarshalTrusted decodes data that Unmarshal accepted before and that
// comes back unchanged, such as a stored payload whose hash still matches
// its CID. It keeps the size cap and the decoder's limits but skips the
// re-encoding that proves data canonical, a third of a decode's cost: a
// keeper settling an epoch reads every receipt of it more than once.
// Never use it on data from the network.
func UnmarshalTrusted(data []byte, v any, maxSize int) error {
	if maxSize <= 0 {
		return fmt.Errorf("wire: decode: invalid size cap %d", maxSize)
	}
	if len(data) > maxSize {
		return fmt.Errorf("wire: decode %T: %d bytes over cap %d: %w", v, len(data), maxSize, ErrTooLarge)
	}
	if err := codecs().dec.Unmarshal(data, v); err != nil {
		return fmt.Errorf("wire: decode %T: %w", v, err)
	}
	return nil
}
