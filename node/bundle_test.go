package node_test

import (
	"context"
	"errors"
	"fmt"
	"testing"
	"time"

	pubsub "github.com/libp2p/go-libp2p-pubsub"
	"github.com/libp2p/go-libp2p/core/crypto"
	"github.com/libp2p/go-libp2p/core/peer"

	"github.com/aropeer/aropeer/node"
	"github.com/aropeer/aropeer/wire"
)

// TestBundledTopic: on a topic of bundles, what a node publishes reaches
// a subscriber envelope by envelope, each judged on its own: one the
// subscriber ignores is left out and the rest of its bundle delivered;
// a bundle holding one it rejects is refused whole and costs its sender
// its score.
func TestBundledTopic(t *testing.T) {
	ctx, cancel := context.WithTimeout(context.Background(), 60*time.Second)
	defer cancel()
	tn := startNetwork(t, ctx, 0, 2)
	a, b := tn.edges[0], tn.edges[1]
	if err := a.Host().Connect(ctx, peer.AddrInfo{ID: b.Host().ID(), Addrs: b.Host().Addrs()}); err != nil {
		t.Fatal(err)
	}
	const name = "/aro/test/bundles"
	// a sends anything; b ignores "later" and rejects "forged".
	ta, err := a.Gossip().Join(node.TopicSpec{Name: name, Domain: testDomain, Bundle: 50 * time.Millisecond})
	if err != nil {
		t.Fatal(err)
	}
	tb, err := b.Gossip().Join(node.TopicSpec{Name: name, Domain: testDomain, Bundle: 50 * time.Millisecond,
		Validate: func(_ context.Context, m node.Message) pubsub.ValidationResult {
			switch string(m.Payload) {
			case "later":
				return pubsub.ValidationIgnore
			case "forged":
				return pubsub.ValidationReject
			}
			return pubsub.ValidationAccept
		}})
	if err != nil {
		t.Fatal(err)
	}
	sub, err := tb.Subscribe()
	if err != nil {
		t.Fatal(err)
	}
	defer sub.Cancel()
	key := a.Host().Peerstore().PrivKey(a.Host().ID())
	seal := func(text string) []byte {
		env, err := wire.Seal(key, testDomain, []byte(text))
		if err != nil {
			t.Fatal(err)
		}
		return env
	}
	awaitHearing(t, ctx, sub, func(i int) []byte { return seal(fmt.Sprintf("probe %d", i)) }, ta)

	const burst = 300
	for i := range burst {
		if i == burst/2 {
			if err := ta.Publish(ctx, seal("later")); err != nil {
				t.Fatal(err)
			}
		}
		if err := ta.Publish(ctx, seal(fmt.Sprintf("message %d", i))); err != nil {
			t.Fatal(err)
		}
	}
	seen := make(map[string]bool)
	for len(seen) < burst {
		m, err := sub.Next(ctx)
		if err != nil {
			t.Fatalf("the subscriber got %d of %d envelopes: %v", len(seen), burst, err)
		}
		switch {
		case string(m.Payload) == "later":
			t.Fatal("an ignored envelope was delivered")
		case m.Signer != a.Host().ID() || m.From != a.Host().ID():
			t.Fatalf("%q signed by %s from %s, want %s", m.Payload, m.Signer, m.From, a.Host().ID())
		}
		if _, err := fmt.Sscanf(string(m.Payload), "message %d", new(int)); err == nil {
			seen[string(m.Payload)] = true
		}
	}

	// A bundle with a forged envelope among good ones: nothing of it is
	// delivered, and its sender falls below zero.
	for i := range 3 {
		if err := ta.Publish(ctx, seal(fmt.Sprintf("beside the forgery %d", i))); err != nil {
			t.Fatal(err)
		}
	}
	if err := ta.Publish(ctx, seal("forged")); err != nil {
		t.Fatal(err)
	}
	eventually(t, 20*time.Second, "b scores a below zero", func() bool {
		s, ok := b.Gossip().Score(a.Host().ID())
		return ok && s < 0
	})
	pctx, pcancel := context.WithTimeout(ctx, 500*time.Millisecond)
	defer pcancel()
	if m, err := sub.Next(pctx); err == nil {
		t.Fatalf("delivered %q from a rejected bundle", m.Payload)
	}
}

