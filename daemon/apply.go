package daemon

import (
	"context"
	"errors"
	"fmt"
	"net/netip"
	"time"

	"github.com/znet/znet/api"
	"github.com/znet/znet/daemon/admit"
	"github.com/znet/znet/ipam"
	"github.com/znet/znet/peers"
	"github.com/znet/znet/spec"
	"github.com/znet/znet/store"
)

// Apply implements api.Service. The spec is checked against what this node
// reserved and applied before; then the kernel is made to match it, and
// only when that worked is it committed. A failure half way restores the
// last good spec (or removes a network that had none).
func (d *Daemon) Apply(ctx context.Context, in *spec.Spec) (api.ApplyResult, error) {
	defer func(start time.Time) { d.observeApply(time.Since(start)) }(time.Now())
	s := in.Clone()
	s.SetDefaults()
	if err := s.Validate(d.nodeID); err != nil {
		return api.ApplyResult{}, err
	}
	if err := admit.Member(s, d.nodeID); err != nil {
		return api.ApplyResult{}, err
	}
	var res api.ApplyResult
	err := d.locked(ctx, func(ctx context.Context) error {
		n, wls, err := d.loadNetwork(s.Name)
		switch {
		case errors.Is(err, api.ErrNotFound):
			// A spec that lists only this node may come without a reservation.
			if n, err = d.reserveForApply(s); err != nil {
				return err
			}
		case err != nil:
			return err
		}
		if n.Zos != nil {
			return api.Conflict("name", "network %s realizes zos workload %q of twin %d; change it with znet zos apply",
				s.Name, n.Zos.Name, n.Zos.Twin)
		}
		res, err = d.applyLocked(ctx, n, n, s, wls)
		return err
	})
	return res, err
}

// applyLocked makes network n, whose stored record is old, match spec s
// and commits n with s. n is old, or old with what the caller changed (a
// zos workload's imported key, port and origin); a failure restores old.
func (d *Daemon) applyLocked(ctx context.Context, old, n *store.Network, s *spec.Spec, wls []*store.Workload) (api.ApplyResult, error) {
	changed, err := d.checkApply(n, s, wls)
	if err != nil {
		return api.ApplyResult{}, err
	}
	if s.Egress {
		if _, err := transferAddr(n.ListenPort); err != nil {
			return api.ApplyResult{}, err
		}
	}
	if !changed {
		d.realized.forget(s.Name) // a repair: look at everything
	}
	acc, err := d.access(s.Name)
	if err != nil {
		return api.ApplyResult{}, err
	}
	if err := d.checkAccessApply(n, s, acc); err != nil {
		return api.ApplyResult{}, err
	}
	d.fillSelf(n, s)
	doing := fmt.Sprintf("applying %s generation %d", s.Name, s.Generation)
	desired, err := d.checkPeers(ctx, s, acc)
	if err != nil {
		if !errors.Is(err, api.ErrInvalid) {
			err = fmt.Errorf("%s: %w", doing, err) // as commit reports realize's
		}
		return api.ApplyResult{}, err
	}

	next := *n
	next.Spec = s
	if next.Addrs == nil || next.Addrs.Subnet() != d.selfSubnet(s) {
		if next.Addrs, err = ipam.NewAllocator(d.selfSubnet(s)); err != nil {
			return api.ApplyResult{}, api.Invalid("nodes", "%v", err)
		}
	}
	err = d.commit(ctx, change{
		doing: doing,
		kernel: func() error {
			if err := d.realizeDesired(ctx, &next, s, wls, acc, desired, d.newMembers(n.Spec, s)); err != nil {
				return err
			}
			// Workloads whose plumbing was lost (reboot, crash) come back on a
			// re-apply too: re-applying is how an operator repairs a network.
			d.repairWorkloads(ctx, &next, wls)
			return nil
		},
		saving: "saving " + s.Name,
		save:   func(tx *store.Tx) error { return tx.PutNetwork(&next) },
		undo:   func(ctx context.Context) { d.rollback(ctx, old, wls) },
	})
	if err != nil {
		return api.ApplyResult{}, err
	}
	if changed {
		d.log.Info("applied", "network", s.Name, "generation", s.Generation, "nodes", len(s.Nodes))
	}
	return api.ApplyResult{Name: s.Name, Generation: s.Generation, Changed: changed}, nil
}

// reserveForApply reserves a network on first apply when the spec lets the
// node use its own key (no public_key in its entry).
func (d *Daemon) reserveForApply(s *spec.Spec) (*store.Network, error) {
	if err := admit.Unreserved(s, d.nodeID); err != nil {
		return nil, err
	}
	var n *store.Network
	err := d.store.Update(func(tx *store.Tx) error {
		var err error
		if n, err = d.newReservationLocked(tx, s.Name); err != nil {
			return err
		}
		// A spec the new reservation cannot satisfy (its own endpoint
		// names another port) must not leave the reservation behind.
		if _, err := d.checkApply(n, s, nil); err != nil {
			return err
		}
		return tx.PutNetwork(n)
	})
	return n, err
}

