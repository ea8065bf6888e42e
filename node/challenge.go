package node

import (
	"context"
	"fmt"
	"sync"
	"time"

	pubsub "github.com/libp2p/go-libp2p-pubsub"
	"github.com/libp2p/go-libp2p/core/peer"
	routedhost "github.com/libp2p/go-libp2p/p2p/host/routed"

	"github.com/aropeer/aropeer/bandwidth"
	"github.com/aropeer/aropeer/challenge"
	"github.com/aropeer/aropeer/compute"
	"github.com/aropeer/aropeer/liveness"
	"github.com/aropeer/aropeer/node/config"
	"github.com/aropeer/aropeer/proofs"
	"github.com/aropeer/aropeer/storage"
)

// challengeParams maps the network's parameters onto the engine's, with
// the genesis keepers of the node's config when the network has none.
func (n *Node) challengeParams() (challenge.Params, error) {
	nw := n.network
	keepers := nw.Keepers
	if len(keepers) == 0 {
		ks, err := n.cfg.GenesisKeepers()
		if err != nil {
			return challenge.Params{}, err
		}
		keepers = ks
	}
	p := challenge.Params{
		Network:       nw.Name,
		EpochRounds:   nw.EpochRounds,
		CommitteeSize: nw.CommitteeSize,
		Probability:   nw.Probability,
		Deadline:      nw.Deadline,
		Retries:       nw.Retries,
		Window:        nw.Window,
		Keepers:       keepers,
		ProbeRounds:   nw.ProbeRounds,
	}
	return p, p.Validate()
}

// manifest is the edge's manifest at start: liveness and the kinds its
// config offers. Its sequence number is the start time, so a restarted
// edge's manifest replaces the one before.
func (n *Node) manifest() (proofs.Manifest, error) {
	if err := n.restampFaults(); err != nil {
		return proofs.Manifest{}, err
	}
	m, err := n.buildManifest()
	m.Seq = uint64(n.started.UnixNano())
	return m, err
}

// buildManifest is the edge's manifest of now, without a sequence number:
// liveness, and storage when it holds pieces.
func (n *Node) buildManifest() (proofs.Manifest, error) {
	m := proofs.Manifest{
		Network: n.network.Name,
		Edge:    n.host.ID(),
		Offers:  []proofs.Offer{{Kind: proofs.KindLiveness}},
	}
	if n.pieces != nil {
		o, ok, err := n.storageOffer()
		if err != nil {
			return m, err
		}
		if ok {
			m.Offers = append(m.Offers, o)
		}
	}
	if n.offers(proofs.KindBandwidth) {
		b := n.cfg.Bandwidth
		m.Offers = append(m.Offers, proofs.Offer{Kind: proofs.KindBandwidth, UpMbit: b.UpMbit, DownMbit: b.DownMbit})
	}
	if n.offers(proofs.KindCompute) {
		m.Offers = append(m.Offers, proofs.Offer{Kind: proofs.KindCompute, Device: n.cfg.Compute.Device, MilliTOPS: n.cfg.Compute.MilliTOPS})
	}
	m.Normalize()
	return m, nil
}

