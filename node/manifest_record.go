package node

import (
	"bytes"
	"context"
	"errors"
	"fmt"
	"log/slog"
	"strings"
	"time"

	dht "github.com/libp2p/go-libp2p-kad-dht"
	record "github.com/libp2p/go-libp2p-record"
	"github.com/libp2p/go-libp2p/core/peer"

	"github.com/aropeer/aropeer/challenge"
	"github.com/aropeer/aropeer/proofs"
)

// manifestNamespace holds edges' signed manifests in the DHT, so a keeper
// can learn an edge's claims without waiting for its next announcement.
const manifestNamespace = "aro-manifest"

// ManifestKey is the DHT key of edge's manifest record.
func ManifestKey(edge peer.ID) string {
	return "/" + manifestNamespace + "/" + string(edge)
}

// manifestValidator accepts a record only if it is a manifest of the
// network, signed by the edge its key names; of several, the highest
// sequence number wins.
type manifestValidator struct{ network string }

var _ record.Validator = manifestValidator{}

func (v manifestValidator) Validate(key string, value []byte) error {
	_, err := v.open(key, value)
	return err
}

func (v manifestValidator) Select(key string, values [][]byte) (int, error) {
	best, bestSeq := -1, uint64(0)
	for i, value := range values {
		m, err := v.open(key, value)
		if err != nil {
			continue
		}
		if best < 0 || m.Seq > bestSeq {
			best, bestSeq = i, m.Seq
		}
	}
	if best < 0 {
		return 0, errors.New("node: no valid manifest record")
	}
	return best, nil
}

func (v manifestValidator) open(key string, value []byte) (proofs.Manifest, error) {
	edge, ok := strings.CutPrefix(key, "/"+manifestNamespace+"/")
	if !ok {
		return proofs.Manifest{}, fmt.Errorf("node: %q is not a manifest key", key)
	}
	m, _, err := proofs.OpenManifest(value)
	if err != nil {
		return proofs.Manifest{}, err
	}
	if string(m.Edge) != edge {
		return proofs.Manifest{}, fmt.Errorf("node: manifest of %s under the key of another peer", m.Edge)
	}
	if m.Network != v.network {
		return proofs.Manifest{}, fmt.Errorf("node: manifest of network %q, not %q", m.Network, v.network)
	}
	return m, nil
}

// manifestRecords keeps an edge's manifest in the DHT and lets a keeper
// fetch the manifests of the edges it finds there.
type manifestRecords struct {
	d       *dht.IpfsDHT
	eng     *challenge.Engine
	network string
	edge    bool
	keeper  bool
	log     *slog.Logger
	clock   Clock
	every   time.Duration

	// put is the envelope last stored, and when: a record lives for
	// hours, and every put reaches the keepers closest to its key, each a
	// connection a home host keeps.
	put   []byte
	putAt time.Time
}

// manifestRepublish is how often an unchanged manifest record is stored
// again: kad-dht keeps a record for 36 hours.
const manifestRepublish = time.Hour

func (r *manifestRecords) run(ctx context.Context) {
	for {
		wait := r.every
		if r.d.RoutingTable().Size() == 0 {
			wait = 2 * time.Second
		} else {
			if r.edge {
				r.store(ctx)
			}
			if r.keeper {
				r.fetch(ctx)
			}
		}
		select {
		case <-ctx.Done():
			return
		case <-r.clock.After(wait):
		}
	}
}

// store puts the edge's manifest record when it changed or is due again;
// a put that failed is tried again on the next turn.
func (r *manifestRecords) store(ctx context.Context) {
	env := r.eng.ManifestEnvelope()
	now := r.clock.Now()
	if bytes.Equal(env, r.put) && now.Sub(r.putAt) < manifestRepublish {
		return
	}
	pctx, cancel := context.WithTimeout(ctx, time.Minute)
	defer cancel()
	if err := r.d.PutValue(pctx, ManifestKey(r.d.Host().ID()), env); err != nil {
		if ctx.Err() == nil {
			r.log.Debug("manifest record not stored", "err", err)
		}
		return
	}
	r.put, r.putAt = env, now
}

// fetch reads the manifest record of every edge that advertises liveness
// and whose manifest the engine lacks.
func (r *manifestRecords) fetch(ctx context.Context) {
	fctx, cancel := context.WithTimeout(ctx, time.Minute)
	defer cancel()
	for _, p := range FindProviders(fctx, r.d, r.network, string(proofs.KindLiveness)) {
		if r.eng.HasManifest(p.ID) {
			continue
		}
		if err := fetchManifest(fctx, r.d, r.eng, p.ID); err != nil {
			r.log.Debug("manifest record not taken", "edge", p.ID, "err", err)
		}
	}
}

// manifestRecordTimeout bounds one lookup of an edge's manifest record.
const manifestRecordTimeout = 10 * time.Second

// fetchManifest reads edge's manifest record from the DHT and gives it to
// the engine, which checks it as it checks a gossiped one.
func fetchManifest(ctx context.Context, d *dht.IpfsDHT, eng *challenge.Engine, edge peer.ID) error {
	ctx, cancel := context.WithTimeout(ctx, manifestRecordTimeout)
	defer cancel()
	env, err := d.GetValue(ctx, ManifestKey(edge))
	if err != nil {
		return fmt.Errorf("node: manifest record of %s: %w", edge, err)
	}
	return eng.AddManifest(env)
}

// withManifests makes check, when it refuses a receipt for want of its
// edge's manifest, fetch that manifest (once per edge) and check the
// receipt again. Gossip may bring an edge's manifest to a keeper's peers
// and not to it; without it, the keeper would refuse the receipts about
// that edge its peers hold, and build a batch unlike theirs. It is for
// one catch-up at a time.
func withManifests(check func(proofs.Receipt) error, fetch func(edge peer.ID) error) func(proofs.Receipt) error {
	fetched := make(map[peer.ID]error)
	return func(r proofs.Receipt) error {
		err := check(r)
		if !errors.Is(err, challenge.ErrNoManifest) {
			return err
		}
		ferr, tried := fetched[r.Edge]
		if !tried {
			ferr = fetch(r.Edge)
			fetched[r.Edge] = ferr
		}
		if ferr != nil {
			return fmt.Errorf("%w (%w)", err, ferr)
		}
		return check(r)
	}
}
