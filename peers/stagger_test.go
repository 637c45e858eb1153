package peers

import (
	"net"
	"testing"
	"time"

	"github.com/stretchr/testify/assert"
	"github.com/stretchr/testify/require"
	"github.com/znet/znet/spec"
	"golang.zx2c4.com/wireguard/device"
	"golang.zx2c4.com/wireguard/wgctrl/wgtypes"
)

func TestWaiting(t *testing.T) {
	k := func(b byte) wgtypes.Key { var k wgtypes.Key; k[0] = b; return k }
	node := func(id string, key byte, endpoint string) spec.Node {
		return spec.Node{ID: id, PublicKey: k(key).String(), Endpoint: endpoint}
	}
	s := &spec.Spec{Nodes: []spec.Node{
		node("a", 9, "198.18.0.1:51820"), // public, id below b and c
		node("b", 1, "198.18.0.2:51820"),
		node("c", 5, "198.18.0.3:51820"),
		node("h", 7, ""), // hidden
	}}
	tests := []struct {
		self string
		want map[wgtypes.Key]bool
	}{
		{"a", map[wgtypes.Key]bool{k(1): false, k(5): false}}, // lowest id: starts every link
		{"b", map[wgtypes.Key]bool{k(9): true, k(5): false}},  // waits for a (ids, not keys, decide)
		{"c", map[wgtypes.Key]bool{k(9): true, k(1): true}},   // waits for a and b
		{"h", nil}, // hidden: always starts, nobody can reach it first
		{"x", nil}, // not a member
	}
	for _, tt := range tests {
		t.Run(tt.self, func(t *testing.T) {
			assert.Equal(t, tt.want, Waiting(s, tt.self))
		})
	}
	// Of two public members exactly one waits for the other.
	for _, a := range []string{"a", "b", "c"} {
		for _, b := range []string{"a", "b", "c"} {
			if a == b {
				continue
			}
			na, _ := s.Node(a)
			nb, _ := s.Node(b)
			ka, _ := wgtypes.ParseKey(na.PublicKey)
			kb, _ := wgtypes.ParseKey(nb.PublicKey)
			assert.NotEqual(t, Waiting(s, a)[kb], Waiting(s, b)[ka], "%s and %s", a, b)
		}
	}
}

func TestStagger(t *testing.T) {
	key := func(b byte) wgtypes.Key { var k wgtypes.Key; k[0] = b; return k }
	ka := func(d time.Duration) *time.Duration { return &d }
	ep := &net.UDPAddr{IP: net.IPv4(198, 18, 0, 2), Port: 51820}
	cfg := wgtypes.Config{Peers: []wgtypes.PeerConfig{
		{PublicKey: key(1), Endpoint: ep, PersistentKeepaliveInterval: ka(25 * time.Second)},                   // waited for
		{PublicKey: key(9), Endpoint: ep, PersistentKeepaliveInterval: ka(25 * time.Second)},                   // we start, a bit later
		{PublicKey: key(3), Endpoint: ep, UpdateOnly: true, PersistentKeepaliveInterval: ka(25 * time.Second)}, // running session
		{PublicKey: key(4), Remove: true},
	}}
	wait := map[wgtypes.Key]bool{key(1): true, key(9): false, key(3): true, key(4): true}
	soon, later := Stagger(&cfg, wait)

	require.Len(t, later, 1)
	assert.Equal(t, key(1), later[0].PublicKey)
	assert.True(t, later[0].UpdateOnly, "a peer removed meanwhile must not come back")
	assert.Equal(t, 25*time.Second, *later[0].PersistentKeepaliveInterval)
	require.Len(t, soon, 1)
	assert.Equal(t, key(9), soon[0].PublicKey)
	assert.True(t, soon[0].UpdateOnly)
	assert.Equal(t, 25*time.Second, *soon[0].PersistentKeepaliveInterval)
	assert.Zero(t, *cfg.Peers[0].PersistentKeepaliveInterval, "the waited-for peer is added silent")
	assert.Zero(t, *cfg.Peers[1].PersistentKeepaliveInterval, "the peer we start is added silent too, started StartDelay later")
	assert.Equal(t, 25*time.Second, *cfg.Peers[2].PersistentKeepaliveInterval, "an update is left alone")
	assert.True(t, cfg.Peers[3].Remove)
	untouched := wgtypes.Config{Peers: []wgtypes.PeerConfig{{PublicKey: key(9), Endpoint: ep, PersistentKeepaliveInterval: ka(25 * time.Second)}}}
	soon, later = Stagger(&untouched, nil)
	assert.Empty(t, soon, "a hidden node starts its links at once")
	assert.Empty(t, later)
	assert.Equal(t, 25*time.Second, *untouched.Peers[0].PersistentKeepaliveInterval)
}

// TestStartDelayBeforeStagger checks the order of the two delays: the
// side that starts a link does so well before the other would.
func TestStartDelayBeforeStagger(t *testing.T) {
	assert.Less(t, StartDelay+device.RekeyTimeout+device.RekeyTimeoutJitterMaxMs*time.Millisecond, StaggerDelay,
		"the starting side's first retry comes before the waiting side gives up waiting")
}

// TestStaggerDelayOutlastsRetry checks that the waiting side stays silent
// past the other side's retry: an initiation that reached this node before
// it was configured is retried RekeyTimeout (plus jitter) later, and if
// this node initiated before that retry had been answered, the two would
// cross (issue 17: at 70 nodes under load, a 2 s delay left 395 pairs with
// both sides initiating, and the mesh 12 s after the apply).
func TestStaggerDelayOutlastsRetry(t *testing.T) {
	retry := device.RekeyTimeout + device.RekeyTimeoutJitterMaxMs*time.Millisecond
	assert.GreaterOrEqual(t, StaggerDelay, retry+3*time.Second, "room for a handshake message queued for seconds in a loaded data plane")
}
