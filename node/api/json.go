package api

import (
	"encoding/json"
	"errors"
	"fmt"
	"io"
	"net/http"
)

// errorBody is the JSON of every error reply. Its messages carry no "api: "
// prefix: the client adds its own when it turns one into an error.
type errorBody struct {
	Error string `json:"error"`
}

// WriteJSON writes v as a JSON reply with the given status code. If v
// cannot be encoded the reply is a 500 instead, since nothing was sent yet.
func WriteJSON(w http.ResponseWriter, status int, v any) {
	b, err := json.Marshal(v)
	if err != nil {
		status = http.StatusInternalServerError
		b, _ = json.Marshal(errorBody{Error: fmt.Sprintf("encode reply: %v", err)})
	}
	h := w.Header()
	h.Set("Content-Type", "application/json")
	h.Set("X-Content-Type-Options", "nosniff")
	w.WriteHeader(status)
	_, _ = w.Write(append(b, '\n'))
}

// WriteError writes {"error": "<err>"} with the given status code; a nil
// err is replaced by the status text.
func WriteError(w http.ResponseWriter, status int, err error) {
	msg := http.StatusText(status)
	if err != nil {
		msg = err.Error()
	}
	WriteJSON(w, status, errorBody{Error: msg})
}

// DecodeJSON reads exactly one JSON value from the request body into v. On
// failure it has already written the error reply (413 when the body is over
// the route's limit, 400 otherwise) and returns false; the handler should
// just return.
func DecodeJSON(w http.ResponseWriter, r *http.Request, v any) bool {
	dec := json.NewDecoder(r.Body)
	err := dec.Decode(v)
	if err == nil {
		// Trailing data means a confused client; refuse rather than guess.
		switch err = dec.Decode(&json.RawMessage{}); {
		case err == io.EOF:
			return true
		case err == nil:
			err = errors.New("trailing data after JSON value")
		}
	}
	var tooBig *http.MaxBytesError
	if errors.As(err, &tooBig) {
		WriteError(w, http.StatusRequestEntityTooLarge,
			fmt.Errorf("request body over %d bytes", tooBig.Limit))
		return false
	}
	if errors.Is(err, io.EOF) {
		err = errors.New("empty body")
	}
	WriteError(w, http.StatusBadRequest, fmt.Errorf("decode request: %w", err))
	return false
}
