package node

import (
	"context"
	"encoding/hex"
	"errors"
	"fmt"
	"net/http"
	"strconv"
	"time"

	"github.com/ipfs/go-cid"
	"github.com/libp2p/go-libp2p/core/peer"

	"github.com/aropeer/aropeer/chain"
	"github.com/aropeer/aropeer/chain/local"
	"github.com/aropeer/aropeer/chain/remote"
	"github.com/aropeer/aropeer/challenge"
	"github.com/aropeer/aropeer/exchange"
	"github.com/aropeer/aropeer/liveness"
	"github.com/aropeer/aropeer/node/api"
	"github.com/aropeer/aropeer/node/config"
	"github.com/aropeer/aropeer/proofs"
	"github.com/aropeer/aropeer/settle"
	"github.com/aropeer/aropeer/store"
)

// API paths of settlement.
const (
	LedgerPath         = "/v1/ledger"
	LedgerAccountsPath = "/v1/ledger/accounts"
	LedgerBatchPath    = "/v1/ledger/batch/" // + epoch
	LedgerVerifyPath   = "/v1/ledger/verify"
	ReportPath         = "/v1/report"          // ?epoch=N
	ProofPath          = "/v1/receipts/proof/" // + CID
)

// LedgerStatus is `aropeer ledger status`.
type LedgerStatus struct {
	Network   string  `json:"network"`
	Sequencer string  `json:"sequencer"` // "self" on the sequencer
	Height    uint64  `json:"height"`
	Hash      string  `json:"hash"`
	LastBatch *uint64 `json:"last_batch_epoch"` // nil before the first batch
	Epoch     uint64  `json:"current_epoch"`
	Keepers   int     `json:"keepers"`
	Edges     int     `json:"edges"`
}

// AccountJSON is one account of `aropeer ledger accounts`.
type AccountJSON struct {
	ID      string `json:"id"`
	Role    string `json:"role"`
	Stake   uint64 `json:"stake"`
	Balance int64  `json:"balance"`
	Slashed uint64 `json:"slashed"`
}

// BatchJSON is `aropeer ledger batch EPOCH`.
type BatchJSON struct {
	Network      string                `json:"network"`
	Epoch        uint64                `json:"epoch"`
	ReceiptsRoot string                `json:"receipts_root"`
	Receipts     uint64                `json:"receipts"`
	Results      []ResultJSON          `json:"results"`
	Keepers      []proofs.KeeperReward `json:"keepers"`
	Signers      []string              `json:"signers"`
	Status       chain.Status          `json:"status"`
	Height       uint64                `json:"height"`
}

// ResultJSON is one edge's result in a batch.
type ResultJSON struct {
	Edge      string              `json:"edge"`
	Reward    uint64              `json:"reward"`
	Penalty   uint64              `json:"penalty"`
	ScorePPM  uint64              `json:"score_ppm"`
	UptimePPM uint64              `json:"uptime_ppm"`
	Kinds     []proofs.KindResult `json:"kinds"`
}

// VerifyJSON is `aropeer ledger verify`.
type VerifyJSON struct {
	OK       bool   `json:"ok"`
	Blocks   int    `json:"blocks"`
	Height   uint64 `json:"height"`
	Hash     string `json:"hash"`
	Accounts int    `json:"accounts"`
	Error    string `json:"error,omitempty"`
}

// ProofJSON is the file `aropeer receipts prove` writes and
// `aropeer receipts verify-proof` reads.
type ProofJSON struct {
	Receipt      string   `json:"receipt"`
	Network      string   `json:"network"`
	Epoch        uint64   `json:"epoch"`
	ReceiptsRoot string   `json:"receipts_root"`
	Receipts     uint64   `json:"receipts"`
	Index        uint64   `json:"index"`
	Path         []string `json:"path"` // sibling hashes from the leaf up, hex
}

// Check verifies the proof against a batch root and size, as read from the
// ledger.
func (p ProofJSON) Check(root []byte, receipts uint64) error {
	id, err := cid.Decode(p.Receipt)
	if err != nil {
		return fmt.Errorf("receipt %q: %w", p.Receipt, err)
	}
	ip := proofs.InclusionProof{Index: p.Index, Size: p.Receipts, Leaf: id}
	for i, h := range p.Path {
		b, err := hex.DecodeString(h)
		if err != nil {
			return fmt.Errorf("path[%d]: %w", i, err)
		}
		ip.Path = append(ip.Path, b)
	}
	return proofs.VerifyInBatch(proofs.Batch{Root: root, Receipts: receipts}, ip)
}

