package challenge

import (
	"context"
	"errors"
	"fmt"
	"log/slog"
	"sync"

	"github.com/ipfs/go-cid"
	"github.com/libp2p/go-libp2p/core/crypto"
	"github.com/libp2p/go-libp2p/core/network"
	"github.com/libp2p/go-libp2p/core/peer"
	"github.com/libp2p/go-libp2p/core/protocol"

	"github.com/aropeer/aropeer/beacon"
	"github.com/aropeer/aropeer/proofs"
)

// Streams is what the engine needs of the libp2p host: open a stream to a
// peer, and serve a protocol.
type Streams interface {
	NewStream(ctx context.Context, p peer.ID, pids ...protocol.ID) (network.Stream, error)
	SetStreamHandler(pid protocol.ID, handler network.StreamHandler)
	RemoveStreamHandler(pid protocol.ID)
}

// Topic is one gossip topic as the engine uses it: the node installs the
// engine's validator on it and hands over what passes.
type Topic interface {
	Publish(ctx context.Context, envelope []byte) error
	Next(ctx context.Context) (Message, error)
}

// Message is a gossiped envelope whose signature the node has checked.
type Message struct {
	Payload  []byte
	Signer   peer.ID
	Envelope []byte
}

// Topics are the engine's gossip topics.
type Topics struct {
	Challenges, Receipts, Manifests Topic
}

// Config is what an engine is built from.
type Config struct {
	Key      crypto.PrivKey
	Params   Params
	Beacon   beacon.Source
	Streams  Streams
	Topics   Topics
	Receipts *proofs.ReceiptStore
	// Keeper and Edge say which sides this node plays.
	Keeper, Edge bool
	// Manifest is the edge's own, signed by Key; ignored on a keeper.
	Manifest proofs.Manifest
	// Verifiers and Responders plug the resource kinds in.
	Verifiers  []proofs.Verifier
	Responders []proofs.Responder
	Log        *slog.Logger
	// Clock tells the current round; the default is the system clock.
	Clock beacon.Clock
	// Concurrency bounds a keeper's challenges in flight.
	Concurrency int
	// Registry, if set, gives the keepers and stakes of an epoch (the
	// settlement's registry); Params.Keepers stand in when it is not set
	// or fails.
	Registry func(ctx context.Context, epoch uint64) ([]Keeper, error)
}

// Engine runs a node's part of the challenge protocol. As a keeper it
// issues the challenges the schedule gives it, judges the answers, retries
// what timed out, and signs receipts; as an edge it answers the challenges
// its committee is entitled to and refuses everything else; in both roles
// it keeps the receipts that concern it.
type Engine struct {
	cfg  Config
	self peer.ID
	log  *slog.Logger
	info beacon.Info

	verifiers  map[proofs.Kind]proofs.Verifier
	responders map[proofs.Kind]proofs.Responder

	manifestEnv []byte // the edge's own, sealed
	slots       chan struct{}

	mu               sync.Mutex
	manifests        map[peer.ID]proofs.Manifest
	manifestIDs      map[peer.ID]cid.Cid // payload CIDs of manifests
	manifestsVersion uint64              // bumped when an edge's manifest changes
	committees       map[uint64]*epochCommittees
	seen             map[string]uint64 // challenge ID/attempt → its round
	retries          map[uint64][]proofs.Challenge
	stats            Stats
	answered         map[uint64]map[proofs.Kind]uint64 // by epoch: what the edge answered
	activity         *activityLog
}

