package config

import (
	"crypto/rand"
	"errors"
	"fmt"
	"io/fs"

	"github.com/libp2p/go-libp2p/core/crypto"
)

// Sentinel errors about the node's secret files. The permission and
// corruption errors apply to both the identity key and the API token.
var (
	ErrNoIdentity     = errors.New("config: no identity key")
	ErrIdentityExists = errors.New("config: identity key exists")
	ErrKeyPermissions = errors.New("config: secret file readable by others")
	ErrKeyCorrupt     = errors.New("config: secret file corrupt")
)

// CreateIdentity generates an ed25519 key, the node's peer ID, and writes
// it to path with mode 0600. It refuses to replace an existing key, since
// that would change the node's peer ID and orphan its stake and receipts.
func CreateIdentity(path string) (crypto.PrivKey, error) {
	key, _, err := crypto.GenerateEd25519Key(rand.Reader)
	if err != nil {
		return nil, fmt.Errorf("config: generate identity: %w", err)
	}
	data, err := crypto.MarshalPrivateKey(key)
	if err != nil {
		return nil, fmt.Errorf("config: encode identity: %w", err)
	}
	if err := writeAtomic(path, data, 0o600, false); err != nil {
		if errors.Is(err, fs.ErrExist) {
			return nil, &explained{ErrIdentityExists, fmt.Sprintf(
				"identity key %s already exists: refusing to replace it, which would change this node's peer ID", path)}
		}
		return nil, fmt.Errorf("config: write identity key %s: %w", path, err)
	}
	return key, nil
}

// LoadIdentity reads the key CreateIdentity wrote. It refuses a key that
// group or others can read (ErrKeyPermissions) and a corrupt one
// (ErrKeyCorrupt); a missing key is ErrNoIdentity.
func LoadIdentity(path string) (crypto.PrivKey, error) {
	data, err := readSecret(path, "identity key", ErrNoIdentity, "run `aropeer init` to create one")
	if err != nil {
		return nil, err
	}
	key, err := crypto.UnmarshalPrivateKey(data)
	if err != nil {
		return nil, &explained{ErrKeyCorrupt, fmt.Sprintf(
			"identity key %s is corrupt (%v): restore it from a backup, or create a new identity with `aropeer init --force`", path, err)}
	}
	return key, nil
}
