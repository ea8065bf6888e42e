package config

import (
	"errors"
	"fmt"
	"net/netip"
	"strconv"
	"strings"

	"github.com/libp2p/go-libp2p/core/peer"
	ma "github.com/multiformats/go-multiaddr"

	"github.com/aropeer/aropeer/challenge"
)

// The accessors below parse the address lists for the node. Validate uses
// the same parsers, so on a validated Config they do not fail.

// ListenAddrs returns the listen multiaddrs.
func (c Config) ListenAddrs() ([]ma.Multiaddr, error) { return parseAddrs("listen", c.Listen) }

// AnnounceAddrs returns the extra multiaddrs to announce.
func (c Config) AnnounceAddrs() ([]ma.Multiaddr, error) { return parseAddrs("announce", c.Announce) }

// BootstrapPeers returns the bootstrap peers, one AddrInfo per peer with
// all of its addresses.
func (c Config) BootstrapPeers() ([]peer.AddrInfo, error) {
	addrs := make([]ma.Multiaddr, 0, len(c.Bootstrap))
	for i, s := range c.Bootstrap {
		a, err := parseBootstrap(s)
		if err != nil {
			return nil, fmt.Errorf("config: bootstrap[%d] = %q: %w", i, s, err)
		}
		addrs = append(addrs, a)
	}
	infos, err := peer.AddrInfosFromP2pAddrs(addrs...)
	if err != nil {
		return nil, fmt.Errorf("config: bootstrap: %w", err)
	}
	return infos, nil
}

// DenyList is the parsed deny list: the connection gater refuses these
// peers and any address inside these prefixes.
type DenyList struct {
	Peers    []peer.ID
	Prefixes []netip.Prefix
}

// DenyList returns the parsed deny list.
func (c Config) DenyList() (DenyList, error) {
	var d DenyList
	for i, s := range c.Deny {
		id, prefix, err := parseDeny(s)
		if err != nil {
			return DenyList{}, fmt.Errorf("config: deny[%d] = %q: %w", i, s, err)
		}
		if id != "" {
			d.Peers = append(d.Peers, id)
		} else {
			d.Prefixes = append(d.Prefixes, prefix)
		}
	}
	return d, nil
}

func parseAddrs(key string, list []string) ([]ma.Multiaddr, error) {
	out := make([]ma.Multiaddr, 0, len(list))
	for i, s := range list {
		a, err := ma.NewMultiaddr(s)
		if err != nil {
			return nil, fmt.Errorf("config: %s[%d] = %q: %w", key, i, s, err)
		}
		out = append(out, a)
	}
	return out, nil
}

func parseBootstrap(s string) (ma.Multiaddr, error) {
	a, err := ma.NewMultiaddr(s)
	if err != nil {
		return nil, err
	}
	if _, err := peer.AddrInfoFromP2pAddr(a); err != nil {
		return nil, err
	}
	return a, nil
}

// parseDeny reads a deny entry: a peer ID or a CIDR prefix.
func parseDeny(s string) (peer.ID, netip.Prefix, error) {
	if prefix, err := netip.ParsePrefix(s); err == nil {
		return "", prefix.Masked(), nil
	}
	id, err := peer.Decode(s)
	if err != nil {
		return "", netip.Prefix{}, fmt.Errorf("neither a CIDR prefix nor a peer ID")
	}
	return id, netip.Prefix{}, nil
}

// GenesisKeepers returns the keepers the config lists.
func (c Config) GenesisKeepers() ([]challenge.Keeper, error) {
	out := make([]challenge.Keeper, 0, len(c.Keepers))
	for i, s := range c.Keepers {
		k, err := parseKeeper(s)
		if err != nil {
			return nil, fmt.Errorf("config: keepers[%d] = %q: %w", i, s, err)
		}
		out = append(out, k)
	}
	return out, nil
}

func parseKeeper(s string) (challenge.Keeper, error) {
	id, stake, ok := strings.Cut(s, "=")
	if !ok {
		return challenge.Keeper{}, errors.New("missing =<stake>")
	}
	pid, err := peer.Decode(strings.TrimSpace(id))
	if err != nil {
		return challenge.Keeper{}, fmt.Errorf("peer id: %w", err)
	}
	n, err := strconv.ParseUint(strings.TrimSpace(stake), 10, 64)
	if err != nil || n == 0 {
		return challenge.Keeper{}, errors.New("stake must be a positive integer")
	}
	return challenge.Keeper{ID: pid, Stake: n}, nil
}
