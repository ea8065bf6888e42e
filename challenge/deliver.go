package challenge

import (
	"context"
	"fmt"
	"time"

	"github.com/libp2p/go-libp2p/core/network"
	"github.com/libp2p/go-libp2p/core/peer"
	"github.com/libp2p/go-libp2p/core/protocol"

	"github.com/aropeer/aropeer/proofs"
	"github.com/aropeer/aropeer/wire"
)

// ReceiptProtocol delivers a receipt to its edge: the keeper opens a
// stream, writes the sealed receipt as one frame and closes. Edges do not
// take in the receipts topic, which carries the whole network's receipts;
// they get their own this way, and catch up on any they missed when the
// epoch ends.
const ReceiptProtocol protocol.ID = "/aro/receipt/1.0.0"

// deliverTimeout bounds one delivery, both sides.
const deliverTimeout = 10 * time.Second

// deliver sends a receipt to its edge; an edge that cannot be reached
// fetches it at the epoch's catch-up.
func (e *Engine) deliver(ctx context.Context, edge peer.ID, env []byte) {
	ctx, cancel := context.WithTimeout(ctx, deliverTimeout)
	defer cancel()
	s, err := e.cfg.Streams.NewStream(ctx, edge, ReceiptProtocol)
	if err != nil {
		e.log.Debug("receipt not delivered", "edge", edge, "err", err)
		return
	}
	stop := wire.ResetOnDone(ctx, s)
	defer stop()
	if err := wire.WriteFrame(s, env, time.Now().Add(deliverTimeout)); err != nil {
		s.Reset()
		e.log.Debug("receipt not delivered", "edge", edge, "err", err)
		return
	}
	s.Close()
}

// serveReceipt takes a receipt delivered to this edge: sealed by the
// keeper that sends it, about this edge, for a challenge the schedule
// called for.
func (e *Engine) serveReceipt(ctx context.Context) network.StreamHandler {
	return func(s network.Stream) {
		defer s.Close()
		if err := e.takeReceipt(ctx, s); err != nil {
			s.Reset()
			e.log.Debug("delivered receipt refused", "from", s.Conn().RemotePeer(), "err", err)
		}
	}
}

func (e *Engine) takeReceipt(ctx context.Context, s network.Stream) error {
	env, err := wire.ReadFrame(s, proofs.MaxReceiptSize, time.Now().Add(deliverTimeout))
	if err != nil {
		return err
	}
	r, _, err := proofs.OpenReceipt(env)
	if err != nil {
		return err
	}
	if r.Edge != e.self || r.Keeper != s.Conn().RemotePeer() {
		return fmt.Errorf("receipt of keeper %s about %s", r.Keeper, r.Edge)
	}
	ctx, cancel := context.WithTimeout(ctx, deliverTimeout)
	defer cancel()
	if err := e.checkReceipt(ctx, r); err != nil {
		return err
	}
	_, _, _, err = e.cfg.Receipts.Put(env)
	return err
}
