package settle

import (
	"context"
	"errors"
	"fmt"
	"log/slog"
	"time"

	"github.com/libp2p/go-libp2p/core/network"
	"github.com/libp2p/go-libp2p/core/peer"
	"github.com/libp2p/go-libp2p/core/protocol"

	"github.com/aropeer/aropeer/challenge"
	"github.com/aropeer/aropeer/proofs"
	"github.com/aropeer/aropeer/wire"
)

// ReportsProtocol serves an epoch's Work Reports to keepers that missed
// some in gossip: one request (the epoch), one answer (the envelopes).
const ReportsProtocol protocol.ID = "/aro/reports/1.0.0"

const (
	// maxReports caps the reports of one answer: an edge signs one or two
	// per epoch, so this is some thousands of edges.
	maxReports = 8192
	// maxReportsAnswer caps an answer's size.
	maxReportsAnswer = 32 << 20
	// reportsTimeout bounds each read and write of the exchange.
	reportsTimeout = 10 * time.Second
)

type reportsRequest struct {
	Epoch uint64 `cbor:"epoch"`
}

type reportsAnswer struct {
	Reports [][]byte `cbor:"reports"`
	Error   string   `cbor:"error,omitempty"`
}

// ServeReports answers ReportsProtocol from reports, and returns a func
// that stops serving.
func ServeReports(s challenge.Streams, reports *proofs.ReportStore, log *slog.Logger) (stop func()) {
	s.SetStreamHandler(ReportsProtocol, func(st network.Stream) {
		c := wire.NewConn(st, maxReportsAnswer, reportsTimeout)
		var req reportsRequest
		if err := c.ReadMsg(&req); err != nil {
			log.Debug("bad reports request", "from", st.Conn().RemotePeer(), "err", err)
			return
		}
		_, envs, err := reports.List(req.Epoch)
		ans := reportsAnswer{Reports: envs}
		if err != nil {
			ans = reportsAnswer{Error: "reports unavailable"}
			log.Warn("reports not served", "epoch", req.Epoch, "err", err)
		}
		if len(ans.Reports) > maxReports {
			ans.Reports = ans.Reports[:maxReports]
		}
		if err := c.WriteMsg(ans); err != nil {
			log.Debug("reports not sent", "to", st.Conn().RemotePeer(), "err", err)
			return
		}
		st.Close()
	})
	return func() { s.RemoveStreamHandler(ReportsProtocol) }
}

// FetchReports asks p for the reports of epoch and stores those that
// open, are of network and epoch, and are new; it returns how many were
// added. A report that does not open is an error naming p, and is not
// stored.
func FetchReports(ctx context.Context, s challenge.Streams, p peer.ID, network string, epoch uint64, dst *proofs.ReportStore) (int, error) {
	st, err := s.NewStream(ctx, p, ReportsProtocol)
	if err != nil {
		return 0, fmt.Errorf("settle: reports of epoch %d from %s: %w", epoch, p, err)
	}
	defer st.Close()
	c := wire.NewConn(st, maxReportsAnswer, reportsTimeout)
	if err := c.WriteMsg(reportsRequest{Epoch: epoch}); err != nil {
		return 0, fmt.Errorf("settle: reports of epoch %d from %s: %w", epoch, p, err)
	}
	var ans reportsAnswer
	if err := c.ReadMsg(&ans); err != nil {
		return 0, fmt.Errorf("settle: reports of epoch %d from %s: %w", epoch, p, err)
	}
	if ans.Error != "" {
		return 0, fmt.Errorf("settle: reports of epoch %d from %s: %s", epoch, p, ans.Error)
	}
	if len(ans.Reports) > maxReports {
		return 0, fmt.Errorf("settle: %s sent %d reports, over %d", p, len(ans.Reports), maxReports)
	}
	added := 0
	var errs []error
	for i, env := range ans.Reports {
		r, _, err := proofs.OpenReport(env)
		if err == nil && (r.Network != network || r.Epoch != epoch) {
			err = fmt.Errorf("report of %s epoch %d, asked for %s epoch %d", r.Network, r.Epoch, network, epoch)
		}
		if err != nil {
			errs = append(errs, fmt.Errorf("settle: report %d from %s: %w", i, p, err))
			continue
		}
		_, _, isNew, err := dst.Put(env)
		if err != nil {
			return added, err
		}
		if isNew {
			added++
		}
	}
	return added, errors.Join(errs...)
}
