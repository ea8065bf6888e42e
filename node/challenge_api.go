package node

import (
	"errors"
	"fmt"
	"net/http"
	"strconv"

	"github.com/ipfs/go-cid"
	"github.com/libp2p/go-libp2p/core/peer"

	"github.com/aropeer/aropeer/node/api"
	"github.com/aropeer/aropeer/proofs"
	"github.com/aropeer/aropeer/store"
)

// API paths of the challenge engine.
const (
	ChallengesPath = "/v1/challenges"
	ReceiptsPath   = "/v1/receipts"
)

// maxListedReceipts caps one listing; the CLI pages with filters.
const maxListedReceipts = 10000

func (n *Node) challengesHandler() http.Handler {
	return http.HandlerFunc(func(w http.ResponseWriter, _ *http.Request) {
		if n.engine == nil {
			api.WriteError(w, http.StatusNotFound, errors.New("this node is neither a keeper nor an edge: it runs no challenges"))
			return
		}
		api.WriteJSON(w, http.StatusOK, n.engine.Recent())
	})
}

func (n *Node) receiptsHandler() http.Handler {
	return http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		f, err := ParseReceiptFilter(r.URL.Query().Get("epoch"), r.URL.Query().Get("edge"), r.URL.Query().Get("kind"), r.URL.Query().Get("limit"))
		if err != nil {
			api.WriteError(w, http.StatusBadRequest, err)
			return
		}
		out, err := ListReceipts(n.receipts, f)
		if err != nil {
			api.WriteError(w, http.StatusInternalServerError, err)
			return
		}
		api.WriteJSON(w, http.StatusOK, out)
	})
}

func (n *Node) receiptHandler() http.Handler {
	return http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		id, err := cid.Decode(r.PathValue("cid"))
		if err != nil {
			api.WriteError(w, http.StatusBadRequest, fmt.Errorf("%q is not a receipt CID", r.PathValue("cid")))
			return
		}
		rec, _, err := n.receipts.Get(id)
		if errors.Is(err, store.ErrNotFound) {
			api.WriteError(w, http.StatusNotFound, fmt.Errorf("no receipt %s in this node's store", id))
			return
		}
		if err != nil {
			api.WriteError(w, http.StatusInternalServerError, err)
			return
		}
		api.WriteJSON(w, http.StatusOK, proofs.ReceiptView(id, rec))
	})
}

// ParseReceiptFilter reads a receipt listing's filters as the CLI and the
// API take them; empty strings mean no filter.
func ParseReceiptFilter(epoch, edge, kind, limit string) (proofs.Filter, error) {
	f := proofs.Filter{Limit: maxListedReceipts}
	if epoch != "" {
		e, err := strconv.ParseUint(epoch, 10, 64)
		if err != nil {
			return f, fmt.Errorf("epoch %q: want a number", epoch)
		}
		f.Epoch = &e
	}
	if edge != "" {
		id, err := peer.Decode(edge)
		if err != nil {
			return f, fmt.Errorf("edge %q: want a peer ID", edge)
		}
		f.Edge = id
	}
	if kind != "" {
		k, err := proofs.ParseKind(kind)
		if err != nil {
			return f, err
		}
		f.Kind = k
	}
	if limit != "" {
		l, err := strconv.Atoi(limit)
		if err != nil || l <= 0 {
			return f, fmt.Errorf("limit %q: want a positive number", limit)
		}
		f.Limit = min(l, maxListedReceipts)
	}
	return f, nil
}

// ListReceipts lists a store's receipts as JSON views.
func ListReceipts(rs *proofs.ReceiptStore, f proofs.Filter) ([]proofs.ReceiptJSON, error) {
	out := []proofs.ReceiptJSON{}
	err := rs.List(f, func(id cid.Cid, r proofs.Receipt) error {
		out = append(out, proofs.ReceiptView(id, r))
		return nil
	})
	return out, err
}
