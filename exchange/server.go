package exchange

import (
	"context"
	"errors"
	"fmt"
	"slices"
	"strings"
	"sync"
	"time"

	"github.com/ipfs/go-cid"
	"github.com/libp2p/go-libp2p/core/network"
	"github.com/libp2p/go-libp2p/core/peer"
	"github.com/libp2p/go-libp2p/core/protocol"

	"github.com/aropeer/aropeer/proofs"
	"github.com/aropeer/aropeer/store"
	"github.com/aropeer/aropeer/wire"
)

// Protocol is the receipts catch-up protocol.
const Protocol protocol.ID = "/aro/receipts/1.0.0"

// Streams opens and serves streams; a host.Host satisfies it.
type Streams interface {
	NewStream(ctx context.Context, p peer.ID, pids ...protocol.ID) (network.Stream, error)
	SetStreamHandler(pid protocol.ID, handler network.StreamHandler)
	RemoveStreamHandler(pid protocol.ID)
}

// Source is what a server answers from.
type Source interface {
	// CIDs returns the sorted CIDs of epoch's receipts (of edge only, if
	// edge != "").
	CIDs(epoch uint64, edge peer.ID) ([]cid.Cid, error)
	// Get returns a receipt's sealed envelope, or an error wrapping
	// store.ErrNotFound.
	Get(id cid.Cid) ([]byte, error)
}

// StoreSource serves the receipts of s.
func StoreSource(s *proofs.ReceiptStore) Source { return storeSource{s} }

type storeSource struct{ s *proofs.ReceiptStore }

func (ss storeSource) CIDs(epoch uint64, edge peer.ID) ([]cid.Cid, error) {
	return ss.s.CIDs(epoch, edge)
}

func (ss storeSource) Get(id cid.Cid) ([]byte, error) {
	_, env, err := ss.s.Get(id)
	return env, err
}

// compareCIDs orders CIDs by their bytes, as batches and lists do.
func compareCIDs(a, b cid.Cid) int { return strings.Compare(a.KeyString(), b.KeyString()) }

// server answers requests from a Source.
type server struct {
	src   Source
	o     options
	slots chan struct{} // one per stream being served

	ctx context.Context // ended by stop, which resets every stream
	mu  sync.Mutex
	wg  sync.WaitGroup // handlers running
	off bool           // stop was called
}

// Serve answers the protocol on s from src until stop is called. stop
// removes the handler, resets the streams being served and returns when
// their handlers have returned.
func Serve(s Streams, src Source, opts ...Option) (stop func()) {
	ctx, cancel := context.WithCancel(context.Background())
	sv := &server{src: src, o: newOptions(opts), ctx: ctx}
	sv.slots = make(chan struct{}, sv.o.maxStreams)
	s.SetStreamHandler(Protocol, sv.handle)
	return func() {
		s.RemoveStreamHandler(Protocol)
		sv.mu.Lock()
		sv.off = true
		sv.mu.Unlock()
		cancel()
		sv.wg.Wait()
	}
}

// enter counts a handler in, unless the server is stopped.
func (sv *server) enter() bool {
	sv.mu.Lock()
	defer sv.mu.Unlock()
	if sv.off {
		return false
	}
	sv.wg.Add(1)
	return true
}

