package node

import (
	"context"
	"crypto/sha256"
	"errors"
	"fmt"
	"log/slog"
	"net"
	"sync"
	"time"

	pubsub "github.com/libp2p/go-libp2p-pubsub"
	pb "github.com/libp2p/go-libp2p-pubsub/pb"
	"github.com/libp2p/go-libp2p/core/crypto"
	"github.com/libp2p/go-libp2p/core/host"
	"github.com/libp2p/go-libp2p/core/peer"

	"github.com/aropeer/aropeer/wire"
)

// maxGossipMessage caps any message on any topic; a topic may set a lower cap.
const maxGossipMessage = 1 << 20

// TopicSpec describes one topic a package publishes on and validates.
type TopicSpec struct {
	// Name is the full topic name, such as "/aro/devnet/receipts".
	Name string
	// Domain is the envelope domain every message on the topic is sealed with.
	Domain wire.Domain
	// MaxSize caps one envelope; zero means maxGossipMessage.
	MaxSize int
	// Validate judges a message whose envelope has opened; nil accepts it.
	// Return Reject for what is provably bad, Ignore for what cannot be
	// judged yet.
	Validate func(ctx context.Context, m Message) pubsub.ValidationResult
	// Score overrides the topic's default score parameters.
	Score *pubsub.TopicScoreParams
	// Repeats marks a topic whose messages are published again with the
	// same bytes: a manifest re-announced for keepers that missed it, a
	// work report sent again in case the first went nowhere, a batch
	// signature sent again until the ledger holds its epoch. Its messages
	// are named by sender and number, not by content, or every repeat
	// would be dropped, first by the publisher itself, as one already
	// seen.
	Repeats bool
	// Bundle, when set, makes the topic carry bundles (bundle.go), at most
	// one each Bundle: Publish queues an envelope for the next, which
	// leaves at once if the last left Bundle ago or more; subscribers get
	// each envelope on its own.
	Bundle time.Duration
}

// Message is a gossiped envelope that has been opened and verified.
type Message struct {
	From     peer.ID // the peer that forwarded it to us
	Signer   peer.ID // the peer that sealed the envelope
	Payload  []byte  // canonical CBOR of the message
	Envelope []byte  // the sealed envelope as received
}

// Gossip is the node's gossipsub router and the topics it joined.
type Gossip struct {
	ps   *pubsub.PubSub
	self peer.ID
	key  crypto.PrivKey // seals our bundles
	ctx  context.Context
	mesh *meshTracer
	log  *slog.Logger

	mu     sync.Mutex
	topics map[string]*Topic
	scores map[peer.ID]float64
}

// gossipParams are what a network tunes in gossipsub.
type gossipParams struct {
	// trusted networks are exempt from the IP colocation penalty: loopback
	// on a devnet, simulated address ranges in a simulation.
	trusted []*net.IPNet
	// bootstrap peers are trusted for peer exchange.
	bootstrap []peer.ID
	// exchange sends peers in prunes, as a bootstrap node does: its
	// app-specific score alone lifts it over the threshold at which a
	// node accepts peer exchange (bootstrapScore). Another node's would
	// mostly be refused, and each costs the pruner a score of every peer
	// of the topic: keepers pruning the edges that graft to them made a
	// thousand-edge network's first rounds a sixth slower.
	exchange bool
	// keeper keeps a small mesh (gossipSubParams): a keeper that is not
	// also a bootstrap node, whose mesh edges look to for beacons.
	keeper bool
	// scoreInspect is how often the score snapshot is refreshed.
	scoreInspect time.Duration
}

func newGossip(ctx context.Context, h host.Host, p gossipParams, log *slog.Logger) (*Gossip, error) {
	g := &Gossip{
		self:   h.ID(),
		key:    h.Peerstore().PrivKey(h.ID()),
		ctx:    ctx,
		mesh:   newMeshTracer(),
		log:    log,
		topics: make(map[string]*Topic),
	}
	ps, err := pubsub.NewGossipSub(ctx, h,
		// Our messages are envelopes their signer sealed, verified by the
		// topic's validator; a gossipsub signature as well would double
		// the cost of every message at every hop. Messages are named by
		// their content, since nothing authenticates the sender and number
		// an unsigned one carries (topics that repeat a message differ:
		// TopicSpec.Repeats).
		// LaxNoSign still checks a signature a foreign message carries,
		// such as drand's relays put on beacons.
		pubsub.WithMessageSignaturePolicy(pubsub.LaxNoSign),
		pubsub.WithMessageIdFn(contentID),
		pubsub.WithPeerExchange(p.exchange),
		pubsub.WithGossipSubParams(gossipSubParams(p.keeper)),
		pubsub.WithPeerOutboundQueueSize(outboundQueue),
		pubsub.WithValidateQueueSize(gossipQueue),
		pubsub.WithFloodPublish(true),
		pubsub.WithMaxMessageSize(maxGossipMessage),
		pubsub.WithPeerScore(peerScoreParams(p.trusted, p.bootstrap), peerScoreThresholds()),
		pubsub.WithPeerScoreInspect(g.setScores, p.scoreInspect),
		pubsub.WithRawTracer(g.mesh),
		// gossipsub narrates its life at info; we keep its warnings.
		pubsub.WithLogger(slog.New(gossipLogHandler(log.Handler()))),
	)
	if err != nil {
		return nil, fmt.Errorf("node: start gossipsub: %w", err)
	}
	g.ps = ps
	return g, nil
}