func (n *Node) needLedger(w http.ResponseWriter) bool {
	if n.ledger == nil {
		api.WriteError(w, http.StatusNotFound, errors.New("this node has no ledger: set ledger.sequencer (or ledger.serve on the sequencer) in config.toml"))
		return false
	}
	return true
}

// ledgerStatus says where an error from the ledger leaves the caller.
func ledgerStatus(err error) int {
	switch {
	case errors.Is(err, chain.ErrNotFound):
		return http.StatusNotFound
	case errors.Is(err, context.DeadlineExceeded):
		return http.StatusGatewayTimeout
	}
	return http.StatusBadGateway
}

func (n *Node) ledgerHandler() http.Handler {
	return http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		if !n.needLedger(w) {
			return
		}
		ctx, cancel := context.WithTimeout(r.Context(), 10*time.Second)
		defer cancel()
		head, err := n.ledger.Head(ctx)
		if err != nil {
			api.WriteError(w, ledgerStatus(err), err)
			return
		}
		accounts, err := n.ledger.Accounts(ctx)
		if err != nil {
			api.WriteError(w, ledgerStatus(err), err)
			return
		}
		st := LedgerStatus{Network: head.Network, Sequencer: n.cfg.Ledger.Sequencer, Height: head.Height, Hash: hex.EncodeToString(head.Hash)}
		if n.local != nil {
			st.Sequencer = "self"
		}
		for _, a := range accounts {
			if a.Role == chain.RoleKeeper {
				st.Keepers++
			} else {
				st.Edges++
			}
		}
		st.Epoch = n.currentEpoch()
		if last, ok := n.lastBatchEpoch(ctx); ok {
			st.LastBatch = &last
		}
		api.WriteJSON(w, http.StatusOK, st)
	})
}

func (n *Node) currentEpoch() uint64 {
	return challenge.Params{EpochRounds: n.network.EpochRounds}.EpochOf(n.network.Beacon.RoundAt(n.clock.Now()))
}

// lastBatchEpoch is the latest epoch with a batch on the ledger. Batches
// come in epoch order a few epochs behind, so it looks back a little from
// now rather than through the whole chain.
func (n *Node) lastBatchEpoch(ctx context.Context) (uint64, bool) {
	cur := n.currentEpoch()
	for e := cur; e+16 > cur && e > 0; e-- {
		if _, err := n.ledger.Batch(ctx, e-1); err == nil {
			return e - 1, true
		}
	}
	return 0, false
}

func (n *Node) ledgerAccountsHandler() http.Handler {
	return http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		if !n.needLedger(w) {
			return
		}
		ctx, cancel := context.WithTimeout(r.Context(), 10*time.Second)
		defer cancel()
		accounts, err := n.ledger.Accounts(ctx)
		if err != nil {
			api.WriteError(w, ledgerStatus(err), err)
			return
		}
		out := make([]AccountJSON, len(accounts))
		for i, a := range accounts {
			out[i] = AccountJSON{ID: a.ID.String(), Role: a.Role, Stake: a.Stake, Balance: a.Balance, Slashed: a.Slashed}
		}
		api.WriteJSON(w, http.StatusOK, out)
	})
}

func (n *Node) ledgerBatchHandler() http.Handler {
	return http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		if !n.needLedger(w) {
			return
		}
		epoch, err := strconv.ParseUint(r.PathValue("epoch"), 10, 64)
		if err != nil {
			api.WriteError(w, http.StatusBadRequest, fmt.Errorf("epoch %q: want a number", r.PathValue("epoch")))
			return
		}
		ctx, cancel := context.WithTimeout(r.Context(), 10*time.Second)
		defer cancel()
		rec, err := n.ledger.Batch(ctx, epoch)
		if err != nil {
			api.WriteError(w, ledgerStatus(err), err)
			return
		}
		api.WriteJSON(w, http.StatusOK, BatchView(rec))
	})
}

// BatchView is the JSON view of an applied batch.
func BatchView(rec chain.BatchRecord) BatchJSON {
	b := rec.Signed.Batch
	out := BatchJSON{
		Network: b.Network, Epoch: b.Epoch, ReceiptsRoot: hex.EncodeToString(b.Root), Receipts: b.Receipts,
		Results: make([]ResultJSON, len(b.Results)), Keepers: b.Keepers, Signers: []string{},
		Status: rec.Status, Height: rec.Height,
	}
	if out.Keepers == nil {
		out.Keepers = []proofs.KeeperReward{}
	}
	for i, res := range b.Results {
		out.Results[i] = resultView(res)
	}
	signers, _ := rec.Signed.Signers()
	for _, s := range signers {
		out.Signers = append(out.Signers, s.String())
	}
	return out
}

