package daemon

import (
	"fmt"
	"math/rand/v2"
	"testing"

	"github.com/stretchr/testify/require"
	"golang.zx2c4.com/wireguard/wgctrl/wgtypes"

	"github.com/znet/znet/peers"
	"github.com/znet/znet/spec"
)

// newMembersRef is newMembers as it was before it decoded keys only when
// some are waited for, without allocating: the reference
// TestNewMembersMatchesReference holds it to.
func newMembersRef(self string, before, s *spec.Spec) arrivals {
	arr := arrivals{wait: peers.Waiting(s, self)}
	had := map[string]bool{}
	if before != nil {
		for _, m := range before.Nodes {
			had[m.ID] = true
			if key, err := wgtypes.ParseKey(m.PublicKey); err == nil {
				delete(arr.wait, key)
			}
		}
	}
	for _, m := range s.Nodes {
		if m.ID != self && !had[m.ID] {
			arr.ids = append(arr.ids, m.ID)
		}
	}
	return arr
}

// randomMembers is a spec of members drawn from small pools of ids and
// keys, some keys malformed or written otherwise (base64 whose unused
// bits are set decodes to the same key), public or hidden.
func randomMembers(r *rand.Rand, keys []wgtypes.Key) *spec.Spec {
	s := &spec.Spec{Name: "shop"}
	for range r.IntN(12) {
		k := keys[r.IntN(len(keys))].String()
		switch r.IntN(8) {
		case 0:
			k = "not a key"
		case 1:
			k = k[:42] + string(k[42]+1) + "=" // the same key when the last bits are unused
		}
		n := spec.Node{ID: fmt.Sprintf("n%d", r.IntN(8)), PublicKey: k}
		if r.IntN(2) == 0 {
			n.Endpoint = "198.18.0.1:40000"
		}
		s.Nodes = append(s.Nodes, n)
	}
	return s
}

func TestNewMembersMatchesReference(t *testing.T) {
	r := rand.New(rand.NewPCG(5, 6))
	keys := make([]wgtypes.Key, 6)
	for i := range keys {
		keys[i][0] = byte(i + 1)
	}
	d := &Daemon{nodeID: "n0"}
	waited := 0
	for i := range 20000 {
		s := randomMembers(r, keys)
		s.Nodes = append(s.Nodes, spec.Node{ID: "n0", Endpoint: []string{"", "198.18.0.9:1"}[r.IntN(2)]})
		var before *spec.Spec
		if r.IntN(4) != 0 {
			before = randomMembers(r, keys)
		}
		want := newMembersRef(d.nodeID, before, s)
		require.Equal(t, want, d.newMembers(before, s), "spec %d", i)
		waited += len(want.wait)
	}
	require.Greater(t, waited, 1000, "members waited for were drawn")
}
