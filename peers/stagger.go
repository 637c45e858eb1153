package peers

import (
	"bytes"
	"time"

	"golang.zx2c4.com/wireguard/wgctrl/wgtypes"
)

// StaggerDelay is how long the node whose public key sorts higher waits
// before it lets a newly added peer's keepalive start a handshake. It is
// far longer than a handshake round trip on a busy node, and far shorter
// than WireGuard's 5 s retry.
const StaggerDelay = time.Second

// Stagger keeps the two ends of a new link from opening it at the same
// moment. When a peer is added with a persistent keepalive, the device
// sends a handshake initiation at once. If both ends are configured at
// nearly the same time (as a deploy does), their initiations cross: each
// side drops its own half-done handshake to answer the other's, neither
// answer is accepted, and the link stays down until the 5 s retry. The
// same 5 s is lost when an initiation reaches a node that does not know
// the sender yet.
//
// So of two members, only the one whose public key sorts lower initiates
// when the peer is added. Stagger removes the keepalive from cfg's peer
// additions whose key sorts below self and returns, for those peers, the
// UpdateOnly configuration that sets it, for the caller to apply after
// StaggerDelay. By then either the other side's initiation has completed
// the handshake (the keepalive then only sends a keepalive), or it was lost
// because this node was not configured yet, and this node's initiation
// reaches a side that knows it. UpdateOnly keeps a peer removed meanwhile
// removed. Updates and removals are left alone: their peer's session is
// already running.
func Stagger(cfg *wgtypes.Config, self wgtypes.Key) []wgtypes.PeerConfig {
	var later []wgtypes.PeerConfig
	for i := range cfg.Peers {
		pc := &cfg.Peers[i]
		if pc.UpdateOnly || pc.Remove || pc.Endpoint == nil || pc.PersistentKeepaliveInterval == nil ||
			*pc.PersistentKeepaliveInterval == 0 || bytes.Compare(self[:], pc.PublicKey[:]) < 0 {
			continue
		}
		keepalive := *pc.PersistentKeepaliveInterval
		off := time.Duration(0)
		pc.PersistentKeepaliveInterval = &off
		later = append(later, wgtypes.PeerConfig{PublicKey: pc.PublicKey, UpdateOnly: true, PersistentKeepaliveInterval: &keepalive})
	}
	return later
}