func resultView(r proofs.EdgeResult) ResultJSON {
	kinds := r.Kinds
	if kinds == nil {
		kinds = []proofs.KindResult{}
	}
	return ResultJSON{Edge: r.Edge.String(), Reward: r.Reward, Penalty: r.Penalty, ScorePPM: r.Score, UptimePPM: r.UptimePPM, Kinds: kinds}
}

// blocks downloads the ledger's blocks: from the store on the sequencer,
// over libp2p elsewhere.
func (n *Node) blocks(ctx context.Context) ([]local.Block, error) {
	if n.local != nil {
		return n.local.Blocks()
	}
	c, ok := n.ledger.(*remote.Client)
	if !ok {
		return nil, errors.New("node: this ledger serves no blocks")
	}
	return c.Blocks(ctx)
}

func (n *Node) ledgerVerifyHandler() http.Handler {
	return http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		if !n.needLedger(w) {
			return
		}
		ctx, cancel := context.WithTimeout(r.Context(), time.Minute)
		defer cancel()
		v, err := n.VerifyLedger(ctx)
		if err != nil {
			api.WriteError(w, ledgerStatus(err), err)
			return
		}
		api.WriteJSON(w, http.StatusOK, v)
	})
}

// VerifyLedger downloads every block, replays them, and compares the
// result with the ledger's own head and accounts.
func (n *Node) VerifyLedger(ctx context.Context) (VerifyJSON, error) {
	blocks, err := n.blocks(ctx)
	if err != nil {
		return VerifyJSON{}, err
	}
	v := VerifyJSON{Blocks: len(blocks)}
	accounts, head, err := local.Replay(n.network.Name, blocks, local.WithEvidence(liveness.NewEvidenceChecker()))
	if err != nil {
		v.Error = err.Error()
		return v, nil
	}
	v.Height, v.Hash, v.Accounts = head.Height, hex.EncodeToString(head.Hash), len(accounts)
	// The ledger may have moved on since the download: its head is at or
	// past the replayed one, and the replayed one must be in its chain.
	theirs, err := n.ledger.Head(ctx)
	if err != nil {
		return VerifyJSON{}, err
	}
	switch {
	case theirs.Height < head.Height:
		v.Error = fmt.Sprintf("the ledger's head is at height %d, below the %d blocks it served", theirs.Height, head.Height)
	case theirs.Height == head.Height && hex.EncodeToString(theirs.Hash) != v.Hash:
		v.Error = fmt.Sprintf("replay ends at hash %s, the ledger claims %x", v.Hash, theirs.Hash)
	default:
		v.OK = true
	}
	return v, nil
}

func (n *Node) proofHandler() http.Handler {
	return http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		if !n.needLedger(w) {
			return
		}
		id, err := cid.Decode(r.PathValue("cid"))
		if err != nil {
			api.WriteError(w, http.StatusBadRequest, fmt.Errorf("%q is not a receipt CID", r.PathValue("cid")))
			return
		}
		ctx, cancel := context.WithTimeout(r.Context(), time.Minute)
		defer cancel()
		p, b, err := n.Prove(ctx, id)
		switch {
		case errors.Is(err, store.ErrNotFound):
			api.WriteError(w, http.StatusNotFound, fmt.Errorf("no receipt %s in this node's store", id))
			return
		case errors.Is(err, chain.ErrNotFound):
			api.WriteError(w, http.StatusNotFound, fmt.Errorf("receipt %s: its epoch has no batch on the ledger yet", id))
			return
		case err != nil:
			api.WriteError(w, http.StatusConflict, err)
			return
		}
		out := ProofJSON{Receipt: id.String(), Network: b.Network, Epoch: b.Epoch, ReceiptsRoot: hex.EncodeToString(b.Root), Receipts: b.Receipts, Index: p.Index, Path: []string{}}
		for _, h := range p.Path {
			out.Path = append(out.Path, hex.EncodeToString(h))
		}
		api.WriteJSON(w, http.StatusOK, out)
	})
}

