package api

import (
	"crypto/sha256"
	"crypto/subtle"
	"errors"
	"net/http"
	"strings"
)

// requireToken admits a request only if it carries "Authorization: Bearer
// <token>". Both sides are hashed before the constant-time compare so that
// neither the bytes nor the length of the token leak through timing.
func requireToken(token string, next http.Handler) http.Handler {
	want := sha256.Sum256([]byte(token))
	return http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		got, ok := bearer(r.Header.Get("Authorization"))
		if !ok {
			unauthorized(w, errors.New("missing API token: send \"Authorization: Bearer <token>\" with the token from <datadir>/api.token"))
			return
		}
		sum := sha256.Sum256([]byte(got))
		if subtle.ConstantTimeCompare(sum[:], want[:]) != 1 {
			unauthorized(w, errors.New("wrong API token: use the token from the running node's <datadir>/api.token"))
			return
		}
		next.ServeHTTP(w, r)
	})
}

// bearer extracts the credentials of a Bearer authorization header; the
// scheme is case-insensitive (RFC 9110, section 11.1).
func bearer(h string) (string, bool) {
	scheme, cred, ok := strings.Cut(strings.TrimSpace(h), " ")
	if !ok || !strings.EqualFold(scheme, "Bearer") {
		return "", false
	}
	cred = strings.TrimSpace(cred)
	return cred, cred != ""
}

func unauthorized(w http.ResponseWriter, err error) {
	w.Header().Set("WWW-Authenticate", `Bearer realm="aropeer"`)
	WriteError(w, http.StatusUnauthorized, err)
}
