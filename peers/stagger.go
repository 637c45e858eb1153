package peers

import (
	"time"

	"github.com/znet/znet/spec"
	"golang.zx2c4.com/wireguard/wgctrl/wgtypes"
)

// StaggerDelay is how long a public member waits before it lets a newly
// added public peer whose id sorts below its own start a handshake from
// its side. It is longer than WireGuard's retry (5 s, plus up to 334 ms
// of jitter) with room for a loaded node: the lower side's first
// initiation is lost when this node was not configured yet, and its retry
// reaches this node at most that long after this node was configured. A
// 2 s delay made both sides initiate within the same second or two at a
// deploy (measured at 70 nodes: 395 of 2,415 pairs, nearly every pair
// later than 4 s); a handshake message waits up to 3 s in a loaded data
// plane's queue, so two initiations that far apart still cross, and the
// retries of both sides then cross again 5 s later. The DNS resolver
// holds back its first packet to such a member for as long (dnsresolver's
// quietStart).
const StaggerDelay = 10 * time.Second

// StartDelay is how long a public member waits before it starts the
// handshake with a newly added public peer whose id sorts above its own.
// The members of a deploy are configured within a fraction of a second of
// each other on a small lab: an initiation sent the moment this node is
// configured is lost when the other is not yet, and WireGuard retries it
// only 5 s later (at 20 nodes, with StaggerDelay past that retry, the
// last pair came 5.2 s after the apply; 1 s later almost every one
// reaches a configured node).
const StartDelay = time.Second

// Waiting returns, when node self is public, the public key of every
// other public member of s, mapped to whether self waits for that member
// to start the handshake: true when its id sorts below self's, false when
// self starts it (after StartDelay). A hidden member is left out (only it
// can reach the other side), and a hidden self starts every link at once
// (nil).
//
// When a peer is added with a persistent keepalive, the device sends a
// handshake initiation at once. If both ends of a link are configured at
// nearly the same time (as a deploy does), their initiations cross: each
// side drops its own half-done handshake to answer the other's, neither
// answer is accepted, and the link stays down until the 5 s retry. The
// same 5 s is lost when an initiation reaches a node that does not know
// the sender yet. So of two public members only the one whose id sorts
// lower starts, StartDelay after it is configured, and goes on retrying
// every 5 s until the other is configured; the other only answers for
// StaggerDelay (see Stagger).
func Waiting(s *spec.Spec, self string) map[wgtypes.Key]bool {
	me, ok := s.Node(self)
	if !ok || me.Endpoint == "" {
		return nil
	}
	out := map[wgtypes.Key]bool{}
	for _, n := range s.Nodes {
		if n.ID == self || n.Endpoint == "" {
			continue
		}
		if key, err := wgtypes.ParseKey(n.PublicKey); err == nil {
			out[key] = n.ID < self
		}
	}
	return out
}

// Stagger removes the keepalive from cfg's additions of the peers in wait
// and returns, for those peers, the UpdateOnly configurations that set it:
// soon, for the peers this node starts, to apply after StartDelay; later,
// for the peers it waits for, to apply after StaggerDelay. By then the
// other side's initiation, or its retry 5 s later when the first reached
// this node before it was configured, has completed the handshake, and the
// keepalive only sends a keepalive. If not (the other side is not
// configured yet or cannot reach this node), this node's initiation starts
// the link. UpdateOnly keeps a peer removed meanwhile removed. Updates and
// removals are left alone: their peer's session is already running.
func Stagger(cfg *wgtypes.Config, wait map[wgtypes.Key]bool) (soon, later []wgtypes.PeerConfig) {
	for i := range cfg.Peers {
		pc := &cfg.Peers[i]
		waits, staggered := wait[pc.PublicKey]
		if !staggered || pc.UpdateOnly || pc.Remove || pc.PersistentKeepaliveInterval == nil || *pc.PersistentKeepaliveInterval == 0 {
			continue
		}
		keepalive := *pc.PersistentKeepaliveInterval
		off := time.Duration(0)
		pc.PersistentKeepaliveInterval = &off
		raise := wgtypes.PeerConfig{PublicKey: pc.PublicKey, UpdateOnly: true, PersistentKeepaliveInterval: &keepalive}
		if waits {
			later = append(later, raise)
		} else {
			soon = append(soon, raise)
		}
	}
	return soon, later
}
