package exchange

import (
	"errors"
	"fmt"

	"github.com/ipfs/go-cid"
	"github.com/libp2p/go-libp2p/core/peer"

	"github.com/aropeer/aropeer/proofs"
	"github.com/aropeer/aropeer/wire"
)

// Bounds on messages.
const (
	// MaxPage caps the CIDs of one list response; a server answers a
	// larger Limit with this many.
	MaxPage = 4096
	// MaxGet caps the CIDs of one get request; a server refuses more.
	MaxGet = 256
	// maxCIDLen caps one CID on the wire. Receipt CIDs are 36 bytes; the
	// slack admits other hash lengths without admitting junk.
	maxCIDLen = 128
	// maxMessageLen caps an error response's message: a sentence.
	maxMessageLen = 256
	// maxRequestSize caps a request frame: a full get request is about
	// MaxGet*39 bytes.
	maxRequestSize = 16 << 10
	// minResponseSize is the least a client reads, so that an error
	// response always fits.
	minResponseSize = maxMessageLen + 64
)

// request is what a client sends: exactly one of List or Get.
type request struct {
	List *listRequest `cbor:"list,omitempty"`
	Get  *getRequest  `cbor:"get,omitempty"`
}

// listRequest asks for up to Limit CIDs of epoch's receipts (of Edge only,
// if set) that sort after the CID After (from the first, if empty).
type listRequest struct {
	Epoch uint64  `cbor:"epoch"`
	Edge  peer.ID `cbor:"edge,omitempty"`
	After []byte  `cbor:"after,omitempty"`
	Limit uint32  `cbor:"limit"`
}

// getRequest asks for the envelopes of CIDs.
type getRequest struct {
	CIDs []cid.Cid `cbor:"cids"`
}

// response is what a server answers: exactly one of Error, List or Get.
type response struct {
	Error *errorResponse `cbor:"error,omitempty"`
	List  *listResponse  `cbor:"list,omitempty"`
	Get   *getResponse   `cbor:"get,omitempty"`
}

// listResponse is one page of a sorted CID list; More says another page
// follows its last CID.
type listResponse struct {
	CIDs []cid.Cid `cbor:"cids"`
	More bool      `cbor:"more"`
}

// getResponse holds one envelope per requested CID, in request order; an
// empty one means the server does not have that receipt.
type getResponse struct {
	Envelopes [][]byte `cbor:"envs"`
}

// Code says why a server refused a request.
type Code uint8

// The codes. A client treats an unknown code as a refusal.
const (
	CodeBadRequest Code = 1 // the request does not decode or breaks a rule
	CodeTooLarge   Code = 2 // the request is over a size cap
	CodeBusy       Code = 3 // the server serves too many streams; retry later
	CodeInternal   Code = 4 // the server failed to answer
)

func (c Code) String() string {
	switch c {
	case CodeBadRequest:
		return "bad request"
	case CodeTooLarge:
		return "too large"
	case CodeBusy:
		return "busy"
	case CodeInternal:
		return "internal error"
	}
	return fmt.Sprintf("code %d", uint8(c))
}

// errorResponse is a refusal.
type errorResponse struct {
	Code    Code   `cbor:"code"`
	Message string `cbor:"msg"`
}

// errTooMany marks a request over a count cap, which the server answers
// with CodeTooLarge rather than CodeBadRequest.
var errTooMany = errors.New("over the cap")

// decodeRequest decodes and checks a request frame.
func decodeRequest(b []byte) (request, error) {
	var req request
	if err := wire.Unmarshal(b, &req, maxRequestSize); err != nil {
		return request{}, err
	}
	switch {
	case (req.List == nil) == (req.Get == nil):
		return request{}, errors.New("want exactly one of list and get")
	case req.List != nil:
		if req.List.Limit == 0 {
			return request{}, errors.New("list limit 0")
		}
		if len(req.List.After) > maxCIDLen {
			return request{}, fmt.Errorf("list cursor of %d bytes, over %d", len(req.List.After), maxCIDLen)
		}
	default:
		if len(req.Get.CIDs) == 0 {
			return request{}, errors.New("get of no CIDs")
		}
		if len(req.Get.CIDs) > MaxGet {
			return request{}, fmt.Errorf("get of %d CIDs, %w of %d", len(req.Get.CIDs), errTooMany, MaxGet)
		}
	}
	return req, nil
}

// decodeResponse decodes and checks a response frame of at most maxSize
// bytes. Whether it answers the request is the client's check.
func decodeResponse(b []byte, maxSize int) (response, error) {
	var resp response
	if err := wire.Unmarshal(b, &resp, maxSize); err != nil {
		return response{}, err
	}
	n := 0
	for _, set := range []bool{resp.Error != nil, resp.List != nil, resp.Get != nil} {
		if set {
			n++
		}
	}
	if n != 1 {
		return response{}, errors.New("want exactly one of error, list and get")
	}
	switch {
	case resp.Error != nil:
		if len(resp.Error.Message) > maxMessageLen {
			return response{}, fmt.Errorf("error message of %d bytes, over %d", len(resp.Error.Message), maxMessageLen)
		}
	case resp.List != nil:
		if len(resp.List.CIDs) > MaxPage {
			return response{}, fmt.Errorf("list page of %d CIDs, over %d", len(resp.List.CIDs), MaxPage)
		}
	default:
		if len(resp.Get.Envelopes) > MaxGet {
			return response{}, fmt.Errorf("%d envelopes, over %d", len(resp.Get.Envelopes), MaxGet)
		}
		for i, env := range resp.Get.Envelopes {
			if len(env) > proofs.MaxReceiptSize {
				return response{}, fmt.Errorf("envelope %d of %d bytes, over %d", i, len(env), proofs.MaxReceiptSize)
			}
		}
	}
	return resp, nil
}

// listResponseSize bounds the frame of a list response of limit CIDs.
func listResponseSize(limit int) int { return max(limit*(maxCIDLen+3)+64, minResponseSize) }

// getResponseSize bounds the frame of a get response of n envelopes.
func getResponseSize(n int) int { return max(n*(proofs.MaxReceiptSize+8)+64, minResponseSize) }