// gossipQueue is how many received messages gossipsub holds for
// validation, and for each subscription, where its default is 32; and
// outboundQueue how many it holds to send to one peer. A keeper sends
// its challenges and receipts in bursts, and a node short of CPU for a
// moment would otherwise drop messages for good: in a topic of a few
// keepers, all of them in each other's mesh, no gossip brings a dropped
// message back. Before keepers bundled them (bundle.go), a keeper sent
// another some 1,400 messages a round in a network of 1,000 edges, and a
// queue of 256 dropped most of each burst; 4,096 is about three rounds
// of that. A peer further behind is better served by the epoch's
// catch-up than by a queue of stale messages.
const (
	gossipQueue   = 1024
	outboundQueue = 4096
)

// gossipSubParams are gossipsub's defaults but for peer exchange: a
// peer pruned from a mesh is offered D peers, enough to fill a mesh of
// its own, not 16; each one it dials costs a home edge a connection and
// its streams, and in a simulation of a thousand edges a third of the
// machine's memory. Those peers are dialled one at a time, not eight:
// each dialler is a goroutine that waits the node's life, for dials
// that come a few at a time when a mesh is pruned.
//
// A keeper's mesh is of 2 to 4 peers, not 6 to 12. Its topics are the
// keepers' own, and every keeper is connected to every other (overlay),
// so a publisher's flood reaches them all in one hop; the mesh only
// repairs a lost connection, as gossip does. Each keeper that received
// a message also sends it to each of its mesh peers, which have it
// already: before IDONTWANT can stop it, since it arrives a link's
// latency later. With 10 keepers a bundle was sent 63 times for 9
// keepers, and 25 times with this mesh; the thousand-edge network's
// epoch allocated 27% less. Edges hold a mesh of their few public peers,
// and bootstrap nodes keep the wide one edges graft to.
func gossipSubParams(keeper bool) pubsub.GossipSubParams {
	p := pubsub.DefaultGossipSubParams()
	if keeper {
		// Dout, the mesh peers a node must have dialled itself, is 0:
		// gossipsub wants it under D/2. Sybils grafting to a keeper
		// cannot cut it off all the same: it dials every keeper, and
		// each keeper's flood reaches it over that connection.
		p.D, p.Dlo, p.Dhi, p.Dscore, p.Dout = 2, 1, 4, 1, 0
	}
	p.PrunePeers = p.D
	p.Connectors = 1
	return p
}

// contentID names a message by the SHA-256 of its data.
func contentID(m *pb.Message) string {
	sum := sha256.Sum256(m.Data)
	return string(sum[:])
}

// Join joins a topic with its validator and score parameters. Joining the
// same name twice is an error: one package owns each topic.
func (g *Gossip) Join(spec TopicSpec) (*Topic, error) {
	spec.MaxSize = capSize(spec.MaxSize)
	if spec.Bundle <= 0 {
		return g.join(spec, validator(spec))
	}
	if g.key == nil {
		return nil, fmt.Errorf("node: topic %s: no key to seal bundles with", spec.Name)
	}
	t, err := g.join(spec, bundleValidator(spec))
	if err != nil {
		return nil, err
	}
	t.bundler = &bundler{
		ctx: g.ctx, key: g.key, domain: spec.Domain, every: spec.Bundle,
		publish: t.publish, log: g.log.With("topic", spec.Name),
	}
	return t, nil
}

// capSize is a topic's cap on one message: its own, within the router's.
func capSize(n int) int {
	if n <= 0 || n > maxGossipMessage {
		return maxGossipMessage
	}
	return n
}

