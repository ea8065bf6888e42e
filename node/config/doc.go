// Package config holds the daemon's configuration, the layout of its data
// directory, its network parameters and its identity.
//
// A node's configuration is one TOML file in the data directory, written by
// `aropeer init`. At start the daemon reads it, lets ARO_* environment
// variables and then command-line flags override single keys, and validates
// the result once:
//
//	c, err := config.Read(dd.ConfigPath())
//	err = c.ApplyEnv(os.Environ())
//	err = c.Set("log.level", "debug") // from a flag
//	err = c.Validate()
//
// Every error that comes from the operator's input names the TOML key, the
// bad value and what is expected, and Validate reports all mistakes at once.
package config
