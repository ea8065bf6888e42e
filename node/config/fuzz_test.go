package config

import (
	"testing"

	"github.com/pelletier/go-toml/v2"
)

// FuzzDecode feeds arbitrary files to the config decoder: it must return a
// config or an error, never panic, and whatever it accepts and validates
// must survive a write and a read unchanged.
func FuzzDecode(f *testing.F) {
	for _, roles := range [][]Role{{RoleEdge}, {RoleKeeper, RoleBootstrap}} {
		b, err := toml.Marshal(Default(roles...))
		if err != nil {
			f.Fatal(err)
		}
		f.Add(b)
	}
	f.Add([]byte("roles = ['edge']\n[log]\nlevel = 'debug'\n"))
	f.Add([]byte("[limits]\npeer_conns = 'many'\n"))
	f.Add([]byte("connmgr.grace = 30\n"))
	f.Add([]byte("unknown = 1\n"))
	f.Fuzz(func(t *testing.T, data []byte) {
		c, err := decode("fuzz.toml", data)
		if err != nil || c.Validate() != nil {
			return
		}
		again, err := toml.Marshal(c)
		if err != nil {
			t.Fatalf("a valid config does not encode: %v", err)
		}
		back, err := decode("again.toml", again)
		if err != nil {
			t.Fatalf("a written config does not read back: %v\n%s", err, again)
		}
		if err := back.Validate(); err != nil {
			t.Fatalf("a written config reads back invalid: %v", err)
		}
	})
}
