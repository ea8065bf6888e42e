package node

import (
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"net/http"
	"path/filepath"
	"sync"
	"time"

	"github.com/ipfs/go-cid"

	"github.com/aropeer/aropeer/node/api"
	"github.com/aropeer/aropeer/storage/pieces"
	"github.com/aropeer/aropeer/store"
)

// API paths of the piece store.
const (
	PiecesPath       = "/v1/store/pieces" // GET lists, POST adds, DELETE .../{cid} removes
	VerifyPiecesPath = "/v1/store/verify" // POST
)

// PieceJSON is one piece of `aropeer store list`.
type PieceJSON struct {
	CID        string    `json:"cid"`
	Payload    int64     `json:"payload"`
	Padded     uint64    `json:"padded"`
	Name       string    `json:"name"`
	Added      time.Time `json:"added"`
	Faulty     bool      `json:"faulty"`
	FaultRound uint64    `json:"fault_round,omitempty"`
}

// CheckJSON is the verdict of `aropeer store verify` on one piece.
type CheckJSON struct {
	CID    string `json:"cid"`
	OK     bool   `json:"ok"`
	Reason string `json:"reason,omitempty"`
}

// ProgressJSON is one line of a long store operation's reply: progress,
// then the result or an error.
type ProgressJSON struct {
	Done   int64       `json:"done,omitempty"`
	Total  int64       `json:"total,omitempty"`
	Piece  *PieceJSON  `json:"piece,omitempty"`
	Checks []CheckJSON `json:"checks,omitempty"`
	Error  string      `json:"error,omitempty"`
}

// AddPieceRequest asks the node to add the file at Path, an absolute path
// on the node's machine.
type AddPieceRequest struct {
	Path string `json:"path"`
}

// VerifyPiecesRequest asks the node to verify one piece, or all if CID is
// empty.
type VerifyPiecesRequest struct {
	CID string `json:"cid,omitempty"`
}

// PieceView is the JSON view of p, with the fault declared for it in db.
func PieceView(db *store.DB, p pieces.Piece) PieceJSON {
	v := PieceJSON{CID: p.CID.String(), Payload: p.Payload, Padded: p.Padded, Name: p.Name, Added: p.Added.UTC()}
	if round, ok := faultOf(db, p.CID); ok {
		v.Faulty, v.FaultRound = true, round
	}
	return v
}

// ListPieces lists a piece store's pieces as JSON views.
func ListPieces(db *store.DB, ps *pieces.Store) ([]PieceJSON, error) {
	list, err := ps.List()
	if err != nil {
		return nil, err
	}
	out := make([]PieceJSON, len(list))
	for i, p := range list {
		out[i] = PieceView(db, p)
	}
	return out, nil
}

// VerifyPieces recomputes the commitment of one piece (or all, if id is
// undefined) and records a fault, from round, for each that no longer
// matches. progress is called with bytes done of all.
func VerifyPieces(ctx context.Context, db *store.DB, ps *pieces.Store, id cid.Cid, round uint64, progress func(done, total int64)) ([]CheckJSON, error) {
	var list []pieces.Piece
	if id.Defined() {
		p, err := ps.Get(id)
		if err != nil {
			return nil, err
		}
		list = []pieces.Piece{p}
	} else {
		all, err := ps.List()
		if err != nil {
			return nil, err
		}
		list = all
	}
	var total, base int64
	for _, p := range list {
		total += p.Payload
	}
	out := make([]CheckJSON, 0, len(list))
	for _, p := range list {
		ok, err := ps.Verify(ctx, p.CID, func(done, _ int64) {
			if progress != nil {
				progress(base+done, total)
			}
		})
		base += p.Payload
		c := CheckJSON{CID: p.CID.String(), OK: ok}
		switch {
		case err != nil && ctx.Err() != nil:
			return out, ctx.Err()
		case err != nil:
			c.OK, c.Reason = false, err.Error()
		case !ok:
			c.Reason = "the data no longer matches the piece's commitment"
		}
		if !c.OK {
			if _, err := recordFault(db, p.CID, round); err != nil {
				return out, err
			}
		}
		out = append(out, c)
	}
	return out, nil
}

func (n *Node) needPieces(w http.ResponseWriter) bool {
	if n.pieces == nil {
		api.WriteError(w, http.StatusNotFound, errors.New("this node stores no pieces: it is not an edge offering storage (offers in config.toml)"))
		return false
	}
	return true
}