// startChallenges runs the challenge engine on keepers and edges.
func (n *Node) startChallenges(ctx context.Context, wg *sync.WaitGroup) error {
	keeper, edge := n.cfg.HasRole(config.RoleKeeper), n.cfg.HasRole(config.RoleEdge)
	if !keeper && !edge {
		return nil
	}
	manifest, err := n.manifest()
	if err != nil {
		return err
	}
	if n.pieces != nil && len(manifest.Offers) == 1 {
		n.log.Warn("storage offered but no piece held: add one with aropeer store add FILE")
	}
	params, err := n.challengeParams()
	if len(params.Keepers) == 0 {
		// A devnet started by hand before its keepers were listed.
		n.log.Warn("no genesis keepers are known: challenges are off; list them in keepers in config.toml")
		return nil
	}
	if err != nil {
		return err
	}
	topics := map[string]*engineTopic{
		config.TopicChallenges: {},
		config.TopicReceipts:   {},
		config.TopicManifests:  {},
	}
	verifiers, err := n.verifiers()
	if err != nil {
		return err
	}
	if n.wrapVerifier != nil {
		for i, v := range verifiers {
			verifiers[i] = n.wrapVerifier(v)
		}
	}
	responders, err := n.responders(ctx)
	if err != nil {
		return err
	}
	if n.wrapResponder != nil {
		for i, r := range responders {
			responders[i] = n.wrapResponder(r)
		}
	}
	// Keepers reach edges they never met: the routed host finds an
	// edge's addresses through the DHT when the peerstore has none.
	routed := routedhost.Wrap(n.host, n.dht)
	eng, err := challenge.New(challenge.Config{
		Key:     n.key,
		Params:  params,
		Beacon:  n.feed,
		Streams: routed,
		Topics: challenge.Topics{
			Challenges: topics[config.TopicChallenges],
			Receipts:   topics[config.TopicReceipts],
			Manifests:  topics[config.TopicManifests],
		},
		Receipts:   n.receipts,
		Keeper:     keeper,
		Edge:       edge,
		Manifest:   manifest,
		Verifiers:  verifiers,
		Responders: responders,
		Log:        n.baseLog,
		Clock:      n.clock,
		Registry:   registryFunc(n.keepers),
	})
	if err != nil {
		return err
	}
	specs := []struct {
		kind     string
		domain   TopicSpec
		validate func(context.Context, peer.ID, []byte, peer.ID) pubsub.ValidationResult
	}{
		{config.TopicChallenges, TopicSpec{Domain: proofs.ChallengeDomain, MaxSize: proofs.MaxChallengeSize, Bundle: BundleEvery}, eng.ValidateChallenge},
		{config.TopicReceipts, TopicSpec{Domain: proofs.ReceiptDomain, MaxSize: proofs.MaxReceiptSize, Bundle: BundleEvery}, eng.ValidateReceipt},
		{config.TopicManifests, TopicSpec{Domain: proofs.ManifestDomain, MaxSize: proofs.MaxManifestSize, Repeats: true}, eng.ValidateManifest},
	}
	if keeper {
		n.challenges = newChallengeLog(n.db, n.network.DisputeEpochs+2)
	}
	for _, s := range specs {
		validate := s.validate
		keep := keeper && s.kind == config.TopicChallenges
		// Only keepers take in the keepers' topics; an edge publishes its
		// manifest on them and nothing else (see overlay).
		t, err := n.joinTopic(s.kind, s.domain, keeper, func(ctx context.Context, m Message) pubsub.ValidationResult {
			res := validate(ctx, m.From, m.Payload, m.Signer)
			if keep && res == pubsub.ValidationAccept {
				// Kept for evidence disputes against the keepers that
				// answer it with a pass.
				if err := n.challenges.add(m.Payload, m.Envelope); err != nil {
					n.log.Debug("challenge not kept", "err", err)
				}
			}
			return res
		})
		if err != nil {
			return err
		}
		*topics[s.kind] = *t
	}
	n.engine = eng
	ov := &overlay{host: routed, engine: eng, params: params, keeper: keeper, self: n.host.ID(), log: n.log}
	wg.Add(1)
	go func() { defer wg.Done(); ov.run(ctx, n.feed) }()
	records := &manifestRecords{
		d: n.dht, eng: eng, network: n.network.Name, edge: edge, keeper: keeper,
		log: n.log, clock: n.clock, every: 30 * time.Second,
	}
	wg.Add(1)
	go func() { defer wg.Done(); records.run(ctx) }()
	wg.Add(1)
	go func() {
		defer wg.Done()
		defer func() {
			for _, t := range topics {
				t.cancel()
			}
		}()
		if err := eng.Run(ctx); err != nil && ctx.Err() == nil {
			n.log.Error("challenge engine stopped", "err", err)
		}
	}()
	return nil
}

// joinTopic joins the network's topic of kind with spec and validate, and
// subscribes to it if subscribe: a topic joined but not subscribed to is
// one the node only publishes on, and its Next waits for the end.
func (n *Node) joinTopic(kind string, spec TopicSpec, subscribe bool, validate func(context.Context, Message) pubsub.ValidationResult) (*engineTopic, error) {
	spec.Name = n.network.Topic(kind)
	spec.Validate = validate
	t, err := n.gossip.Join(spec)
	if err != nil {
		return nil, err
	}
	if !subscribe {
		return &engineTopic{topic: t}, nil
	}
	sub, err := t.Subscribe()
	if err != nil {
		return nil, fmt.Errorf("node: subscribe %s: %w", spec.Name, err)
	}
	return &engineTopic{topic: t, sub: sub}, nil
}

// engineTopic gives the engine a topic without it knowing the node.
type engineTopic struct {
	topic *Topic
	sub   *Subscription
}

// cancel ends the subscription, if any.
func (t *engineTopic) cancel() {
	if t.sub != nil {
		t.sub.Cancel()
	}
}

