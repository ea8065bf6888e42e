package proofs

import (
	"encoding/binary"
	"fmt"

	"github.com/ipfs/go-cid"

	"github.com/aropeer/aropeer/store"
	"github.com/aropeer/aropeer/wire"
)

// reportsNamespace holds Work Reports by (epoch, edge, CID).
const reportsNamespace = "reports"

// ReportStore keeps the Work Reports a node has seen. An edge may sign
// several for one epoch; all are kept, and Aggregate picks one the same
// way on every keeper.
type ReportStore struct {
	ns store.Namespace
}

// NewReportStore returns the report store of db.
func NewReportStore(db *store.DB) *ReportStore {
	return &ReportStore{ns: db.Namespace(reportsNamespace)}
}

// Put opens and checks env (OpenReport) and stores it, synced, returning
// the report, its CID and whether it is new.
func (s *ReportStore) Put(env []byte) (Report, cid.Cid, bool, error) {
	r, id, err := OpenReport(env)
	if err != nil {
		return Report{}, cid.Undef, false, err
	}
	key := reportKey(r.Epoch, id)
	if have, err := s.ns.Has(key); err != nil || have {
		return r, id, false, err
	}
	b := s.ns.Batch()
	b.Set(key, env)
	if err := b.Commit(); err != nil {
		return Report{}, cid.Undef, false, fmt.Errorf("proofs: store report %s: %w", id, err)
	}
	return r, id, true, nil
}

// Has reports whether the report id of epoch is stored.
func (s *ReportStore) Has(epoch uint64, id cid.Cid) (bool, error) {
	have, err := s.ns.Has(reportKey(epoch, id))
	if err != nil {
		return false, fmt.Errorf("proofs: report %s: %w", id, err)
	}
	return have, nil
}

// List returns the reports of epoch and their envelopes, in CID order.
func (s *ReportStore) List(epoch uint64) ([]Report, [][]byte, error) {
	var reports []Report
	var envs [][]byte
	err := s.ns.Iterate(binary.BigEndian.AppendUint64(nil, epoch), func(k, v []byte) error {
		var r Report
		payload, err := envelopePayload(v)
		if err == nil {
			err = wire.Unmarshal(payload, &r, MaxReportSize)
		}
		if err != nil {
			return fmt.Errorf("proofs: stored report %x: %w", k, err)
		}
		reports = append(reports, r)
		envs = append(envs, append([]byte(nil), v...))
		return nil
	})
	if err != nil {
		return nil, nil, fmt.Errorf("proofs: reports of epoch %d: %w", epoch, err)
	}
	return reports, envs, nil
}

func reportKey(epoch uint64, id cid.Cid) []byte {
	return append(binary.BigEndian.AppendUint64(nil, epoch), id.Bytes()...)
}
