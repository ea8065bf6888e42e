package challenge

import (
	"context"
	"errors"
	"fmt"
	"maps"
	"slices"
	"sync"
	"time"

	"github.com/libp2p/go-libp2p/core/peer"

	"github.com/aropeer/aropeer/beacon"
	"github.com/aropeer/aropeer/proofs"
)

// errNoEpochBeacon means the beacon of an epoch's first round cannot be
// had: the epoch has no committees, and so no challenges.
var errNoEpochBeacon = errors.New("challenge: no beacon for the epoch's first round")

// epochCommittees are one epoch's committees, recomputed only when the
// set of edges with manifests changes.
type epochCommittees struct {
	b     beacon.Beacon
	epoch uint64
	p     Params

	mu      sync.Mutex
	version uint64
	cs      *Committees
	// byEdge memoizes forEdge: every challenge gossiped to a keeper, and
	// every round of an edge's overlay, asks for one edge's committee.
	byEdge map[peer.ID]*Committees
}

// maxCommitteesByEdge bounds byEdge: challenges naming edges that do not
// exist must not grow it without end.
const maxCommitteesByEdge = 1 << 16

// committeesFor returns the committees of epoch, fetching the beacon of
// its first round once.
func (e *Engine) committeesFor(ctx context.Context, epoch uint64) (*epochCommittees, error) {
	e.mu.Lock()
	ec, ok := e.committees[epoch]
	e.mu.Unlock()
	if ok {
		return ec, nil
	}
	first := e.cfg.Params.FirstRound(epoch)
	bctx, cancel := context.WithTimeout(ctx, 2*e.info.Period)
	defer cancel()
	b, err := e.cfg.Beacon.Get(bctx, first)
	if err != nil {
		return nil, fmt.Errorf("%w %d: %w", errNoEpochBeacon, first, err)
	}
	p := e.cfg.Params
	if e.cfg.Registry != nil {
		ks, err := e.cfg.Registry(ctx, epoch)
		if err == nil {
			err = checkKeepers(ks)
		}
		if err != nil {
			e.log.Warn("keeper registry unusable: the genesis keepers stand in", "epoch", epoch, "err", err)
		} else {
			p.Keepers = ks
		}
	}
	ec = &epochCommittees{b: b, epoch: epoch, p: p}
	e.mu.Lock()
	defer e.mu.Unlock()
	if old, ok := e.committees[epoch]; ok {
		return old, nil
	}
	e.committees[epoch] = ec
	// Committees of epochs whose challenges can no longer be accepted are
	// of no further use.
	for old := range e.committees {
		if old+2 < epoch {
			delete(e.committees, old)
		}
	}
	return ec, nil
}

// forEdges returns the committees of the edges with manifests.
func (ec *epochCommittees) forEdges(manifests map[peer.ID]proofs.Manifest, version uint64) *Committees {
	ec.mu.Lock()
	defer ec.mu.Unlock()
	if ec.cs == nil || ec.version != version {
		edges := make([]peer.ID, 0, len(manifests))
		for id := range manifests {
			edges = append(edges, id)
		}
		slices.Sort(edges)
		ec.cs = NewCommittees(ec.b, ec.epoch, edges, ec.p)
		ec.version = version
	}
	return ec.cs
}

// forEdge returns committees that hold at least edge's. An edge's
// committee depends on no other edge, so it is drawn once per epoch.
func (ec *epochCommittees) forEdge(edge peer.ID) *Committees {
	ec.mu.Lock()
	defer ec.mu.Unlock()
	if cs, ok := ec.byEdge[edge]; ok {
		return cs
	}
	cs := NewCommittees(ec.b, ec.epoch, []peer.ID{edge}, ec.p)
	if ec.byEdge == nil {
		ec.byEdge = make(map[peer.ID]*Committees)
	}
	if len(ec.byEdge) < maxCommitteesByEdge {
		ec.byEdge[edge] = cs
	}
	return cs
}

// Stats counts what the engine did.
type Stats struct {
	ManifestsPublished uint64
	Issued             uint64 // challenge attempts a keeper sent
	Answered           uint64 // challenges an edge accepted and answered
	Refused            uint64 // streams an edge refused
	Receipts           map[proofs.Result]uint64
}

