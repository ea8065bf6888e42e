package config_test

import (
	"errors"
	"fmt"
	"os"
	"path/filepath"
	"strings"
	"testing"

	"github.com/libp2p/go-libp2p/core/peer"

	"github.com/aropeer/aropeer/node/config"
)

func TestIdentityRoundTrip(t *testing.T) {
	path := filepath.Join(t.TempDir(), "sub", config.IdentityFile)
	created, err := config.CreateIdentity(path)
	if err != nil {
		t.Fatal(err)
	}
	fi, err := os.Stat(path)
	if err != nil {
		t.Fatal(err)
	}
	if fi.Mode().Perm() != 0o600 {
		t.Errorf("identity key mode %04o; want 0600", fi.Mode().Perm())
	}
	loaded, err := config.LoadIdentity(path)
	if err != nil {
		t.Fatal(err)
	}
	idCreated, _ := peer.IDFromPrivateKey(created)
	idLoaded, _ := peer.IDFromPrivateKey(loaded)
	if idCreated != idLoaded || idCreated == "" {
		t.Errorf("peer ID %s after reload; created %s", idLoaded, idCreated)
	}
	if !strings.HasPrefix(idCreated.String(), "12D3KooW") {
		t.Errorf("peer ID %s is not an ed25519 one", idCreated)
	}

	_, err = config.CreateIdentity(path)
	if !errors.Is(err, config.ErrIdentityExists) {
		t.Fatalf("second CreateIdentity = %v; want ErrIdentityExists", err)
	}
	again, _ := config.LoadIdentity(path)
	if id, _ := peer.IDFromPrivateKey(again); id != idCreated {
		t.Error("a refused CreateIdentity changed the key")
	}
}

func TestLoadIdentityErrors(t *testing.T) {
	dir := t.TempDir()
	path := filepath.Join(dir, config.IdentityFile)
	if _, err := config.CreateIdentity(path); err != nil {
		t.Fatal(err)
	}

	for _, mode := range []os.FileMode{0o644, 0o640, 0o604} {
		if err := os.Chmod(path, mode); err != nil {
			t.Fatal(err)
		}
		_, err := config.LoadIdentity(path)
		if !errors.Is(err, config.ErrKeyPermissions) {
			t.Fatalf("LoadIdentity(mode %04o) = %v; want ErrKeyPermissions", mode, err)
		}
		want := fmt.Sprintf("identity key %s has mode %04o: it must be readable only by its owner; run: chmod 600 %s", path, mode, path)
		if err.Error() != want {
			t.Errorf("LoadIdentity(mode %04o):\n got %s\nwant %s", mode, err, want)
		}
	}

	corrupt := filepath.Join(dir, "corrupt.key")
	if err := os.WriteFile(corrupt, []byte("not a key"), 0o600); err != nil {
		t.Fatal(err)
	}
	_, err := config.LoadIdentity(corrupt)
	if !errors.Is(err, config.ErrKeyCorrupt) {
		t.Fatalf("LoadIdentity(corrupt) = %v; want ErrKeyCorrupt", err)
	}
	for _, want := range []string{"identity key " + corrupt + " is corrupt (", "`aropeer init --force`"} {
		if !strings.Contains(err.Error(), want) {
			t.Errorf("LoadIdentity(corrupt) = %q; want it to contain %q", err, want)
		}
	}

	_, err = config.LoadIdentity(filepath.Join(dir, "missing.key"))
	if !errors.Is(err, config.ErrNoIdentity) || !strings.Contains(err.Error(), "aropeer init") {
		t.Errorf("LoadIdentity(missing) = %v; want ErrNoIdentity telling to run aropeer init", err)
	}
}

func TestToken(t *testing.T) {
	path := filepath.Join(t.TempDir(), config.TokenFile)
	if _, err := config.ReadToken(path); !errors.Is(err, config.ErrNoToken) {
		t.Fatalf("ReadToken(missing) = %v; want ErrNoToken", err)
	}
	token, err := config.LoadOrCreateToken(path)
	if err != nil {
		t.Fatal(err)
	}
	if len(token) != 64 || strings.Trim(token, "0123456789abcdef") != "" {
		t.Errorf("token %q; want 64 hex characters", token)
	}
	fi, _ := os.Stat(path)
	if fi.Mode().Perm() != 0o600 {
		t.Errorf("token mode %04o; want 0600", fi.Mode().Perm())
	}
	for _, load := range []func(string) (string, error){config.LoadOrCreateToken, config.ReadToken} {
		if again, err := load(path); err != nil || again != token {
			t.Errorf("token reloaded as %q, %v; want %q", again, err, token)
		}
	}

	if err := os.Chmod(path, 0o644); err != nil {
		t.Fatal(err)
	}
	if _, err := config.ReadToken(path); !errors.Is(err, config.ErrKeyPermissions) ||
		!strings.Contains(err.Error(), "chmod 600 "+path) {
		t.Errorf("ReadToken(0644) = %v; want ErrKeyPermissions", err)
	}
	// LoadOrCreateToken must not paper over a readable token by making a new one.
	if _, err := config.LoadOrCreateToken(path); !errors.Is(err, config.ErrKeyPermissions) {
		t.Errorf("LoadOrCreateToken(0644) = %v; want ErrKeyPermissions", err)
	}

	if err := os.Remove(path); err != nil {
		t.Fatal(err)
	}
	if err := os.WriteFile(path, []byte("short\n"), 0o600); err != nil {
		t.Fatal(err)
	}
	if _, err := config.ReadToken(path); !errors.Is(err, config.ErrKeyCorrupt) {
		t.Errorf("ReadToken(corrupt) = %v; want ErrKeyCorrupt", err)
	}
}