// Prove gives a receipt's inclusion proof in its epoch's batch. A node
// that does not know the batch's leaves (an edge) asks the keepers for
// them, and takes the first list that gives the batch's root.
func (n *Node) Prove(ctx context.Context, id cid.Cid) (proofs.InclusionProof, proofs.Batch, error) {
	if n.settler == nil {
		return proofs.InclusionProof{}, proofs.Batch{}, errors.New("node: this node settles nothing")
	}
	p, b, err := n.settler.Prove(ctx, id)
	if !errors.Is(err, settle.ErrNoLeaves) || n.keepers == nil {
		return p, b, err
	}
	keepers, kerr := n.keepers.keepers(ctx, b.Epoch)
	if kerr != nil {
		return p, b, errors.Join(err, kerr)
	}
	for _, k := range keepers {
		leaves, lerr := exchange.List(ctx, n.routed(), k.ID, b.Epoch, "")
		if lerr != nil || !settle.SameRoot(b, leaves) {
			continue
		}
		p, perr := proofs.ProveReceipt(leaves, id)
		if perr != nil {
			return p, b, perr
		}
		return p, b, proofs.VerifyInBatch(b, p)
	}
	return p, b, fmt.Errorf("%w, and no keeper gave the leaves of epoch %d", err, b.Epoch)
}

// ReportJSON is `aropeer report`: what an edge claimed in an epoch, what
// the batch verified, what it earned, and every failed challenge.
type ReportJSON struct {
	Edge     string               `json:"edge"`
	Epoch    uint64               `json:"epoch"`
	Settled  bool                 `json:"settled"` // whether the epoch's batch is on the ledger
	Claims   []proofs.Claim       `json:"claims"`
	Result   *ResultJSON          `json:"result"` // nil until settled, or if the batch has none for the edge
	Failures []proofs.ReceiptJSON `json:"failures"`
	Balance  *int64               `json:"balance"`
}

func (n *Node) reportHandler() http.Handler {
	return http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		edge := n.host.ID()
		switch s := r.URL.Query().Get("edge"); {
		case s != "":
			id, err := peer.Decode(s)
			if err != nil {
				api.WriteError(w, http.StatusBadRequest, fmt.Errorf("edge %q: want a peer ID", s))
				return
			}
			edge = id
		case !n.cfg.HasRole(config.RoleEdge):
			api.WriteError(w, http.StatusBadRequest, errors.New("this node is not an edge: name one with --edge"))
			return
		}
		ctx, cancel := context.WithTimeout(r.Context(), 10*time.Second)
		defer cancel()
		var epoch uint64
		if s := r.URL.Query().Get("epoch"); s != "" {
			e, err := strconv.ParseUint(s, 10, 64)
			if err != nil {
				api.WriteError(w, http.StatusBadRequest, fmt.Errorf("epoch %q: want a number", s))
				return
			}
			epoch = e
		} else {
			epoch = n.lastReportedEpoch(ctx)
		}
		out, err := n.EdgeReport(ctx, edge, epoch)
		if err != nil {
			api.WriteError(w, http.StatusInternalServerError, err)
			return
		}
		api.WriteJSON(w, http.StatusOK, out)
	})
}

// lastReportedEpoch is the latest epoch with a batch on the ledger, or
// the epoch that ended last if there is none of the recent ones.
func (n *Node) lastReportedEpoch(ctx context.Context) uint64 {
	if n.ledger != nil {
		if last, ok := n.lastBatchEpoch(ctx); ok {
			return last
		}
	}
	return max(n.currentEpoch(), 1) - 1
}

// EdgeReport gathers an edge's epoch: its report, its result in the batch
// and the receipts about it that were not passes.
func (n *Node) EdgeReport(ctx context.Context, edge peer.ID, epoch uint64) (ReportJSON, error) {
	out := ReportJSON{Edge: edge.String(), Epoch: epoch, Claims: []proofs.Claim{}, Failures: []proofs.ReceiptJSON{}}
	reports, _, err := n.reports.List(epoch)
	if err != nil {
		return out, err
	}
	for _, r := range reports {
		if r.Edge == edge {
			out.Claims = r.Claims
		}
	}
	if len(out.Claims) == 0 && n.settler != nil && edge == n.host.ID() {
		out.Claims = n.settler.Report(epoch).Claims // not filed yet: what it would claim
	}
	err = n.receipts.List(proofs.Filter{Epoch: &epoch, Edge: edge}, func(id cid.Cid, r proofs.Receipt) error {
		if r.Result != proofs.Pass {
			out.Failures = append(out.Failures, proofs.ReceiptView(id, r))
		}
		return nil
	})
	if err != nil {
		return out, err
	}
	if n.ledger == nil {
		return out, nil
	}
	rec, err := n.ledger.Batch(ctx, epoch)
	switch {
	case errors.Is(err, chain.ErrNotFound):
		return out, nil
	case err != nil:
		return out, err
	}
	out.Settled = true
	for _, res := range rec.Signed.Batch.Results {
		if res.Edge == edge {
			v := resultView(res)
			out.Result = &v
		}
	}
	if a, err := n.ledger.Account(ctx, edge); err == nil {
		out.Balance = &a.Balance
	}
	return out, nil
}