func (g *Gossip) join(spec TopicSpec, val pubsub.ValidatorEx) (*Topic, error) {
	g.mu.Lock()
	defer g.mu.Unlock()
	if _, ok := g.topics[spec.Name]; ok {
		return nil, fmt.Errorf("node: topic %s joined twice", spec.Name)
	}
	if err := g.ps.RegisterTopicValidator(spec.Name, val); err != nil {
		return nil, fmt.Errorf("node: validator for %s: %w", spec.Name, err)
	}
	var opts []pubsub.TopicOpt
	if spec.Repeats {
		opts = append(opts, pubsub.WithTopicMessageIdFn(pubsub.DefaultMsgIdFn))
	}
	t, err := g.ps.Join(spec.Name, opts...)
	if err != nil {
		return nil, fmt.Errorf("node: join %s: %w", spec.Name, err)
	}
	score := spec.Score
	if score == nil {
		score = defaultTopicScore()
	}
	if err := t.SetScoreParams(score); err != nil {
		return nil, fmt.Errorf("node: score parameters for %s: %w", spec.Name, err)
	}
	topic := &Topic{t: t, spec: spec}
	g.topics[spec.Name] = topic
	return topic, nil
}

// RawTopicSpec describes a topic whose messages are not our envelopes,
// such as drand's beacon topic, which carries drand's own format.
type RawTopicSpec struct {
	Name    string
	MaxSize int
	// Validate judges the raw message bytes from a forwarding peer.
	Validate func(ctx context.Context, from peer.ID, data []byte) pubsub.ValidationResult
	Score    *pubsub.TopicScoreParams
}

// JoinRaw joins a topic of foreign messages. Its subscribers get each
// valid message with Payload and Envelope both set to the raw bytes and no
// Signer.
func (g *Gossip) JoinRaw(spec RawTopicSpec) (*Topic, error) {
	spec.MaxSize = capSize(spec.MaxSize)
	return g.join(TopicSpec{Name: spec.Name, MaxSize: spec.MaxSize, Score: spec.Score}, rawValidator(spec))
}

func rawValidator(spec RawTopicSpec) pubsub.ValidatorEx {
	return func(ctx context.Context, from peer.ID, msg *pubsub.Message) pubsub.ValidationResult {
		if len(msg.Data) > spec.MaxSize {
			return pubsub.ValidationReject
		}
		res := pubsub.ValidationAccept
		if spec.Validate != nil {
			res = spec.Validate(ctx, from, msg.Data)
		}
		if res == pubsub.ValidationAccept {
			msg.ValidatorData = Message{From: from, Payload: msg.Data, Envelope: msg.Data}
		}
		return res
	}
}

// validator opens the envelope, so a package's validator sees only
// messages whose signature verified under the topic's domain.
func validator(spec TopicSpec) pubsub.ValidatorEx {
	return func(ctx context.Context, from peer.ID, msg *pubsub.Message) pubsub.ValidationResult {
		payload, signer, err := wire.Open(msg.Data, spec.Domain, spec.MaxSize)
		if err != nil {
			return pubsub.ValidationReject
		}
		m := Message{From: from, Signer: signer, Payload: payload, Envelope: msg.Data}
		res := pubsub.ValidationAccept
		if spec.Validate != nil {
			res = spec.Validate(ctx, m)
		}
		if res == pubsub.ValidationAccept {
			msg.ValidatorData = m
		}
		return res
	}
}

// bundleValidator opens a bundle and judges each envelope in it as
// validator does one sent alone. The bundle is rejected if any envelope
// is, since its sender sealed them all; otherwise subscribers get those
// accepted, and it is forwarded if any was.
func bundleValidator(spec TopicSpec) pubsub.ValidatorEx {
	return func(ctx context.Context, from peer.ID, msg *pubsub.Message) pubsub.ValidationResult {
		_, msgs, err := OpenBundle(msg.Data, spec.Domain, spec.MaxSize)
		if err != nil {
			return pubsub.ValidationReject
		}
		accepted := msgs[:0]
		for _, m := range msgs {
			m.From = from
			res := pubsub.ValidationAccept
			if spec.Validate != nil {
				res = spec.Validate(ctx, m)
			}
			switch res {
			case pubsub.ValidationReject:
				return res
			case pubsub.ValidationAccept:
				accepted = append(accepted, m)
			}
		}
		if len(accepted) == 0 {
			return pubsub.ValidationIgnore
		}
		msg.ValidatorData = accepted
		return pubsub.ValidationAccept
	}
}

// MeshSizes returns, for each joined topic, the number of peers in our mesh.
func (g *Gossip) MeshSizes() map[string]int {
	g.mu.Lock()
	names := make([]string, 0, len(g.topics))
	for name := range g.topics {
		names = append(names, name)
	}
	g.mu.Unlock()
	sizes := make(map[string]int, len(names))
	for _, name := range names {
		sizes[name] = g.mesh.size(name)
	}
	return sizes
}

