package proofs

import (
	"bytes"
	"encoding/binary"
	"errors"
	"fmt"
	"slices"
	"strings"
	"sync"

	"github.com/ipfs/go-cid"
	"github.com/libp2p/go-libp2p/core/peer"

	"github.com/aropeer/aropeer/store"
	"github.com/aropeer/aropeer/wire"
)

// receiptsNamespace is the store namespace of receipts and their indexes.
const receiptsNamespace = "receipts"

// Key spaces inside the namespace. Receipts are kept as their envelopes,
// so anyone can be handed the keeper's signature; the indexes hold only
// keys.
const (
	prefixEnvelope = 'c' // 'c' cid -> envelope
	prefixByEpoch  = 'e' // 'e' epoch edge kind cid -> nothing
	prefixByEdge   = 'p' // 'p' edge epoch kind cid -> nothing
)

// ReceiptStore keeps verified receipts in the node's store, durably, with
// indexes by epoch and by edge. It is safe for concurrent use.
type ReceiptStore struct {
	ns store.Namespace

	mu sync.Mutex
	// writing holds the CIDs some Put is writing, each with a channel
	// closed when it is done, so that exactly one Put reports a receipt
	// as new while the others still commit in parallel.
	writing map[string]chan struct{}
}

// NewReceiptStore returns the receipt store of db.
func NewReceiptStore(db *store.DB) *ReceiptStore {
	return &ReceiptStore{ns: db.Namespace(receiptsNamespace), writing: make(map[string]chan struct{})}
}

// Filter selects receipts for List. Zero fields select everything.
type Filter struct {
	Epoch  *uint64
	Edge   peer.ID
	Kind   Kind
	Keeper peer.ID
	Limit  int // at most this many receipts; 0 for no limit
}

// Put opens and checks env (OpenReceipt) and stores it with its index
// entries in one synced batch, and returns the receipt, its CID and
// whether it is new. It is idempotent: a receipt already stored writes
// nothing and is not new. Of concurrent Puts of one receipt, exactly one
// reports it new.
func (s *ReceiptStore) Put(env []byte) (Receipt, cid.Cid, bool, error) {
	out, err := s.ingest([][]byte{env}, nil)
	if err != nil {
		return Receipt{}, cid.Undef, false, err
	}
	if out[0].err != nil {
		return Receipt{}, cid.Undef, false, out[0].err
	}
	return out[0].r, out[0].id, out[0].isNew, nil
}

// PutBatch stores many receipts in one synced batch, which costs one
// sync instead of one each. Envelopes that do not open are skipped and
// reported in err (one joined error per envelope, naming its index); the
// others are still stored. added counts the receipts that were not stored
// before.
func (s *ReceiptStore) PutBatch(envs [][]byte) (added int, err error) {
	added, errs, err := s.PutChecked(envs, nil)
	if err != nil {
		return added, err
	}
	var bad []error
	for i, e := range errs {
		if e != nil {
			bad = append(bad, fmt.Errorf("proofs: receipt %d of %d: %w", i, len(envs), e))
		}
	}
	return added, errors.Join(bad...)
}

// PutChecked is PutBatch with a check of each receipt that opens, given
// its index in envs, CID and content: one that check refuses is not
// stored. errs holds each envelope's own error (it did not open, or
// check refused it), nil for those stored or already held; err is the
// store's. Receipts fetched from a peer are stored this way, each
// signature verified once.
func (s *ReceiptStore) PutChecked(envs [][]byte, check func(i int, id cid.Cid, r Receipt) error) (added int, errs []error, err error) {
	out, err := s.ingest(envs, check)
	if err != nil {
		return 0, nil, err
	}
	errs = make([]error, len(envs))
	for i, o := range out {
		errs[i] = o.err
		if o.isNew {
			added++
		}
	}
	return added, errs, nil
}

// ingested is what became of one envelope given to ingest.
type ingested struct {
	r     Receipt
	id    cid.Cid
	isNew bool
	err   error // the envelope did not open, or the check refused it
}

