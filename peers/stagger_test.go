package peers

import (
	"net"
	"testing"
	"time"

	"github.com/stretchr/testify/assert"
	"github.com/stretchr/testify/require"
	"golang.zx2c4.com/wireguard/wgctrl/wgtypes"
)

func TestStagger(t *testing.T) {
	key := func(b byte) wgtypes.Key { var k wgtypes.Key; k[0] = b; return k }
	ka := func(d time.Duration) *time.Duration { return &d }
	ep := &net.UDPAddr{IP: net.IPv4(198, 18, 0, 2), Port: 51820}
	self := key(5)
	cfg := wgtypes.Config{Peers: []wgtypes.PeerConfig{
		{PublicKey: key(1), Endpoint: ep, PersistentKeepaliveInterval: ka(25 * time.Second)},                   // lower: waits
		{PublicKey: key(9), Endpoint: ep, PersistentKeepaliveInterval: ka(25 * time.Second)},                   // higher: we initiate
		{PublicKey: key(2), PersistentKeepaliveInterval: ka(0)},                                                // hidden: it initiates
		{PublicKey: key(3), Endpoint: ep, UpdateOnly: true, PersistentKeepaliveInterval: ka(25 * time.Second)}, // running session
		{PublicKey: key(4), Remove: true},
	}}
	later := Stagger(&cfg, self)

	require.Len(t, later, 1)
	assert.Equal(t, key(1), later[0].PublicKey)
	assert.True(t, later[0].UpdateOnly, "a peer removed meanwhile must not come back")
	assert.Equal(t, 25*time.Second, *later[0].PersistentKeepaliveInterval)
	assert.Zero(t, *cfg.Peers[0].PersistentKeepaliveInterval, "the lower-keyed peer is added silent")
	assert.Equal(t, 25*time.Second, *cfg.Peers[1].PersistentKeepaliveInterval)
	assert.Equal(t, 25*time.Second, *cfg.Peers[3].PersistentKeepaliveInterval)
	assert.Len(t, cfg.Peers, 5)

	// Each pair of members: exactly one side initiates at once.
	a, b := key(7), key(8)
	for _, pair := range [][2]wgtypes.Key{{a, b}, {b, a}} {
		c := wgtypes.Config{Peers: []wgtypes.PeerConfig{{PublicKey: pair[1], Endpoint: ep, PersistentKeepaliveInterval: ka(25 * time.Second)}}}
		deferred := len(Stagger(&c, pair[0])) == 1
		assert.Equal(t, pair[0] == b, deferred)
	}
}
