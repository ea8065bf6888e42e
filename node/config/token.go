package config

import (
	"crypto/rand"
	"encoding/hex"
	"errors"
	"fmt"
	"io/fs"
	"strings"
)

// ErrNoToken is returned by ReadToken when the API token file is missing.
var ErrNoToken = errors.New("config: no api token")

// tokenBytes is the token's entropy: 256 bits, as hex.
const tokenBytes = 32

// LoadOrCreateToken returns the API token stored at path, creating it
// (32 random bytes as hex, mode 0600) if it does not exist yet.
func LoadOrCreateToken(path string) (string, error) {
	token, err := ReadToken(path)
	if !errors.Is(err, ErrNoToken) {
		return token, err
	}
	b := make([]byte, tokenBytes)
	if _, err := rand.Read(b); err != nil {
		return "", fmt.Errorf("config: generate api token: %w", err)
	}
	token = hex.EncodeToString(b)
	if err := writeAtomic(path, []byte(token+"\n"), 0o600, false); err != nil {
		if errors.Is(err, fs.ErrExist) {
			return ReadToken(path) // another process created it first
		}
		return "", fmt.Errorf("config: write api token %s: %w", path, err)
	}
	return token, nil
}

// ReadToken reads the API token at path, for clients of the API. It
// applies the identity key's checks: ErrKeyPermissions, ErrKeyCorrupt, and
// ErrNoToken when the file is missing.
func ReadToken(path string) (string, error) {
	data, err := readSecret(path, "api token", ErrNoToken,
		"the node creates it when it starts; is it running with this data directory?")
	if err != nil {
		return "", err
	}
	token := strings.TrimSpace(string(data))
	if b, err := hex.DecodeString(token); err != nil || len(b) != tokenBytes {
		return "", &explained{ErrKeyCorrupt, fmt.Sprintf(
			"api token %s is corrupt (want %d hex characters): delete it, and the node creates a new one when it starts", path, 2*tokenBytes)}
	}
	return token, nil
}