// ingest stores the receipts of envs that open and are not stored yet in
// one synced batch. Its error is the batch's; each envelope's own is in
// its ingested.
//
// A receipt usually reaches a keeper many times, so stored copies are
// looked up before any signature is checked: an envelope byte-equal to
// the stored one was verified when it was stored and is only decoded.
func (s *ReceiptStore) ingest(envs [][]byte, check func(int, cid.Cid, Receipt) error) ([]ingested, error) {
	out := make([]ingested, len(envs))
	payloads := make([][]byte, len(envs))
	ids := make([]string, 0, len(envs))
	for i, env := range envs {
		payload, err := envelopePayload(env)
		if err != nil || len(env) > MaxReceiptSize {
			// Let OpenReceipt say what is wrong.
			if _, _, err = openReceipt(env); err == nil {
				err = fmt.Errorf("proofs: open receipt: %w", wire.ErrBadEnvelope) // unreachable
			}
			out[i].err = err
			continue
		}
		payloads[i], out[i].id = payload, wire.CIDOf(payload)
		ids = append(ids, out[i].id.KeyString())
	}
	// Reserve the CIDs in byte order, so that two batches sharing some
	// never wait for each other.
	slices.Sort(ids)
	ids = slices.Compact(ids)
	for _, id := range ids {
		s.reserve(id)
	}
	defer func() {
		for _, id := range ids {
			s.release(id)
		}
	}()

	var b *store.Batch // made on the first write: a Batch cannot be dropped
	batched := make(map[cid.Cid][]byte)
	for i, env := range envs {
		o := &out[i]
		if o.err != nil {
			continue
		}
		known, ok := batched[o.id]
		if !ok {
			stored, err := s.ns.Get(envelopeKey(o.id))
			switch {
			case err == nil:
				known = stored
			case !errors.Is(err, store.ErrNotFound):
				return nil, fmt.Errorf("proofs: receipt %s: %w", o.id, err)
			}
		}
		if known != nil && bytes.Equal(known, env) {
			o.r, o.err = decodeStored(o.id, env)
			if o.err == nil && check != nil {
				o.err = check(i, o.id, o.r)
			}
			continue
		}
		r, payload, err := openReceipt(env)
		if err != nil {
			*o = ingested{err: err}
			continue
		}
		if !bytes.Equal(payload, payloads[i]) {
			// Unreachable while wire and envelopePayload parse alike.
			*o = ingested{err: fmt.Errorf("proofs: open receipt: payload found twice: %w", wire.ErrBadEnvelope)}
			continue
		}
		if check != nil {
			if err := check(i, o.id, r); err != nil {
				*o = ingested{err: err}
				continue
			}
		}
		o.r = r
		if known != nil {
			continue // another signature over a stored receipt: the first stays
		}
		if b == nil {
			b = s.ns.Batch()
		}
		b.Set(envelopeKey(o.id), env)
		b.Set(epochKey(r.Epoch, r.Edge, r.Kind, o.id), nil)
		b.Set(edgeKey(r.Edge, r.Epoch, r.Kind, o.id), nil)
		batched[o.id] = env
		o.isNew = true
	}
	if b != nil {
		if err := b.Commit(); err != nil {
			return nil, fmt.Errorf("proofs: store %d receipts: %w", len(batched), err)
		}
	}
	return out, nil
}

// reserve waits until no other write holds id, then holds it.
func (s *ReceiptStore) reserve(id string) {
	for {
		s.mu.Lock()
		done, busy := s.writing[id]
		if !busy {
			s.writing[id] = make(chan struct{})
			s.mu.Unlock()
			return
		}
		s.mu.Unlock()
		<-done
	}
}

func (s *ReceiptStore) release(id string) {
	s.mu.Lock()
	done := s.writing[id]
	delete(s.writing, id)
	s.mu.Unlock()
	close(done)
}

// Has reports whether the receipt id is stored.
func (s *ReceiptStore) Has(id cid.Cid) (bool, error) {
	has, err := s.ns.Has(envelopeKey(id))
	if err != nil {
		return false, fmt.Errorf("proofs: receipt %s: %w", id, err)
	}
	return has, nil
}