// checkApply decides whether s may replace what n has and whether it
// changes anything: admit's rules, then this node's workloads.
func (d *Daemon) checkApply(n *store.Network, s *spec.Spec, wls []*store.Workload) (changed bool, err error) {
	changed, err = admit.Check(s, n.Spec, d.nodeID, admit.Reservation{PublicKey: n.PublicKey, ListenPort: n.ListenPort})
	if err != nil || !changed || n.Spec == nil {
		return changed, err
	}
	old, i := n.Spec, d.selfIndex(s)
	if len(wls) > 0 {
		if d.selfSubnet(s) != d.selfSubnet(old) {
			return false, api.Conflict(fmt.Sprintf("nodes[%d].subnet", i), "cannot change while %d workloads are attached", len(wls))
		}
		if s.IPRange != old.IPRange || s.IPv6Range != old.IPv6Range {
			return false, api.Conflict("ip_range", "cannot change ranges while %d workloads are attached", len(wls))
		}
	}
	return true, nil
}

// checkAccessApply refuses to move this node's subnet or the network's
// ranges from under its access peers: their addresses come from the
// subnet (a new allocator would forget them) and their configs carry the
// ranges.
func (d *Daemon) checkAccessApply(n *store.Network, s *spec.Spec, acc []*store.AccessPeer) error {
	if n.Spec == nil || len(acc) == 0 {
		return nil
	}
	if d.selfSubnet(s) != d.selfSubnet(n.Spec) {
		return api.Conflict(fmt.Sprintf("nodes[%d].subnet", d.selfIndex(s)), "cannot change while %d access peers use it; remove them first", len(acc))
	}
	if s.IPRange != n.Spec.IPRange || s.IPv6Range != n.Spec.IPv6Range {
		return api.Conflict("ip_range", "cannot change ranges while %d access peers use them; remove them first", len(acc))
	}
	return nil
}

// checkPeers refuses, before anything is touched, a spec whose peers
// WireGuard cannot have: a prefix given to two of them, or one inside this
// node's own subnets (verbatim allowed IPs can ask for both; Validate
// refuses the second only). It returns the desired peers, host names
// looked up, for realize, so that an apply computes them once: at a
// thousand members that is a millisecond. Any other error
// is the one realize would return first, computing the same peers: it is
// returned as is, so that a host name not found is not looked up again
// (a DNS timeout paid twice under the daemon's lock) and nothing is
// rolled back that was never changed.
func (d *Daemon) checkPeers(ctx context.Context, s *spec.Spec, acc []*store.AccessPeer) ([]peers.Peer, error) {
	desired, err := peers.Desired(ctx, s, d.nodeID, d.resolve, accessPeers(acc)...)
	if err == nil {
		return desired, nil
	}
	first := err
	if !errors.Is(err, peers.ErrDuplicatePrefix) && !errors.Is(err, peers.ErrOverlapsSelf) {
		// A host name not found stops Desired before the prefixes are
		// checked: check them without looking names up.
		anyAddr := func(context.Context, string) (netip.Addr, error) { return netip.IPv4Unspecified(), nil }
		_, err = peers.Desired(ctx, s, d.nodeID, anyAddr, accessPeers(acc)...)
	}
	if errors.Is(err, peers.ErrDuplicatePrefix) || errors.Is(err, peers.ErrOverlapsSelf) {
		return nil, api.Invalid("nodes", "%v", err)
	}
	return nil, first
}

// fillSelf puts the node's reserved key into its own entry when the spec
// left it out, so the stored spec is complete.
func (d *Daemon) fillSelf(n *store.Network, s *spec.Spec) {
	admit.FillSelf(s, d.nodeID, n.PublicKey)
}

func (d *Daemon) selfIndex(s *spec.Spec) int {
	return admit.SelfIndex(s, d.nodeID)
}

func (d *Daemon) selfSubnet(s *spec.Spec) netip.Prefix {
	return s.Nodes[d.selfIndex(s)].Subnet
}

// rollback puts the kernel back to n's last good spec, or removes what a
// first apply made. Errors are logged: the caller reports the apply's own.
func (d *Daemon) rollback(ctx context.Context, n *store.Network, wls []*store.Workload) {
	var err error
	if n.Spec != nil {
		var acc []*store.AccessPeer
		if acc, err = d.access(n.Name); err == nil {
			err = d.realize(ctx, n, n.Spec, wls, acc)
		}
	} else {
		err = d.teardown(ctx, n.Name, wls)
	}
	if err != nil {
		d.log.Error("rollback incomplete; re-apply to repair", "network", n.Name, "err", err)
	}
}