func (t *engineTopic) Publish(ctx context.Context, env []byte) error {
	return t.topic.Publish(ctx, env)
}

func (t *engineTopic) Next(ctx context.Context) (challenge.Message, error) {
	if t.sub == nil {
		<-ctx.Done()
		return challenge.Message{}, ctx.Err()
	}
	m, err := t.sub.Next(ctx)
	if err != nil {
		return challenge.Message{}, err
	}
	return challenge.Message{Payload: m.Payload, Signer: m.Signer, Envelope: m.Envelope}, nil
}

// responders are the kinds this node answers: liveness always, storage
// when it keeps pieces, bandwidth and compute when it offers them.
func (n *Node) responders(ctx context.Context) ([]proofs.Responder, error) {
	rs := []proofs.Responder{liveness.NewResponder(n.key)}
	if n.pieces != nil {
		rs = append(rs, n.storageResponder(ctx))
	}
	if n.offers(proofs.KindBandwidth) {
		b := n.cfg.Bandwidth
		rs = append(rs, bandwidth.NewResponder(n.key,
			bandwidth.WithMaxConcurrent(b.MaxProbes),
			bandwidth.WithEpochBytes(uint64(b.EpochMiB)<<20),
			bandwidth.WithMaxProbeBytes(n.network.ProbeMaxBytes),
			bandwidth.WithLogger(n.baseLog.With("component", "bandwidth"))))
	}
	if n.offers(proofs.KindCompute) {
		r, err := n.computeResponder()
		if err != nil {
			return nil, err
		}
		rs = append(rs, r)
	}
	return rs, nil
}

// computeResponder answers compute checks with the configured executor,
// against the claim of the edge's current manifest.
func (n *Node) computeResponder() (*compute.Responder, error) {
	c := n.cfg.Compute
	var exec compute.Executor = &compute.CPU{}
	switch {
	case n.computeExec != nil:
		exec = n.computeExec
	case c.Executor == config.ExecutorExec:
		exec = &compute.Exec{Program: c.Program, Args: c.Args}
	}
	claim := func() (proofs.Offer, bool) { return n.engine.Manifest().Offer(proofs.KindCompute) }
	return compute.NewResponder(exec, claim,
		compute.WithParams(n.network.Compute),
		compute.WithMaxMemory(c.MaxMemoryMiB<<20),
		compute.WithLogger(n.baseLog.With("component", "compute")))
}

// verifiers are the kinds a keeper checks.
func (n *Node) verifiers() ([]proofs.Verifier, error) {
	claims := func(kind proofs.Kind) func(peer.ID) (proofs.Offer, bool) {
		return func(edge peer.ID) (proofs.Offer, bool) {
			m, ok := n.engine.ManifestOf(edge)
			if !ok {
				return proofs.Offer{}, false
			}
			return m.Offer(kind)
		}
	}
	// The whole committee probes an edge at once (challenge.Together).
	probers := func(c proofs.Challenge) int {
		ctx, cancel := context.WithTimeout(context.Background(), 2*time.Second)
		defer cancel()
		keepers, err := n.engine.CommitteeOf(ctx, c.Epoch, c.Edge)
		if err != nil {
			return 1
		}
		return len(keepers)
	}
	cv, err := compute.NewVerifier(claims(proofs.KindCompute),
		compute.WithRand(n.keeperRand),
		compute.WithParams(n.network.Compute),
		compute.WithLogger(n.baseLog.With("component", "compute")))
	if err != nil {
		return nil, err
	}
	return []proofs.Verifier{
		liveness.NewVerifier(),
		storage.NewVerifier(n.network.StorageLeaves),
		cv,
		bandwidth.NewVerifier(claims(proofs.KindBandwidth),
			bandwidth.WithProbers(probers),
			bandwidth.WithProbeDuration(n.network.ProbeDuration),
			bandwidth.WithMaxProbeBytes(n.network.ProbeMaxBytes),
			bandwidth.WithMinShare(n.network.Rates.MinShare),
			bandwidth.WithLogger(n.baseLog.With("component", "bandwidth"))),
	}, nil
}

// registryFunc gives the engine the ledger's keepers, or an earlier
// epoch's when the ledger cannot be read, or none without a ledger (the
// genesis list then stands).
func registryFunc(r *registry) func(context.Context, uint64) ([]challenge.Keeper, error) {
	if r == nil {
		return nil
	}
	return r.keepersOrLast
}
