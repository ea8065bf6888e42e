package exchange

import (
	"context"
	"errors"
	"fmt"
	"slices"
	"time"

	"github.com/ipfs/go-cid"
	"github.com/libp2p/go-libp2p/core/peer"

	"github.com/aropeer/aropeer/proofs"
	"github.com/aropeer/aropeer/wire"
)

// Sentinel errors callers branch on. Every error names the peer, and,
// where one is to blame, the receipt's CID.
var (
	// ErrBadResponse means the peer answered something provably wrong: a
	// malformed or unsorted list, an envelope that does not open to the
	// CID asked for, a receipt of another epoch or edge. Drop the peer.
	ErrBadResponse = errors.New("exchange: bad response")
	// ErrRefused means the peer answered with an error response.
	ErrRefused = errors.New("exchange: request refused")
	// ErrBusy means the peer serves too many streams; it matches
	// ErrRefused too. Retry later or elsewhere.
	ErrBusy = errors.New("exchange: peer busy")
	// ErrListTooLong means a list is over the client's cap (WithMaxList).
	ErrListTooLong = errors.New("exchange: list too long")
	// ErrMissing means the peer listed a receipt it then did not send,
	// as it may when it pruned it in between. It is not the peer's fault.
	ErrMissing = errors.New("exchange: receipt missing")
	// ErrNotAccepted means Sync's accept refused a receipt.
	ErrNotAccepted = errors.New("exchange: receipt not accepted")
)

// List asks p for its sorted CID list of epoch's receipts (of edge only, if
// edge != ""): a keeper learns a batch's leaves from it. It asks page by
// page and checks that the whole list is strictly sorted by CID bytes.
func List(ctx context.Context, s Streams, p peer.ID, epoch uint64, edge peer.ID, opts ...Option) ([]cid.Cid, error) {
	return list(ctx, s, p, epoch, edge, newOptions(opts))
}

func list(ctx context.Context, s Streams, p peer.ID, epoch uint64, edge peer.ID, o options) ([]cid.Cid, error) {
	var ids []cid.Cid
	var after string // the last CID's bytes; none before the first page
	for {
		req := &listRequest{Epoch: epoch, Edge: edge, After: []byte(after), Limit: uint32(o.pageSize)}
		resp, err := roundTrip(ctx, s, p, request{List: req}, listResponseSize(o.pageSize), o)
		if err != nil {
			return nil, err
		}
		if resp.List == nil {
			return nil, fmt.Errorf("%w: peer %s answered a list request with another kind", ErrBadResponse, p)
		}
		page := resp.List
		if len(page.CIDs) > o.pageSize {
			return nil, fmt.Errorf("%w: peer %s sent a page of %d CIDs, over the %d asked for", ErrBadResponse, p, len(page.CIDs), o.pageSize)
		}
		for _, id := range page.CIDs {
			if after != "" && id.KeyString() <= after {
				return nil, fmt.Errorf("%w: peer %s listed %s out of order or twice", ErrBadResponse, p, id)
			}
			after = id.KeyString()
		}
		if len(ids)+len(page.CIDs) > o.maxList {
			return nil, fmt.Errorf("%w: peer %s lists over %d receipts of epoch %d", ErrListTooLong, p, o.maxList, epoch)
		}
		ids = append(ids, page.CIDs...)
		if !page.More {
			return ids, nil
		}
		if len(page.CIDs) == 0 {
			return nil, fmt.Errorf("%w: peer %s sent an empty page with more to come", ErrBadResponse, p)
		}
	}
}

// Fetch asks p for the envelopes of ids, MaxGet per stream, and returns
// them in the order of ids. An envelope p lacks is nil. Each one returned
// opens (proofs.OpenReceipt) to its CID; one that does not is nil and
// reported in err, matching ErrBadResponse. Fetch stops after the first
// chunk with a bad envelope or at the first failed stream; on error, envs
// holds the chunks fetched so far. All of ids' envelopes are held at once:
// fetch a large set in parts.
func Fetch(ctx context.Context, s Streams, p peer.ID, ids []cid.Cid, opts ...Option) ([][]byte, error) {
	o := newOptions(opts)
	envs := make([][]byte, 0, len(ids))
	for chunk := range slices.Chunk(ids, MaxGet) {
		got, err := get(ctx, s, p, chunk, o)
		if err != nil {
			return envs, err
		}
		var bad []error
		for i, env := range got {
			if env == nil {
				continue
			}
			if _, err := openAs(p, chunk[i], env); err != nil {
				bad = append(bad, err)
				got[i] = nil
			}
		}
		envs = append(envs, got...)
		if bad != nil {
			return envs, errors.Join(bad...)
		}
	}
	return envs, nil
}

