package api

// BeaconRound is the body of GET /v1/beacon/{round|latest}: a verified
// round and the source that served it.
type BeaconRound struct {
	Round             uint64 `json:"round"`
	Randomness        string `json:"randomness"`
	Signature         string `json:"signature"`
	PreviousSignature string `json:"previous_signature,omitempty"`
	Source            string `json:"source"`
}