func (n *Node) listPiecesHandler() http.Handler {
	return http.HandlerFunc(func(w http.ResponseWriter, _ *http.Request) {
		if !n.needPieces(w) {
			return
		}
		list, err := ListPieces(n.db, n.pieces)
		if err != nil {
			api.WriteError(w, http.StatusInternalServerError, err)
			return
		}
		api.WriteJSON(w, http.StatusOK, list)
	})
}

// progressWriter sends newline-delimited progress, at most a few lines a
// second, and keeps extending the reply's write deadline while work goes
// on.
type progressWriter struct {
	mu   sync.Mutex
	w    http.ResponseWriter
	rc   *http.ResponseController
	last time.Time
}

func newProgressWriter(w http.ResponseWriter) *progressWriter {
	w.Header().Set("Content-Type", "application/x-ndjson")
	w.WriteHeader(http.StatusOK)
	return &progressWriter{w: w, rc: http.NewResponseController(w)}
}

func (p *progressWriter) send(line ProgressJSON, force bool) {
	p.mu.Lock()
	defer p.mu.Unlock()
	if !force && time.Since(p.last) < 200*time.Millisecond {
		return
	}
	p.last = time.Now()
	_ = p.rc.SetWriteDeadline(time.Now().Add(api.DefaultWriteTimeout))
	b, _ := json.Marshal(line)
	_, _ = p.w.Write(append(b, '\n'))
	_ = p.rc.Flush()
}

func (n *Node) addPieceHandler() http.Handler {
	return http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		if !n.needPieces(w) {
			return
		}
		var req AddPieceRequest
		if !api.DecodeJSON(w, r, &req) {
			return
		}
		if !filepath.IsAbs(req.Path) {
			api.WriteError(w, http.StatusBadRequest, fmt.Errorf("path %q: want an absolute path on the node's machine", req.Path))
			return
		}
		pw := newProgressWriter(w)
		p, err := n.pieces.AddFile(r.Context(), req.Path, func(done, total int64) {
			pw.send(ProgressJSON{Done: done, Total: total}, false)
		})
		if err == nil {
			err = n.RefreshManifest(r.Context())
		}
		if err != nil {
			pw.send(ProgressJSON{Error: err.Error()}, true)
			return
		}
		v := PieceView(n.db, p)
		pw.send(ProgressJSON{Done: p.Payload, Total: p.Payload, Piece: &v}, true)
	})
}

func (n *Node) removePieceHandler() http.Handler {
	return http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		if !n.needPieces(w) {
			return
		}
		id, err := cid.Decode(r.PathValue("cid"))
		if err != nil {
			api.WriteError(w, http.StatusBadRequest, fmt.Errorf("%q is not a piece CID", r.PathValue("cid")))
			return
		}
		if err := RemovePiece(n.db, n.pieces, id); errors.Is(err, store.ErrNotFound) {
			api.WriteError(w, http.StatusNotFound, fmt.Errorf("no piece %s in this node's store", id))
			return
		} else if err != nil {
			api.WriteError(w, http.StatusInternalServerError, err)
			return
		}
		if err := n.RefreshManifest(r.Context()); err != nil {
			api.WriteError(w, http.StatusInternalServerError, err)
			return
		}
		api.WriteJSON(w, http.StatusOK, map[string]string{"removed": id.String()})
	})
}

// RemovePiece removes a piece and the fault declared for it.
func RemovePiece(db *store.DB, ps *pieces.Store, id cid.Cid) error {
	if err := ps.Remove(id); err != nil {
		return err
	}
	b := db.Namespace(faultsNamespace).Batch()
	b.Delete(id.Bytes())
	return b.Commit()
}

func (n *Node) verifyPiecesHandler() http.Handler {
	return http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		if !n.needPieces(w) {
			return
		}
		var req VerifyPiecesRequest
		if !api.DecodeJSON(w, r, &req) {
			return
		}
		id := cid.Undef
		if req.CID != "" {
			c, err := cid.Decode(req.CID)
			if err != nil {
				api.WriteError(w, http.StatusBadRequest, fmt.Errorf("%q is not a piece CID", req.CID))
				return
			}
			id = c
		}
		pw := newProgressWriter(w)
		round := n.network.Beacon.RoundAt(n.clock.Now())
		checks, err := VerifyPieces(r.Context(), n.db, n.pieces, id, round, func(done, total int64) {
			pw.send(ProgressJSON{Done: done, Total: total}, false)
		})
		if err == nil {
			err = n.RefreshManifest(r.Context())
		}
		if err != nil {
			pw.send(ProgressJSON{Error: err.Error(), Checks: checks}, true)
			return
		}
		pw.send(ProgressJSON{Checks: checks}, true)
	})
}