// Sync fetches from p the receipts of epoch (of edge only, if edge != "")
// that dst lacks: it lists p's, diffs them with dst's, fetches the missing
// envelopes MaxGet at a time, checks each (it opens to the CID asked for,
// is of epoch and edge, and accept, if not nil, takes it) and stores those
// that pass with dst.PutBatch. It returns how many it added.
//
// A receipt that passes is stored even when others of its response do
// not: its keeper's signature and its CID vouch for it, not p. Each one
// that fails is reported in err, which joins one error per receipt: those
// p lacks match ErrMissing and the sync goes on; those accept refuses
// match ErrNotAccepted and the sync goes on; those that prove p wrong
// match ErrBadResponse and the sync ends after storing the good receipts
// of that response. added is right whatever err is.
func Sync(ctx context.Context, s Streams, p peer.ID, epoch uint64, edge peer.ID, dst *proofs.ReceiptStore, accept func(proofs.Receipt) error, opts ...Option) (added int, err error) {
	o := newOptions(opts)
	remote, err := list(ctx, s, p, epoch, edge, o)
	if err != nil {
		return 0, err
	}
	local, err := StoreSource(dst).CIDs(epoch, edge)
	if err != nil {
		return 0, fmt.Errorf("exchange: receipts of epoch %d: %w", epoch, err)
	}
	var errs []error
	for chunk := range slices.Chunk(missingFrom(local, remote), MaxGet) {
		envs, err := get(ctx, s, p, chunk, o)
		if err != nil {
			return added, errors.Join(append(errs, err)...)
		}
		// Each signature is verified once, as the store opens the
		// envelope; the checks run on what it opened.
		good := make([][]byte, 0, len(envs))
		wants := make([]cid.Cid, 0, len(envs))
		for i, env := range envs {
			if env == nil {
				errs = append(errs, fmt.Errorf("%w: peer %s listed %s but did not send it", ErrMissing, p, chunk[i]))
				continue
			}
			good, wants = append(good, env), append(wants, chunk[i])
		}
		n, bad, err := dst.PutChecked(good, func(i int, id cid.Cid, r proofs.Receipt) error {
			if id != wants[i] {
				return fmt.Errorf("%w: peer %s sent receipt %s for %s", ErrBadResponse, p, id, wants[i])
			}
			if err := checkScope(p, id, r, epoch, edge); err != nil {
				return err
			}
			if accept != nil {
				if err := accept(r); err != nil {
					return fmt.Errorf("%w: %s from peer %s: %w", ErrNotAccepted, id, p, err)
				}
			}
			return nil
		})
		added += n
		if err != nil {
			return added, errors.Join(append(errs, fmt.Errorf("exchange: store receipts from peer %s: %w", p, err))...)
		}
		lied := false
		for i, e := range bad {
			switch {
			case e == nil:
			case errors.Is(e, ErrNotAccepted):
				errs = append(errs, e)
			case errors.Is(e, ErrBadResponse):
				errs, lied = append(errs, e), true
			default:
				errs, lied = append(errs, fmt.Errorf("%w: peer %s sent for %s an envelope that does not open: %w", ErrBadResponse, p, wants[i], e)), true
			}
		}
		if lied {
			break
		}
	}
	return added, errors.Join(errs...)
}

// missingFrom returns the CIDs of remote not in local, both sorted.
func missingFrom(local, remote []cid.Cid) []cid.Cid {
	var missing []cid.Cid
	i := 0
	for _, id := range remote {
		for i < len(local) && compareCIDs(local[i], id) < 0 {
			i++
		}
		if i < len(local) && local[i] == id {
			continue
		}
		missing = append(missing, id)
	}
	return missing
}

