package daemon

import (
	"context"
	"errors"
	"fmt"

	"github.com/znet/znet/api"
	"github.com/znet/znet/ipam"
	"github.com/znet/znet/namespaces"
	"github.com/znet/znet/netconf"
	"github.com/znet/znet/store"
)

// A workload's namespace is named by a path, and a path can name another
// namespace later: /proc/PID/ns/net once the pid is reused, /run/netns/NAME
// once the name is deleted and made again. znetd plumbs a workload only
// into the namespace it was attached to: the path is opened once, checked
// on the open handle and plumbed through that handle, and a repair compares
// the handle's identity with the one recorded at attach.

// openWorkloadNS opens w's namespace for a repair and tells whether it is
// still the namespace w was attached to. The handle is valid (the caller
// closes it) only when the state is api.StateAttached. A workload attached
// before identities were recorded cannot be verified and counts as
// replaced: its owner attaches it again.
func (d *Daemon) openWorkloadNS(w *store.Workload) (netconf.Namespace, string) {
	h, id, err := d.host.OpenPath(w.NetNS)
	switch {
	case errors.Is(err, namespaces.ErrProcessChanged):
		return nil, api.StateNetNSReplaced
	case err != nil:
		return nil, api.StateNetNSGone
	}
	if w.NetNSID.IsZero() || !sameWorkloadNS(w.NetNSID, id) {
		_ = h.Close()
		return nil, api.StateNetNSReplaced
	}
	return h, api.StateAttached
}

// sameWorkloadNS reports whether id, read now, is the namespace recorded at
// attach: the same namespace, and for a /proc path the same process.
func sameWorkloadNS(recorded, id namespaces.Identity) bool {
	return recorded.SameNamespace(id) && recorded.StartTime == id.StartTime
}

// workloadState is the state shown for w: what its path names now, or, if
// that looks fine, what the last repair recorded (a workload without a
// recorded identity looks fine until a repair needs to plumb it).
func (d *Daemon) workloadState(w *store.Workload) string {
	id, err := d.host.Identify(w.NetNS)
	if isTap(w) {
		// A tap lives in the network's namespace, which znetd itself
		// makes again after a reboot: there is no one else's to verify.
		if err != nil {
			return api.StateNetNSGone
		}
		return api.StateAttached
	}
	switch {
	case errors.Is(err, namespaces.ErrProcessChanged):
		return api.StateNetNSReplaced
	case err != nil:
		return api.StateNetNSGone
	}
	if !w.NetNSID.IsZero() && !sameWorkloadNS(w.NetNSID, id) {
		return api.StateNetNSReplaced
	}
	if w.State != "" {
		return w.State
	}
	return api.StateAttached
}

// stateProblem explains, for status, a workload that is not attached.
func stateProblem(w *store.Workload, state string) string {
	switch state {
	case api.StateNetNSGone:
		return fmt.Sprintf("workload %s: namespace %s is gone; detach it to free %s", w.Name, w.NetNS, w.IPv4)
	case api.StateNetNSReplaced:
		return fmt.Sprintf("workload %s: %s names another namespace than the one attached; not plumbed; attach it again or detach it to free %s",
			w.Name, w.NetNS, w.IPv4)
	}
	return ""
}

// refuseOwnNamespace refuses to attach a workload whose namespace (id, read
// from the handle that will be plumbed) is the node's underlay or one of
// znet's own network namespaces: a veth there would bridge a network into
// the node or into another network. The handle being open, the namespace
// is alive, so its inode cannot belong to another one during the check.
func (d *Daemon) refuseOwnNamespace(path string, id namespaces.Identity) error {
	// The calling goroutine's thread is not locked and so is in the node's
	// namespace (see netconf.SelfPath).
	self, err := d.host.Identify(netconf.SelfPath)
	if err != nil {
		return fmt.Errorf("reading the node's namespace: %w", err)
	}
	if self.Ino == id.Ino {
		return api.Invalid("netns", "%s is the node's own namespace", path)
	}
	// By number only (Lookup), not Identify each name: that entered every
	// network's namespace, and an attach cost more with every network on
	// the node.
	if name, _ := d.host.Lookup("zn-", id.Ino); name != "" {
		return api.Invalid("netns", "%s is znet's network namespace %s", path, name)
	}
	return nil
}

// takeStale looks for a workload called name in wls. One that is attached
// is a conflict; one whose namespace is gone or replaced is taken out of
// wls and returned, for its owner is attaching it again.
func (d *Daemon) takeStale(wls []*store.Workload, name, network string) ([]*store.Workload, *store.Workload, error) {
	for i, w := range wls {
		if w.Name != name {
			continue
		}
		if d.workloadState(w) == api.StateAttached {
			return nil, nil, api.Conflict("name", "workload %s is already attached to %s (%s)", name, network, w.IPv4)
		}
		rest := append(append([]*store.Workload{}, wls[:i]...), wls[i+1:]...)
		return rest, w, nil
	}
	return wls, nil, nil
}

// repairWorkloads re-plumbs the workloads whose veth is missing (after a
// reboot or a crash) when their path still names the namespace they were
// attached to; the others get the state that says why not, recorded. Failures
// are logged and shown by status; they do not fail the network.
func (d *Daemon) repairWorkloads(ctx context.Context, n *store.Network, wls []*store.Workload) {
	if len(wls) == 0 {
		return
	}
	subnets, err := d.subnetsOf(n.Spec)
	if err != nil {
		return
	}
	present := d.hostLinks(n.Name)
	var changed []*store.Workload
	for _, w := range wls {
		if present[w.HostIf] {
			continue
		}
		state := d.repairWorkload(ctx, n, subnets, w)
		if state == api.StateAttached {
			state = ""
		}
		if state != w.State {
			w.State = state
			changed = append(changed, w)
		}
	}
	if len(changed) == 0 {
		return
	}
	err = d.store.Update(func(tx *store.Tx) error {
		for _, w := range changed {
			if err := tx.PutWorkload(w); err != nil {
				return err
			}
		}
		return nil
	})
	if err != nil {
		d.log.Warn("saving workload states", "network", n.Name, "err", err)
	}
}

// repairWorkload plumbs w again if its path still names its namespace, and
// returns the state it found.
func (d *Daemon) repairWorkload(ctx context.Context, n *store.Network, subnets ipam.Subnets, w *store.Workload) string {
	if isTap(w) {
		if err := d.plumbPort(n, subnets, w, nil, false); err != nil {
			d.log.Warn("re-making a workload's tap", "network", n.Name, "workload", w.Name, "err", err)
		} else {
			d.log.Info("re-made tap", "network", n.Name, "workload", w.Name)
		}
		return api.StateAttached
	}
	h, state := d.openWorkloadNS(w)
	if state != api.StateAttached {
		if state != w.State {
			d.log.Warn("not re-attaching workload", "network", n.Name, "workload", w.Name, "netns", w.NetNS, "state", state)
		}
		return state
	}
	defer func() { _ = h.Close() }()
	if err := d.refuseOwnNamespace(w.NetNS, w.NetNSID); err != nil {
		d.log.Warn("not re-attaching workload", "network", n.Name, "workload", w.Name, "err", err)
		return api.StateNetNSReplaced
	}
	if err := d.plumbPort(n, subnets, w, h, false); err != nil {
		d.log.Warn("re-attaching workload", "network", n.Name, "workload", w.Name, "err", err)
		return api.StateAttached
	}
	d.log.Info("re-attached", "network", n.Name, "workload", w.Name)
	return api.StateAttached
}