// CommitteeOf returns edge's committee in epoch: for a kind challenged
// Together, the keepers probing the edge at once.
func (e *Engine) CommitteeOf(ctx context.Context, epoch uint64, edge peer.ID) ([]peer.ID, error) {
	ec, err := e.committeesFor(ctx, epoch)
	if err != nil {
		return nil, err
	}
	return ec.forEdge(edge).Of(edge), nil
}

// EdgesOf returns the edges, of those whose manifests this node holds,
// with keeper in their committee in epoch: the edges it challenges.
func (e *Engine) EdgesOf(ctx context.Context, epoch uint64, keeper peer.ID) ([]peer.ID, error) {
	ec, err := e.committeesFor(ctx, epoch)
	if err != nil {
		return nil, err
	}
	return ec.forEdges(e.manifestSnapshot()).EdgesOf(keeper), nil
}

// manifestSnapshot returns a copy of the manifests held, and their
// version, for committees drawn outside the lock.
func (e *Engine) manifestSnapshot() (map[peer.ID]proofs.Manifest, uint64) {
	e.mu.Lock()
	defer e.mu.Unlock()
	return maps.Clone(e.manifests), e.manifestsVersion
}

// KeepersOf returns the keepers of epoch: the ledger's, or the genesis
// list without one.
func (e *Engine) KeepersOf(ctx context.Context, epoch uint64) ([]peer.ID, error) {
	ec, err := e.committeesFor(ctx, epoch)
	if err != nil {
		return nil, err
	}
	ids := make([]peer.ID, len(ec.p.Keepers))
	for i, k := range ec.p.Keepers {
		ids[i] = k.ID
	}
	return ids, nil
}

// Answered returns how many challenges of each kind the edge accepted and
// answered in epoch, for its Work Report. The counts live in memory for
// the last few epochs: a restarted edge reports what it answered since.
func (e *Engine) Answered(epoch uint64) map[proofs.Kind]uint64 {
	e.mu.Lock()
	defer e.mu.Unlock()
	return maps.Clone(e.answered[epoch])
}

// Stats returns a copy of the engine's counters.
func (e *Engine) Stats() Stats {
	e.mu.Lock()
	defer e.mu.Unlock()
	s := e.stats
	s.Receipts = make(map[proofs.Result]uint64, len(e.stats.Receipts))
	for k, v := range e.stats.Receipts {
		s.Receipts[k] = v
	}
	return s
}

func (e *Engine) count(f func(*Stats)) {
	e.mu.Lock()
	defer e.mu.Unlock()
	if e.stats.Receipts == nil {
		e.stats.Receipts = make(map[proofs.Result]uint64)
	}
	f(&e.stats)
}

// Activity is one challenge this node issued or answered, for
// `aropeer challenges`.
type Activity struct {
	Time      time.Time `json:"time"`
	Role      string    `json:"role"` // keeper or edge
	Challenge string    `json:"challenge"`
	Receipt   string    `json:"receipt,omitempty"`
	Keeper    string    `json:"keeper"`
	Edge      string    `json:"edge"`
	Kind      string    `json:"kind"`
	Round     uint64    `json:"round"`
	Attempt   uint32    `json:"attempt"`
	Result    string    `json:"result"`
	Reason    string    `json:"reason,omitempty"`
}

// Recent returns the latest activity, newest first.
func (e *Engine) Recent() []Activity { return e.activity.list() }

// activityLog keeps the latest n activities. Its buffer grows to n as
// activities come: most edges see a few, and a simulation runs thousands
// of engines.
type activityLog struct {
	mu   sync.Mutex
	buf  []Activity
	size int
	next int
	full bool
}

func newActivityLog(n int) *activityLog { return &activityLog{size: n} }

func (l *activityLog) add(a Activity) {
	l.mu.Lock()
	defer l.mu.Unlock()
	if len(l.buf) < l.size {
		l.buf = append(l.buf, a)
		l.next = len(l.buf) % l.size
		l.full = l.next == 0
		return
	}
	l.buf[l.next] = a
	l.next = (l.next + 1) % len(l.buf)
}

func (l *activityLog) list() []Activity {
	l.mu.Lock()
	defer l.mu.Unlock()
	n := l.next
	if l.full {
		n = len(l.buf)
	}
	out := make([]Activity, 0, n)
	for i := 1; i <= n; i++ {
		out = append(out, l.buf[(l.next-i+len(l.buf))%len(l.buf)])
	}
	return out
}