// New checks cfg and prepares an engine. It starts nothing.
func New(cfg Config) (*Engine, error) {
	if err := cfg.Params.Validate(); err != nil {
		return nil, err
	}
	if cfg.Key == nil || cfg.Beacon == nil || cfg.Streams == nil || cfg.Receipts == nil {
		return nil, errors.New("challenge: engine needs a key, a beacon, streams and a receipt store")
	}
	if cfg.Topics.Challenges == nil || cfg.Topics.Receipts == nil || cfg.Topics.Manifests == nil {
		return nil, errors.New("challenge: engine needs its three topics")
	}
	self, err := peer.IDFromPrivateKey(cfg.Key)
	if err != nil {
		return nil, fmt.Errorf("challenge: engine key: %w", err)
	}
	if cfg.Log == nil {
		cfg.Log = slog.Default()
	}
	if cfg.Clock == nil {
		cfg.Clock = beacon.SystemClock()
	}
	if cfg.Concurrency <= 0 {
		cfg.Concurrency = 64
	}
	e := &Engine{
		cfg:         cfg,
		self:        self,
		log:         cfg.Log.With("component", "challenge"),
		info:        cfg.Beacon.Info(),
		verifiers:   make(map[proofs.Kind]proofs.Verifier),
		responders:  make(map[proofs.Kind]proofs.Responder),
		slots:       make(chan struct{}, cfg.Concurrency),
		manifests:   make(map[peer.ID]proofs.Manifest),
		manifestIDs: make(map[peer.ID]cid.Cid),
		committees:  make(map[uint64]*epochCommittees),
		seen:        make(map[string]uint64),
		retries:     make(map[uint64][]proofs.Challenge),
		answered:    make(map[uint64]map[proofs.Kind]uint64),
		activity:    newActivityLog(256),
	}
	for _, v := range cfg.Verifiers {
		e.verifiers[v.Kind()] = v
	}
	for _, r := range cfg.Responders {
		e.responders[r.Kind()] = r
	}
	if cfg.Edge {
		if cfg.Manifest.Edge != self {
			return nil, fmt.Errorf("challenge: manifest is for %s, not this node %s", cfg.Manifest.Edge, self)
		}
		for _, o := range cfg.Manifest.Offers {
			if _, ok := e.responders[o.Kind]; !ok {
				return nil, fmt.Errorf("challenge: the manifest offers %s but no responder answers it", o.Kind)
			}
		}
		env, id, err := proofs.SealManifest(cfg.Key, cfg.Manifest)
		if err != nil {
			return nil, err
		}
		e.manifestEnv = env
		e.keepManifest(cfg.Manifest, id)
	}
	return e, nil
}

// Run serves the engine's protocols and follows the beacon until ctx
// ends; it returns when every goroutine it started has stopped.
func (e *Engine) Run(ctx context.Context) error {
	var wg sync.WaitGroup
	defer wg.Wait()
	if e.cfg.Edge {
		for kind, r := range e.responders {
			e.cfg.Streams.SetStreamHandler(r.Protocol(), e.serve(ctx, kind))
			defer e.cfg.Streams.RemoveStreamHandler(r.Protocol())
		}
		e.cfg.Streams.SetStreamHandler(ReceiptProtocol, e.serveReceipt(ctx))
		defer e.cfg.Streams.RemoveStreamHandler(ReceiptProtocol)
	}
	wg.Go(func() { e.follow(ctx, e.cfg.Topics.Manifests, e.acceptManifest) })
	wg.Go(func() { e.follow(ctx, e.cfg.Topics.Receipts, e.acceptReceipt) })
	wg.Go(func() { e.follow(ctx, e.cfg.Topics.Challenges, func(context.Context, Message) {}) })
	var rounds sync.WaitGroup
	defer rounds.Wait()
	for b := range e.cfg.Beacon.Watch(ctx) {
		if e.cfg.Edge && e.announceDue(b.Round) {
			e.publishManifest(ctx)
		}
		e.prune(b.Round)
		if e.cfg.Keeper {
			e.round(ctx, b, &rounds)
		}
	}
	return nil
}

// follow hands every message of a topic to accept until ctx ends.
func (e *Engine) follow(ctx context.Context, t Topic, accept func(context.Context, Message)) {
	for {
		m, err := t.Next(ctx)
		if err != nil {
			return
		}
		accept(ctx, m)
	}
}

// announceEvery bounds the rounds between two announcements of an edge's
// manifest. Each reaches every keeper, forwarded by each of them: at
// every 10 rounds, a thousand edges made the manifests topic the busiest
// of a keeper's, for keepers that mostly knew them. A keeper that missed
// one also finds it in the DHT (manifestRecords, every 30 s).
const announceEvery = 30

// announceDue says when an edge publishes its manifest: in its first
// rounds, while its mesh forms and a message may reach nobody, then once
// every announceEvery rounds, in a round of its own (Stagger), so that
// keepers that joined late learn it.
func (e *Engine) announceDue(round uint64) bool {
	e.mu.Lock()
	defer e.mu.Unlock()
	return e.stats.ManifestsPublished < 3 ||
		(round+Stagger(e.self, announceEvery))%announceEvery == 0
}

func (e *Engine) publishManifest(ctx context.Context) {
	if err := e.cfg.Topics.Manifests.Publish(ctx, e.ManifestEnvelope()); err != nil {
		e.log.Debug("manifest not published", "err", err)
		return
	}
	e.mu.Lock()
	e.stats.ManifestsPublished++
	e.mu.Unlock()
}

// currentRound is the round the chain is in now, by the clock.
func (e *Engine) currentRound() uint64 { return e.info.RoundAt(e.cfg.Clock.Now()) }