// Get returns the receipt id and its envelope, or an error matching
// store.ErrNotFound.
func (s *ReceiptStore) Get(id cid.Cid) (Receipt, []byte, error) {
	env, err := s.ns.Get(envelopeKey(id))
	if err != nil {
		return Receipt{}, nil, fmt.Errorf("proofs: receipt %s: %w", id, err)
	}
	r, err := decodeStored(id, env)
	if err != nil {
		return Receipt{}, nil, err
	}
	return r, env, nil
}

// decodeStored decodes a stored envelope. Its signature was checked
// before it was stored, so reading checks only that the payload still
// hashes to its CID, which catches a damaged store at a fraction of the
// cost of a signature check.
func decodeStored(id cid.Cid, env []byte) (Receipt, error) {
	payload, err := envelopePayload(env)
	if err != nil {
		return Receipt{}, fmt.Errorf("proofs: stored receipt %s: %w", id, err)
	}
	if got := wire.CIDOf(payload); got != id {
		return Receipt{}, fmt.Errorf("proofs: stored receipt %s: payload hashes to %s", id, got)
	}
	// Canonical when stored, and unchanged since, as its hash shows.
	var r Receipt
	if err := wire.UnmarshalTrusted(payload, &r, MaxReceiptSize); err != nil {
		return Receipt{}, fmt.Errorf("proofs: stored receipt %s: %w", id, err)
	}
	return r, nil
}

// envelopePayload returns the payload of a canonical envelope (public
// key, payload type, payload, signature, each a length-delimited field)
// without checking the signature.
func envelopePayload(env []byte) ([]byte, error) {
	for field := byte(1); field <= 3; field++ {
		if len(env) == 0 || env[0] != field<<3|2 {
			return nil, fmt.Errorf("envelope field %d: %w", field, wire.ErrBadEnvelope)
		}
		n, w := binary.Uvarint(env[1:])
		if w <= 0 || n > uint64(len(env)-1-w) {
			return nil, fmt.Errorf("envelope field %d: %w", field, wire.ErrBadEnvelope)
		}
		if field == 3 {
			return env[1+w : 1+w+int(n)], nil
		}
		env = env[1+w+int(n):]
	}
	panic("unreachable")
}

// List calls fn for the receipts f selects, in (epoch, edge, kind, CID)
// order, where edges, kinds and CIDs compare by their bytes. It walks the
// epoch index, or the edge index when only the edge is given. fn may
// return store.ErrStop to end the listing early without an error; any
// other error ends it and is returned.
func (s *ReceiptStore) List(f Filter, fn func(id cid.Cid, r Receipt) error) error {
	var prefix []byte
	switch {
	case f.Epoch != nil:
		prefix = appendEpoch([]byte{prefixByEpoch}, *f.Epoch)
		if f.Edge != "" {
			prefix = appendEscaped(prefix, string(f.Edge))
			if f.Kind != "" {
				prefix = appendEscaped(prefix, string(f.Kind))
			}
		}
	case f.Edge != "":
		prefix = appendEscaped([]byte{prefixByEdge}, string(f.Edge))
	default:
		prefix = []byte{prefixByEpoch}
	}
	n := 0
	return s.ns.Iterate(prefix, func(k, _ []byte) error {
		ik, err := parseIndexKey(k)
		if err != nil {
			return fmt.Errorf("proofs: receipt index key %x: %w", k, err)
		}
		if (f.Epoch != nil && ik.epoch != *f.Epoch) || (f.Edge != "" && ik.edge != f.Edge) || (f.Kind != "" && ik.kind != f.Kind) {
			return nil
		}
		r, _, err := s.Get(ik.id)
		if err != nil {
			return err
		}
		if f.Keeper != "" && r.Keeper != f.Keeper {
			return nil
		}
		if err := fn(ik.id, r); err != nil {
			return err
		}
		if n++; f.Limit > 0 && n >= f.Limit {
			return store.ErrStop
		}
		return nil
	})
}