// openAs opens env and checks it is the receipt want.
func openAs(p peer.ID, want cid.Cid, env []byte) (proofs.Receipt, error) {
	r, id, err := proofs.OpenReceipt(env)
	if err != nil {
		return proofs.Receipt{}, fmt.Errorf("%w: peer %s sent for %s an envelope that does not open: %w", ErrBadResponse, p, want, err)
	}
	if id != want {
		return proofs.Receipt{}, fmt.Errorf("%w: peer %s sent receipt %s for %s", ErrBadResponse, p, id, want)
	}
	return r, nil
}

// checkScope checks that r is of the epoch and edge asked for: p listed
// it as such.
func checkScope(p peer.ID, id cid.Cid, r proofs.Receipt, epoch uint64, edge peer.ID) error {
	if r.Epoch != epoch {
		return fmt.Errorf("%w: peer %s listed %s in epoch %d, but it is of epoch %d", ErrBadResponse, p, id, epoch, r.Epoch)
	}
	if edge != "" && r.Edge != edge {
		return fmt.Errorf("%w: peer %s listed %s for edge %s, but it is about %s", ErrBadResponse, p, id, edge, r.Edge)
	}
	return nil
}

// get asks p for the envelopes of ids (at most MaxGet) and returns them in
// the order of ids, nil for those p lacks, unchecked.
func get(ctx context.Context, s Streams, p peer.ID, ids []cid.Cid, o options) ([][]byte, error) {
	resp, err := roundTrip(ctx, s, p, request{Get: &getRequest{CIDs: ids}}, getResponseSize(len(ids)), o)
	if err != nil {
		return nil, err
	}
	if resp.Get == nil {
		return nil, fmt.Errorf("%w: peer %s answered a get request with another kind", ErrBadResponse, p)
	}
	envs := resp.Get.Envelopes
	if len(envs) != len(ids) {
		return nil, fmt.Errorf("%w: peer %s sent %d envelopes for %d CIDs", ErrBadResponse, p, len(envs), len(ids))
	}
	for i, env := range envs {
		if len(env) == 0 {
			envs[i] = nil
		}
	}
	return envs, nil
}

// roundTrip sends req to p on a new stream and reads the response, of at
// most maxSize bytes. An error response becomes an error.
func roundTrip(ctx context.Context, s Streams, p peer.ID, req request, maxSize int, o options) (response, error) {
	b, err := wire.Marshal(req)
	if err != nil {
		return response{}, fmt.Errorf("exchange: %w", err)
	}
	ctx, cancel := context.WithTimeout(ctx, o.timeout)
	defer cancel()
	st, err := s.NewStream(ctx, p, Protocol)
	if err != nil {
		return response{}, fmt.Errorf("exchange: open stream to %s: %w", p, err)
	}
	deadline, done := watch(ctx, st)
	defer done()
	release, err := attach(st, maxSize)
	if err != nil {
		_ = st.Reset()
		return response{}, fmt.Errorf("exchange: stream to %s: %w", p, err)
	}
	defer release()

	resp, err := requestResponse(st, b, maxSize, deadline)
	if err != nil {
		_ = st.Reset()
		if ctx.Err() != nil {
			err = fmt.Errorf("%w (%w)", ctx.Err(), err)
		}
		return response{}, fmt.Errorf("exchange: peer %s: %w", p, err)
	}
	_ = st.Close()
	if e := resp.Error; e != nil {
		refused := ErrRefused
		if e.Code == CodeBusy {
			refused = fmt.Errorf("%w: %w", ErrBusy, ErrRefused)
		}
		return response{}, fmt.Errorf("exchange: peer %s refused the request (%s: %q): %w", p, e.Code, e.Message, refused)
	}
	return resp, nil
}

// requestResponse writes one request frame and reads one response frame.
func requestResponse(st wire.Stream, req []byte, maxSize int, deadline time.Time) (response, error) {
	if err := wire.WriteFrame(st, req, deadline); err != nil {
		return response{}, err
	}
	if c, ok := st.(interface{ CloseWrite() error }); ok {
		_ = c.CloseWrite() // nothing more to say; the server may see it
	}
	b, err := wire.ReadFrame(st, maxSize, deadline)
	if err != nil {
		return response{}, err
	}
	resp, err := decodeResponse(b, maxSize)
	if err != nil {
		return response{}, fmt.Errorf("%w: %w", ErrBadResponse, err)
	}
	return resp, nil
}
