package node

import (
	"context"
	"encoding/binary"
	"fmt"
	"slices"
	"strings"

	"github.com/ipfs/go-cid"

	"github.com/aropeer/aropeer/node/config"
	"github.com/aropeer/aropeer/proofs"
	"github.com/aropeer/aropeer/storage"
	"github.com/aropeer/aropeer/storage/pieces"
	"github.com/aropeer/aropeer/store"
)

// faultsNamespace keeps the rounds in which this edge declared its pieces
// faulty, so that a restart declares nothing twice and forgets nothing.
const faultsNamespace = "faults"

// offers reports whether this node is an edge that offers kind k.
func (n *Node) offers(k proofs.Kind) bool {
	return n.cfg.HasRole(config.RoleEdge) && slices.Contains(n.cfg.Offered(), string(k))
}

// openPieces opens the piece store of an edge that offers storage.
func (n *Node) openPieces() error {
	if !n.offers(proofs.KindStorage) {
		return nil
	}
	ps, err := pieces.Open(n.db, config.Datadir(n.dataDir).PiecesPath())
	if err != nil {
		return err
	}
	n.pieces = ps
	return nil
}

// Pieces returns the edge's piece store; nil on a node that stores none.
func (n *Node) Pieces() *pieces.Store { return n.pieces }

// storageOffer is the storage offer of the pieces held, with the faults
// declared; false when the edge holds no piece.
func (n *Node) storageOffer() (proofs.Offer, bool, error) {
	list, err := n.pieces.List()
	if err != nil {
		return proofs.Offer{}, false, err
	}
	if len(list) == 0 {
		return proofs.Offer{}, false, nil
	}
	o := proofs.Offer{Kind: proofs.KindStorage}
	for _, p := range list {
		piece := proofs.Piece{CID: p.CID, Size: p.Padded}
		piece.FaultRound, piece.Faulty = faultOf(n.db, p.CID)
		o.Pieces = append(o.Pieces, piece)
	}
	slices.SortFunc(o.Pieces, func(a, b proofs.Piece) int { return strings.Compare(a.CID.KeyString(), b.CID.KeyString()) })
	return o, true, nil
}

// faultOf returns the round piece was declared faulty in, if it was.
func faultOf(db *store.DB, piece cid.Cid) (uint64, bool) {
	v, err := db.Namespace(faultsNamespace).Get(piece.Bytes())
	if err != nil || len(v) != 8 {
		return 0, false
	}
	return binary.BigEndian.Uint64(v), true
}

// recordFault records piece as faulty from round, unless it already is;
// it reports whether it recorded it.
func recordFault(db *store.DB, piece cid.Cid, round uint64) (bool, error) {
	faults := db.Namespace(faultsNamespace)
	if have, err := faults.Has(piece.Bytes()); err != nil || have {
		return false, err
	}
	b := faults.Batch()
	b.Set(piece.Bytes(), binary.BigEndian.AppendUint64(nil, round))
	if err := b.Commit(); err != nil {
		return false, fmt.Errorf("node: declare piece %s faulty: %w", piece, err)
	}
	return true, nil
}

// restampFaults moves the faults recorded while the node was stopped (by
// `aropeer store verify`) to the current round: keepers take a fault
// only if it is declared in the round it reaches them, and the edge's
// start is when it does.
func (n *Node) restampFaults() error {
	round := n.network.Beacon.RoundAt(n.clock.Now())
	faults := n.db.Namespace(faultsNamespace)
	b := faults.Batch()
	err := faults.Iterate(nil, func(k, v []byte) error {
		if len(v) == 8 && binary.BigEndian.Uint64(v)+1 < round {
			b.Set(k, binary.BigEndian.AppendUint64(nil, round))
		}
		return nil
	})
	if err != nil || b.Len() == 0 {
		return err
	}
	return b.Commit()
}

// DeclareFault records piece as faulty from the current round and
// publishes the manifest that says so. A piece already declared stays as
// it was.
func (n *Node) DeclareFault(ctx context.Context, piece cid.Cid, why error) error {
	round := n.network.Beacon.RoundAt(n.clock.Now())
	if recorded, err := recordFault(n.db, piece, round); err != nil || !recorded {
		return err
	}
	n.log.Warn("piece damaged: declared faulty", "piece", piece, "round", round, "excused_from", proofs.FaultFrom(round), "why", why)
	return n.RefreshManifest(ctx)
}

// RefreshManifest publishes the edge's manifest anew if the pieces or
// faults it offers changed.
func (n *Node) RefreshManifest(ctx context.Context) error {
	if n.engine == nil || !n.cfg.HasRole(config.RoleEdge) {
		return nil
	}
	n.manifestMu.Lock()
	defer n.manifestMu.Unlock()
	m, err := n.buildManifest()
	if err != nil {
		return err
	}
	cur := n.engine.Manifest()
	if sameOffers(cur.Offers, m.Offers) {
		return nil
	}
	m.Seq = max(cur.Seq+1, uint64(n.clock.Now().UnixNano()))
	return n.engine.UpdateManifest(ctx, m)
}

func sameOffers(a, b []proofs.Offer) bool {
	return slices.EqualFunc(a, b, func(x, y proofs.Offer) bool {
		return x.Kind == y.Kind && slices.EqualFunc(x.Pieces, y.Pieces, func(p, q proofs.Piece) bool {
			return p.CID.Equals(q.CID) && p.Size == q.Size && p.Faulty == q.Faulty && p.FaultRound == q.FaultRound
		})
	})
}

// storageResponder answers storage challenges from the piece store and
// declares the faults it finds.
func (n *Node) storageResponder(ctx context.Context) proofs.Responder {
	damaged := func(piece cid.Cid, why error) {
		if err := n.DeclareFault(ctx, piece, why); err != nil {
			n.log.Error("fault not declared", "piece", piece, "err", err)
		}
	}
	if n.hideFaults {
		damaged = nil
	}
	return storage.NewResponder(n.pieces, n.network.StorageLeaves, damaged, n.baseLog.With("component", "storage"))
}