// CIDs returns the CIDs of the receipts of epoch, about edge only if
// edge is not empty, sorted by their bytes: for a whole epoch, the
// leaves of its batch's Merkle tree. It reads the index alone, not the
// receipts.
func (s *ReceiptStore) CIDs(epoch uint64, edge peer.ID) ([]cid.Cid, error) {
	prefix := appendEpoch([]byte{prefixByEpoch}, epoch)
	if edge != "" {
		prefix = appendEscaped(prefix, string(edge))
	}
	var ids []cid.Cid
	err := s.ns.Iterate(prefix, func(k, _ []byte) error {
		ik, err := parseIndexKey(k)
		if err != nil {
			return fmt.Errorf("proofs: receipt index key %x: %w", k, err)
		}
		if edge == "" || ik.edge == edge {
			ids = append(ids, ik.id)
		}
		return nil
	})
	if err != nil {
		return nil, fmt.Errorf("proofs: receipts of epoch %d: %w", epoch, err)
	}
	slices.SortFunc(ids, func(a, b cid.Cid) int { return strings.Compare(a.KeyString(), b.KeyString()) })
	return ids, nil
}

func envelopeKey(id cid.Cid) []byte {
	return append([]byte{prefixEnvelope}, id.Bytes()...)
}

func epochKey(epoch uint64, edge peer.ID, k Kind, id cid.Cid) []byte {
	b := appendEpoch([]byte{prefixByEpoch}, epoch)
	b = appendEscaped(b, string(edge))
	b = appendEscaped(b, string(k))
	return append(b, id.Bytes()...)
}

func edgeKey(edge peer.ID, epoch uint64, k Kind, id cid.Cid) []byte {
	b := appendEscaped([]byte{prefixByEdge}, string(edge))
	b = appendEpoch(b, epoch)
	b = appendEscaped(b, string(k))
	return append(b, id.Bytes()...)
}

// appendEpoch appends epoch big-endian, so keys sort by epoch.
func appendEpoch(b []byte, epoch uint64) []byte { return binary.BigEndian.AppendUint64(b, epoch) }

// appendEscaped appends s so that escaped strings sort as the strings do
// and none is a prefix of another: each 0x00 becomes 0x00 0xff, and 0x00
// 0x01 ends the string. Peer IDs are binary and of varying length, so
// neither raw bytes nor a length prefix would keep both properties.
func appendEscaped(b []byte, s string) []byte {
	for i := 0; i < len(s); i++ {
		if s[i] == 0 {
			b = append(b, 0, 0xff)
		} else {
			b = append(b, s[i])
		}
	}
	return append(b, 0, 1)
}

// readEscaped reads what appendEscaped wrote.
func readEscaped(b []byte) (string, []byte, error) {
	var s []byte
	for i := 0; i < len(b); i++ {
		if b[i] != 0 {
			s = append(s, b[i])
			continue
		}
		if i+1 == len(b) {
			break
		}
		switch b[i+1] {
		case 0xff:
			s = append(s, 0)
			i++
		case 1:
			return string(s), b[i+2:], nil
		default:
			return "", nil, errors.New("bad escape")
		}
	}
	return "", nil, errors.New("unterminated string")
}

// indexKey is an index entry's key, parsed.
type indexKey struct {
	epoch uint64
	edge  peer.ID
	kind  Kind
	id    cid.Cid
}

// parseIndexKey parses a key of either index.
func parseIndexKey(k []byte) (indexKey, error) {
	var ik indexKey
	if len(k) == 0 {
		return ik, errors.New("empty")
	}
	var edge, kind string
	var err error
	rest := k[1:]
	switch k[0] {
	case prefixByEpoch:
		if len(rest) < 8 {
			return ik, errors.New("short")
		}
		ik.epoch, rest = binary.BigEndian.Uint64(rest), rest[8:]
		if edge, rest, err = readEscaped(rest); err != nil {
			return ik, err
		}
	case prefixByEdge:
		if edge, rest, err = readEscaped(rest); err != nil {
			return ik, err
		}
		if len(rest) < 8 {
			return ik, errors.New("short")
		}
		ik.epoch, rest = binary.BigEndian.Uint64(rest), rest[8:]
	default:
		return ik, errors.New("not an index key")
	}
	if kind, rest, err = readEscaped(rest); err != nil {
		return ik, err
	}
	if ik.id, err = cid.Cast(rest); err != nil {
		return ik, err
	}
	ik.edge, ik.kind = peer.ID(edge), Kind(kind)
	return ik, nil
}
