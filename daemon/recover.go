package daemon

import (
	"context"
	"errors"
	"fmt"
	"strings"
	"sync"

	"github.com/znet/znet/api"
	"github.com/znet/znet/namespaces"
	"github.com/znet/znet/netconf"
	"github.com/znet/znet/store"
)

// DeleteNetwork implements api.Service. A network with workloads is kept
// unless force is set. The state forgets the network only after its kernel
// objects are gone; a crash in between leaves it listed, and deleting again
// finishes the job.
func (d *Daemon) DeleteNetwork(ctx context.Context, name string, force bool) error {
	return d.withNetwork(ctx, name, func(ctx context.Context, _ *store.Network, wls []*store.Workload) error {
		if len(wls) > 0 && !force {
			names := make([]string, len(wls))
			for i, w := range wls {
				names[i] = w.Name
			}
			return api.Conflict("name", "network %s still has %d workloads (%s); detach them or use --force",
				name, len(wls), strings.Join(names, ", "))
		}
		return d.deleteLocked(ctx, name, wls)
	})
}

// deleteLocked removes network name, with its workloads wls, from the
// kernel and the state.
func (d *Daemon) deleteLocked(ctx context.Context, name string, wls []*store.Workload) error {
	d.realized.forget(name)
	if err := d.teardown(ctx, name, wls); err != nil {
		// The network stays in the state: keep restarting a data plane
		// that still runs, until a delete gets through.
		d.sup.watch(name, d.backend.PID(d.device(name, 0)))
		if d.ownResolver() {
			d.resolverSup.watch(name, d.resolvers.PID(d.device(name, 0).IfName))
		}
		return fmt.Errorf("deleting %s: %w", name, err)
	}
	if err := d.store.Update(func(tx *store.Tx) error { return tx.DeleteNetwork(name) }); err != nil {
		return fmt.Errorf("deleting %s: %w", name, err)
	}
	d.log.Info("deleted", "network", name, "workloads", len(wls))
	return nil
}

// Recover makes the kernel match the state after a start: running data
// planes and namespaces are adopted as they are (nothing is re-created, no
// handshake is reset), missing ones are rebuilt (after a reboot), workloads
// whose namespace still exists are re-attached, and namespaces of this node
// that the state does not know are removed. A network that cannot be
// rebuilt is logged and reported by status; the others still come up.
func (d *Daemon) Recover(ctx context.Context) error {
	d.mu.Lock()
	defer d.mu.Unlock()
	var (
		nets []*store.Network
		wls  map[string][]*store.Workload
		acc  = map[string][]*store.AccessPeer{}
	)
	err := d.store.View(func(tx *store.Tx) (err error) {
		if nets, wls, err = allNetworks(tx); err != nil {
			return err
		}
		for _, n := range nets {
			if acc[n.Name], err = tx.AccessPeers(n.Name); err != nil {
				return err
			}
		}
		return nil
	})
	if err != nil {
		return fmt.Errorf("reading state: %w", err)
	}
	known := map[string]bool{}
	var applied []string
	var (
		errs   []error
		errsMu sync.Mutex
		wg     sync.WaitGroup
	)
	// Networks are independent (each its own namespace and data plane), and
	// each one's recovery mostly waits: on its data plane's UAPI socket and
	// resolver, on netlink. One after another, a thousand networks kept the
	// API closed for tens of seconds; a few at a time the waits overlap.
	sem := make(chan struct{}, recoverWorkers)
	for _, n := range nets {
		if n.Spec == nil {
			continue // reserved only: nothing in the kernel yet
		}
		known[d.nsName(n.Name)] = true
		applied = append(applied, n.Name)
		sem <- struct{}{}
		wg.Go(func() {
			defer func() { <-sem }()
			if err := d.recoverNetwork(ctx, n, wls[n.Name], acc[n.Name]); err != nil {
				errsMu.Lock()
				errs = append(errs, err)
				errsMu.Unlock()
			}
		})
	}
	wg.Wait()
	if err := d.removeOrphans(ctx, known); err != nil {
		errs = append(errs, err)
	}
	if err := d.removeOrphanResolvers(ctx, applied); err != nil {
		errs = append(errs, err)
	}
	d.log.Info("recovered", "networks", len(nets), "failed", len(errs))
	return errors.Join(errs...)
}

// recoverWorkers is how many networks Recover rebuilds or adopts at once.
const recoverWorkers = 8

// recoverNetwork makes the kernel match one applied network at start.
func (d *Daemon) recoverNetwork(ctx context.Context, n *store.Network, wls []*store.Workload, acc []*store.AccessPeer) error {
	d.loadFirewall(n.Name)
	if err := d.realize(ctx, n, n.Spec, wls, acc); err != nil {
		d.log.Error("recovering network", "network", n.Name, "err", err)
		return fmt.Errorf("network %s: %w", n.Name, err)
	}
	d.removeStrayPorts(n.Name, wls)
	d.repairWorkloads(ctx, n, wls)
	d.backfillMACs(n, wls)
	return nil
}

// removeOrphans deletes namespaces (and their data planes) that carry this
// node's id but belong to no network in the state: leftovers of a delete
// or a first apply that crashed half way. Only namespaces this state dir
// made are removed (see owner.go).
func (d *Daemon) removeOrphans(ctx context.Context, known map[string]bool) error {
	prefix := namespaces.NodePrefix(d.nodeID)
	names, err := d.host.List(prefix)
	if err != nil {
		return err
	}
	var errs []error
	for _, name := range names {
		if known[name] {
			continue
		}
		network := strings.TrimPrefix(name, prefix)
		if !d.owns(name) {
			d.log.Warn("leaving a namespace of this node id that another state dir made", "network", network, "namespace", name)
			continue
		}
		d.log.Warn("removing orphan namespace", "network", network, "namespace", name)
		if err := d.teardown(ctx, network, nil); err != nil {
			errs = append(errs, fmt.Errorf("orphan %s: %w", name, err))
		}
	}
	return errors.Join(errs...)
}

// removeStrayPorts deletes the workload veths and taps in network's
// namespace that belong to no workload of the state: an attach that crashed
// after it plumbed the port but before it committed. Deleting the bridge end takes
// the end in the workload's namespace with it.
func (d *Daemon) removeStrayPorts(network string, wls []*store.Workload) {
	known := map[string]bool{}
	for _, w := range wls {
		known[w.HostIf] = true
	}
	stray := func(l netconf.LinkInfo) bool {
		if (!strings.HasPrefix(l.Name, "vw") && !strings.HasPrefix(l.Name, tapPrefix)) || known[l.Name] {
			return false
		}
		d.log.Warn("removing stray workload port", "network", network, "link", l.Name)
		return true
	}
	if err := d.removePorts(network, stray); err != nil {
		d.log.Warn("removing stray workload ports", "network", network, "err", err)
	}
}
