package remote

import (
	"bytes"
	"testing"

	"github.com/ipfs/go-cid"
	"github.com/libp2p/go-libp2p/core/peer"

	"github.com/aropeer/aropeer/chain"
	"github.com/aropeer/aropeer/proofs"
	"github.com/aropeer/aropeer/wire"
)

func FuzzRequest(f *testing.F) {
	m, edge := newMember(f, 1), newMember(f, 2)
	b := proofs.BuildBatch(devnet, 1, []cid.Cid{wire.CIDOf([]byte("r"))},
		[]proofs.EdgeResult{{Edge: edge.id, Epoch: 1, Reward: 3}}, map[peer.ID]uint64{m.id: 1}, 5)
	sb := sign(f, b, m)
	for _, req := range []request{
		{Op: opSubmitBatch, Batch: &sb},
		{Op: opBatch, Epoch: 7},
		{Op: opAccount, ID: m.id},
		{Op: opAccounts},
		{Op: opKeepers},
		{Op: opSetStake, ID: m.id, Stake: 5},
		{Op: opSubmitDispute, Dispute: &chain.Dispute{A: []byte{1}, B: []byte{2}}},
		{Op: opHead},
		{Op: opBlocks, From: 3},
		{Op: "mint"},
		{Op: opHead, Epoch: 1},
	} {
		b, err := wire.Marshal(req)
		if err != nil {
			f.Fatal(err)
		}
		f.Add(b)
	}
	f.Fuzz(func(t *testing.T, data []byte) {
		req, err := decodeRequest(data)
		if err != nil {
			return
		}
		again, err := wire.Marshal(req)
		if err != nil {
			t.Fatalf("accepted %x but cannot re-encode it: %v", data, err)
		}
		if !bytes.Equal(again, data) {
			t.Fatalf("accepted %x, which re-encodes to %x", data, again)
		}
	})
}

// FuzzResponse feeds the client's decoder what a sequencer might send:
// whatever it accepts re-encodes to the same bytes.
func FuzzResponse(f *testing.F) {
	m := newMember(f, 1)
	for _, resp := range []response{
		{Code: codeNotFound, Message: "no batch"},
		{Account: &chain.Account{ID: m.id, Role: chain.RoleKeeper, Stake: 100}},
		{Accounts: []chain.Account{{ID: m.id, Role: chain.RoleEdge, Balance: -3}}},
		{Head: &chain.Head{Height: 2, Hash: []byte{1, 2}, Network: devnet}},
	} {
		b, err := wire.Marshal(resp)
		if err != nil {
			f.Fatal(err)
		}
		f.Add(b)
	}
	f.Fuzz(func(t *testing.T, data []byte) {
		var resp response
		if err := wire.Unmarshal(data, &resp, responseCap(opBlocks)); err != nil {
			return
		}
		again, err := wire.Marshal(resp)
		if err != nil || !bytes.Equal(again, data) {
			t.Fatalf("accepted %x, which re-encodes to %x (%v)", data, again, err)
		}
	})
}