// Score returns the latest gossipsub score we hold for p.
func (g *Gossip) Score(p peer.ID) (float64, bool) {
	g.mu.Lock()
	defer g.mu.Unlock()
	s, ok := g.scores[p]
	return s, ok
}

func (g *Gossip) setScores(scores map[peer.ID]float64) {
	g.mu.Lock()
	g.scores = scores
	g.mu.Unlock()
}

// Topic is one joined topic. Lower packages take it through narrow
// interfaces of their own (a publisher, a subscription), never the node.
type Topic struct {
	t       *pubsub.Topic
	spec    TopicSpec
	bundler *bundler // set on a topic of bundles
}

// Name returns the topic's full name.
func (t *Topic) Name() string { return t.spec.Name }

// Publish gossips a sealed envelope. It runs our own validator first, so a
// message that the network would reject never leaves this node. On a
// topic of bundles it queues the envelope for the next bundle.
func (t *Topic) Publish(ctx context.Context, envelope []byte) error {
	if t.bundler != nil {
		t.bundler.add(envelope)
		return nil
	}
	return t.publish(ctx, envelope)
}

func (t *Topic) publish(ctx context.Context, envelope []byte) error {
	if err := t.t.Publish(ctx, envelope); err != nil {
		return fmt.Errorf("node: publish on %s: %w", t.spec.Name, err)
	}
	return nil
}

// Subscribe delivers every valid message on the topic, our own included.
func (t *Topic) Subscribe() (*Subscription, error) {
	sub, err := t.t.Subscribe(pubsub.WithBufferSize(gossipQueue))
	if err != nil {
		return nil, fmt.Errorf("node: subscribe %s: %w", t.spec.Name, err)
	}
	return &Subscription{sub: sub}, nil
}

// Subscription is a stream of validated messages on one topic.
type Subscription struct {
	sub     *pubsub.Subscription
	bundled []Message // the rest of the last bundle
}

// ErrClosed is returned by Next once the subscription is cancelled.
var ErrClosed = errors.New("node: subscription closed")

// Next blocks until the next valid message or the end of ctx. It is for
// one goroutine: the rest of a bundle waits in the subscription.
func (s *Subscription) Next(ctx context.Context) (Message, error) {
	if len(s.bundled) > 0 {
		m := s.bundled[0]
		s.bundled = s.bundled[1:]
		return m, nil
	}
	msg, err := s.sub.Next(ctx)
	if err != nil {
		if ctx.Err() != nil {
			return Message{}, ctx.Err()
		}
		return Message{}, ErrClosed
	}
	if ms, ok := msg.ValidatorData.([]Message); ok && len(ms) > 0 {
		s.bundled = ms[1:]
		return ms[0], nil
	}
	m, ok := msg.ValidatorData.(Message)
	if !ok {
		return Message{}, fmt.Errorf("node: message on %s without validator data", s.sub.Topic())
	}
	return m, nil
}

// Cancel ends the subscription.
func (s *Subscription) Cancel() { s.sub.Cancel() }

// gossipLogHandler keeps gossipsub's warnings, less one: pubsub's tag
// tracer warns on every message it delivers whose peer tag it cannot
// bump, which is every message on a host whose connection manager keeps
// no decaying tags (in-memory hosts), and every message of a burst on a
// busy keeper, whose decayer takes 128 bumps at a time. A lost bump only
// weakens one peer's protection from pruning a little; a warning per
// message would bury the node's log and cost a keeper CPU in a burst.
func gossipLogHandler(out slog.Handler) slog.Handler {
	return dropMessage{minLevel{out, slog.LevelWarn}, "error bumping delivery tag"}
}

// dropMessage drops the records of one message from a handler.
type dropMessage struct {
	slog.Handler
	msg string
}

func (h dropMessage) Handle(ctx context.Context, r slog.Record) error {
	if r.Message == h.msg {
		return nil
	}
	return h.Handler.Handle(ctx, r)
}

func (h dropMessage) WithAttrs(as []slog.Attr) slog.Handler {
	return dropMessage{h.Handler.WithAttrs(as), h.msg}
}

func (h dropMessage) WithGroup(name string) slog.Handler {
	return dropMessage{h.Handler.WithGroup(name), h.msg}
}

// minLevel drops records below a level from a handler.
type minLevel struct {
	slog.Handler
	min slog.Level
}

func (h minLevel) Enabled(ctx context.Context, l slog.Level) bool {
	return l >= h.min && h.Handler.Enabled(ctx, l)
}

func (h minLevel) WithAttrs(as []slog.Attr) slog.Handler {
	return minLevel{h.Handler.WithAttrs(as), h.min}
}

func (h minLevel) WithGroup(name string) slog.Handler {
	return minLevel{h.Handler.WithGroup(name), h.min}
}
