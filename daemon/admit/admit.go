// Package admit holds the rules by which a node admits a spec that has
// been validated for it (spec.Validate): the node must be a member, its
// own entry must carry the key and port it reserved, and generations only
// grow, an equal one bringing the same content (then nothing changes).
//
// The daemon applies these rules, and so does deploytest's fake node, so
// that code tested against the fake meets the daemon's answers. What
// depends on the node's other state (workloads and access peers holding
// addresses from its subnet) stays with the daemon. The errors are the
// API's: 400 for a node that is not a member, 409 for the rest.
package admit

import (
	"fmt"

	"github.com/znet/znet/api"
	"github.com/znet/znet/spec"
)

// Reservation is what a node holds for a network: the public half of its
// key and its UDP port.
type Reservation struct {
	PublicKey  string
	ListenPort int
}

// SelfIndex returns the index of node self's entry in s, or -1.
func SelfIndex(s *spec.Spec, self string) int {
	for i, n := range s.Nodes {
		if n.ID == self {
			return i
		}
	}
	return -1
}

// Member refuses a spec that does not list node self.
func Member(s *spec.Spec, self string) error {
	if SelfIndex(s, self) < 0 {
		return api.Invalid("nodes", "this node (%s) is not a member; to leave a network, delete it", self)
	}
	return nil
}

// Unreserved refuses a first apply on a node without a reservation for
// s unless the node's entry leaves its key out (then the node may reserve
// on the spot). s must list self.
func Unreserved(s *spec.Spec, self string) error {
	i := SelfIndex(s, self)
	if s.Nodes[i].PublicKey != "" {
		return api.Conflict(fmt.Sprintf("nodes[%d].public_key", i),
			"node %s has no reservation for %s; reserve first (znet network reserve %s)", self, s.Name, s.Name)
	}
	return nil
}

// Check decides whether s may replace old (nil when nothing is applied)
// on node self, which holds r, and whether it changes anything. s must
// list self.
func Check(s, old *spec.Spec, self string, r Reservation) (changed bool, err error) {
	i := SelfIndex(s, self)
	own := s.Nodes[i]
	if own.PublicKey != "" && own.PublicKey != r.PublicKey {
		return false, api.Conflict(fmt.Sprintf("nodes[%d].public_key", i),
			"is not the key node %s reserved for %s (%s)", self, s.Name, r.PublicKey)
	}
	if own.Endpoint != "" {
		_, port, err := spec.ParseEndpoint(own.Endpoint)
		if err == nil && int(port) != r.ListenPort {
			return false, api.Conflict(fmt.Sprintf("nodes[%d].endpoint", i),
				"port %d is not the port node %s reserved for %s (%d)", port, self, s.Name, r.ListenPort)
		}
	}
	if old == nil {
		return true, nil
	}
	switch {
	case s.Generation < old.Generation:
		return false, api.Conflict("generation", "%d is older than the applied generation %d", s.Generation, old.Generation)
	case s.Generation == old.Generation:
		filled := s.Clone()
		FillSelf(filled, self, r.PublicKey)
		if !filled.Equal(old) {
			return false, api.Conflict("generation", "generation %d is already applied with different content; bump the generation", s.Generation)
		}
		return false, nil
	}
	return true, nil
}

// FillSelf puts key, the node's reserved key, into node self's entry
// when s leaves it out, so that the stored spec is complete. s must list
// self.
func FillSelf(s *spec.Spec, self, key string) {
	if i := SelfIndex(s, self); s.Nodes[i].PublicKey == "" {
		s.Nodes[i].PublicKey = key
	}
}