// TestOpenBundle: a bundle opens to the envelopes sealed in it, and only
// when each of them is its signer's, of its domain and within the cap.
func TestOpenBundle(t *testing.T) {
	keyA, keyB := testKey(t), testKey(t)
	seal := func(key crypto.PrivKey, d wire.Domain, text string) []byte {
		env, err := wire.Seal(key, d, []byte(text))
		if err != nil {
			t.Fatal(err)
		}
		return env
	}
	a1, a2 := seal(keyA, testDomain, "one"), seal(keyA, testDomain, "two")
	b, err := node.SealBundle(keyA, testDomain, [][]byte{a1, a2})
	if err != nil {
		t.Fatal(err)
	}
	signer, msgs, err := node.OpenBundle(b, testDomain, 1<<10)
	if err != nil {
		t.Fatal(err)
	}
	idA, _ := peer.IDFromPrivateKey(keyA)
	if signer != idA || len(msgs) != 2 || string(msgs[0].Payload) != "one" || string(msgs[1].Payload) != "two" ||
		msgs[1].Signer != idA || string(msgs[1].Envelope) != string(a2) {
		t.Fatalf("opened %s %+v", signer, msgs)
	}

	other := wire.Domain{Name: "aro-other", PayloadType: "/aro/other"}
	cases := map[string]struct {
		bundle []byte
		want   error
	}{
		"another signer's envelope":  {must(node.SealBundle(keyA, testDomain, [][]byte{a1, seal(keyB, testDomain, "theirs")})), node.ErrBadBundle},
		"another domain's envelope":  {must(node.SealBundle(keyA, testDomain, [][]byte{a1, seal(keyA, other, "elsewhere")})), wire.ErrWrongPayloadType},
		"an envelope over the cap":   {must(node.SealBundle(keyA, testDomain, [][]byte{seal(keyA, testDomain, string(make([]byte, 2<<10)))})), wire.ErrTooLarge},
		"a bundle of another domain": {must(node.SealBundle(keyA, other, [][]byte{seal(keyA, other, "x")})), wire.ErrWrongPayloadType},
		"a lone envelope":            {a1, wire.ErrWrongPayloadType},
	}
	for name, c := range cases {
		if _, _, err := node.OpenBundle(c.bundle, testDomain, 1<<10); !errors.Is(err, c.want) {
			t.Errorf("%s: got %v, want %v", name, err, c.want)
		}
	}
	if _, err := node.SealBundle(keyA, testDomain, nil); !errors.Is(err, node.ErrBadBundle) {
		t.Errorf("an empty bundle sealed: %v", err)
	}
	if _, err := node.SealBundle(keyA, testDomain, make([][]byte, 1025)); !errors.Is(err, node.ErrBadBundle) {
		t.Errorf("a bundle of 1,025 sealed: %v", err)
	}
}

// FuzzOpenBundle: no input panics OpenBundle, and what it opens is its
// signer's.
func FuzzOpenBundle(f *testing.F) {
	key := testKey(f)
	env, err := wire.Seal(key, testDomain, []byte("one"))
	if err != nil {
		f.Fatal(err)
	}
	b, err := node.SealBundle(key, testDomain, [][]byte{env, env})
	if err != nil {
		f.Fatal(err)
	}
	f.Add(b)
	f.Add(env)
	f.Fuzz(func(t *testing.T, data []byte) {
		signer, msgs, err := node.OpenBundle(data, testDomain, 1<<10)
		if err != nil {
			return
		}
		if len(msgs) == 0 {
			t.Fatal("opened an empty bundle")
		}
		for _, m := range msgs {
			if m.Signer != signer || len(m.Envelope) > 1<<10 {
				t.Fatalf("opened %+v in a bundle of %s", m, signer)
			}
		}
	})
}

func testKey(t testing.TB) crypto.PrivKey {
	t.Helper()
	k, _, err := crypto.GenerateEd25519Key(nil)
	if err != nil {
		t.Fatal(err)
	}
	return k
}

func must(b []byte, err error) []byte {
	if err != nil {
		panic(err)
	}
	return b
}
