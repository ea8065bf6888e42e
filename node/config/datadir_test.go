package config_test

import (
	"os"
	"path/filepath"
	"testing"

	"github.com/aropeer/aropeer/node/config"
)

func TestDatadir(t *testing.T) {
	base := t.TempDir()
	getenv := func(k string) string {
		if k == config.EnvDatadir {
			return filepath.Join(base, "node")
		}
		return ""
	}
	dd, err := config.DefaultDatadir(getenv)
	if err != nil {
		t.Fatal(err)
	}
	root := filepath.Join(base, "node")
	if string(dd) != root {
		t.Fatalf("DefaultDatadir = %s; want %s", dd, root)
	}
	for got, want := range map[string]string{
		dd.ConfigPath():   filepath.Join(root, "config.toml"),
		dd.IdentityPath(): filepath.Join(root, "identity.key"),
		dd.TokenPath():    filepath.Join(root, "api.token"),
		dd.StorePath():    filepath.Join(root, "store"),
	} {
		if got != want {
			t.Errorf("path %s; want %s", got, want)
		}
	}
	if err := dd.Create(); err != nil {
		t.Fatal(err)
	}
	fi, err := os.Stat(root)
	if err != nil || !fi.IsDir() || fi.Mode().Perm() != 0o700 {
		t.Errorf("datadir %v, %v; want a directory with mode 0700", fi, err)
	}
}

func TestDefaultDatadirHome(t *testing.T) {
	home := t.TempDir()
	t.Setenv("HOME", home)
	dd, err := config.DefaultDatadir(func(string) string { return "" })
	if err != nil {
		t.Fatal(err)
	}
	if want := filepath.Join(home, ".aropeer"); string(dd) != want {
		t.Errorf("DefaultDatadir without %s = %s; want %s", config.EnvDatadir, dd, want)
	}
}
