package proofs

import "fmt"

// Kind is a resource a challenge proves.
type Kind string

// The resource kinds.
const (
	KindLiveness  Kind = "liveness"
	KindStorage   Kind = "storage"
	KindBandwidth Kind = "bandwidth"
	KindCompute   Kind = "compute"
)

// Kinds lists every kind in a stable order.
func Kinds() []Kind { return []Kind{KindLiveness, KindStorage, KindBandwidth, KindCompute} }

// ParseKind returns the kind named s.
func ParseKind(s string) (Kind, error) {
	for _, k := range Kinds() {
		if string(k) == s {
			return k, nil
		}
	}
	return "", fmt.Errorf("proofs: unknown resource kind %q: want liveness, storage, bandwidth or compute", s)
}
