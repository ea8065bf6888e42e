package node

import (
	"context"
	"encoding/hex"
	"errors"
	"fmt"
	"net/http"
	"strconv"

	"github.com/aropeer/aropeer/beacon"
	"github.com/aropeer/aropeer/node/api"
)

// BeaconPath is where the API serves rounds: BeaconPath+"latest" or
// BeaconPath+"<round>".
const BeaconPath = "/v1/beacon/"

// BeaconJSON is a verified beacon as the API serves it.
func BeaconJSON(b beacon.Beacon, source string) api.BeaconRound {
	r := api.BeaconRound{
		Round:      b.Round,
		Randomness: hex.EncodeToString(b.Randomness),
		Signature:  hex.EncodeToString(b.Signature),
		Source:     source,
	}
	if len(b.PreviousSignature) > 0 {
		r.PreviousSignature = hex.EncodeToString(b.PreviousSignature)
	}
	return r
}

// sourceNamer is a source that says which of its parts served a round.
type sourceNamer interface {
	GetFrom(ctx context.Context, round uint64) (beacon.Beacon, string, error)
}

func (n *Node) beaconHandler() http.Handler {
	return http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		arg := r.PathValue("round")
		var round uint64
		if arg == "latest" {
			round = n.feed.latest.Load()
			if round == 0 {
				api.WriteError(w, http.StatusNotFound, errors.New("no verified round yet: the node has not received a beacon"))
				return
			}
		} else {
			var err error
			if round, err = strconv.ParseUint(arg, 10, 64); err != nil || round == 0 {
				api.WriteError(w, http.StatusBadRequest, fmt.Errorf("round %q: want a positive number or latest", arg))
				return
			}
		}
		b, source, err := n.feed.GetFrom(r.Context(), round)
		switch {
		case errors.Is(err, beacon.ErrNotYet):
			api.WriteError(w, http.StatusNotFound, fmt.Errorf("round %d has not happened yet", round))
		case errors.Is(err, beacon.ErrUnavailable):
			// The sources' reasons are in the node's log; the user needs the gist.
			n.log.Debug("beacon round unavailable", "round", round, "err", err)
			api.WriteError(w, http.StatusNotFound, fmt.Errorf("round %d is not available from this node's beacon sources (gossip keeps only recent rounds)", round))
		case err != nil:
			api.WriteError(w, http.StatusInternalServerError, err)
		default:
			api.WriteJSON(w, http.StatusOK, BeaconJSON(b, source))
		}
	})
}