func (sv *server) handle(s network.Stream) {
	if !sv.enter() {
		_ = s.Reset()
		return
	}
	defer sv.wg.Done()
	ctx, cancel := context.WithTimeout(sv.ctx, sv.o.timeout)
	defer cancel()
	deadline, done := watch(ctx, s)
	defer done()
	log := sv.o.log.With("peer", s.Conn().RemotePeer())

	select {
	case sv.slots <- struct{}{}:
		defer func() { <-sv.slots }()
	default:
		sv.refuse(s, deadline, CodeBusy, fmt.Sprintf("serving %d streams already; retry later", cap(sv.slots)))
		return
	}
	release, err := attach(s, maxRequestSize)
	if err != nil {
		sv.refuse(s, deadline, CodeBusy, "out of memory for the request; retry later")
		return
	}
	defer release()

	b, err := wire.ReadFrame(s, maxRequestSize, deadline)
	if errors.Is(err, wire.ErrFrameTooLarge) {
		sv.refuse(s, deadline, CodeTooLarge, fmt.Sprintf("request over %d bytes", maxRequestSize))
		return
	}
	if err != nil {
		// Silent, gone or out of step: nothing to answer.
		log.Debug("read request", "err", err)
		_ = s.Reset()
		return
	}
	req, err := decodeRequest(b)
	if err != nil {
		code := CodeBadRequest
		if errors.Is(err, errTooMany) {
			code = CodeTooLarge
		}
		sv.refuse(s, deadline, code, err.Error())
		return
	}

	var resp response
	switch {
	case req.List != nil:
		resp, err = sv.list(req.List)
	default:
		release, rerr := reserve(s, getResponseSize(len(req.Get.CIDs)))
		if rerr != nil {
			sv.refuse(s, deadline, CodeBusy, "out of memory for the response; retry later")
			return
		}
		defer release()
		resp, err = sv.get(req.Get)
	}
	if err != nil {
		log.Warn("answer request", "err", err)
		sv.refuse(s, deadline, CodeInternal, "the server failed to answer")
		return
	}
	sv.send(s, deadline, resp)
}

// list answers one page of the sorted CID list. Each page lists the
// epoch anew, which costs a walk of the epoch's index per page: fine for
// catch-up of thousands; a Source that pages would serve millions better.
func (sv *server) list(req *listRequest) (response, error) {
	ids, err := sv.src.CIDs(req.Epoch, req.Edge)
	if err != nil {
		return response{}, fmt.Errorf("list epoch %d: %w", req.Epoch, err)
	}
	after := string(req.After)
	start, found := slices.BinarySearchFunc(ids, after, func(id cid.Cid, after string) int {
		return strings.Compare(id.KeyString(), after)
	})
	if found {
		start++
	}
	end := min(start+min(int(req.Limit), sv.o.pageSize), len(ids))
	// An empty page is a nil slice, which encodes as null rather than []:
	// make it empty so every page encodes alike.
	page := append([]cid.Cid{}, ids[start:end]...)
	return response{List: &listResponse{CIDs: page, More: end < len(ids)}}, nil
}

// get answers the envelopes the server has of those asked for.
func (sv *server) get(req *getRequest) (response, error) {
	envs := make([][]byte, len(req.CIDs))
	for i, id := range req.CIDs {
		env, err := sv.src.Get(id)
		switch {
		case errors.Is(err, store.ErrNotFound) || len(env) > proofs.MaxReceiptSize:
			envs[i] = []byte{} // a client could not accept it anyway
		case err != nil:
			return response{}, fmt.Errorf("get %s: %w", id, err)
		default:
			envs[i] = env
		}
	}
	return response{Get: &getResponse{Envelopes: envs}}, nil
}

// refuse answers an error response and closes s.
func (sv *server) refuse(s network.Stream, deadline time.Time, code Code, msg string) {
	if len(msg) > maxMessageLen {
		msg = strings.ToValidUTF8(msg[:maxMessageLen], "")
	}
	sv.send(s, deadline, response{Error: &errorResponse{Code: code, Message: msg}})
}

// send writes resp and closes s, or resets it if that fails.
func (sv *server) send(s network.Stream, deadline time.Time, resp response) {
	b, err := wire.Marshal(resp)
	if err == nil {
		err = wire.WriteFrame(s, b, deadline)
	}
	if err != nil {
		sv.o.log.Debug("write response", "peer", s.Conn().RemotePeer(), "err", err)
		_ = s.Reset()
		return
	}
	_ = s.Close()
}
