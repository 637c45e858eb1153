package daemon

import (
	"context"
	"errors"
	"fmt"
)

// ResolverHost runs the resolver-only processes of networks whose
// WireGuard backend runs no process to host their resolver (kernel):
// one per network, in the network's namespace, named by its device.
// dataplane.Resolvers is the real one.
type ResolverHost interface {
	// Ensure adopts the resolver of ifname if it runs in the namespace at
	// netnsPath, else starts one, and returns its pid.
	Ensure(ctx context.Context, ifname, netnsPath string) (int, error)
	// PID returns the pid of ifname's resolver, 0 if none runs.
	PID(ifname string) int
	// Wait blocks until resolver pid of ifname exits and says how.
	Wait(ctx context.Context, ifname string, pid int) (string, error)
	// Delete stops ifname's resolver and removes its files; idempotent.
	Delete(ctx context.Context, ifname string) error
	// List returns the devices whose resolver runs, of this node's run
	// directory only.
	List(ctx context.Context) ([]string, error)
}

// dataplaneHostsResolver reports whether the backend's data planes host
// their network's resolver: userspace ones do, so that names answer while
// znetd is down; a kernel device runs no process to host it.
func (d *Daemon) dataplaneHostsResolver() bool { return d.backend.Kind() == "userspace" }

// ownResolver reports whether networks get a resolver-only process.
func (d *Daemon) ownResolver() bool { return d.resolvers != nil && !d.dataplaneHostsResolver() }

// hasResolver reports whether networks have a resolver the daemon talks
// to.
func (d *Daemon) hasResolver() bool {
	return d.dns != nil && (d.dataplaneHostsResolver() || d.resolvers != nil)
}

// ensureResolver starts or adopts network's resolver-only process, when
// networks have one, and has the supervisor watch it. With a backend whose
// data planes host the resolver, one left from a run on the kernel backend
// is removed instead: its socket is the data plane's now.
func (d *Daemon) ensureResolver(ctx context.Context, network string) error {
	if !d.ownResolver() {
		if d.resolvers != nil && d.resolvers.PID(d.device(network, 0).IfName) != 0 {
			return d.removeResolver(ctx, network)
		}
		return nil
	}
	dev := d.device(network, 0)
	pid, err := d.resolvers.Ensure(ctx, dev.IfName, dev.NetNS)
	if err != nil {
		return fmt.Errorf("resolver: %w", err)
	}
	d.resolverSup.watch(network, pid)
	return nil
}

// removeResolver stops network's resolver-only process, if any (also
// after a change of backend), without it being restarted.
func (d *Daemon) removeResolver(ctx context.Context, network string) error {
	if d.resolvers == nil {
		return nil
	}
	d.resolverSup.stop(network)
	if err := d.resolvers.Delete(ctx, d.device(network, 0).IfName); err != nil {
		return fmt.Errorf("removing resolver: %w", err)
	}
	return nil
}

// newResolverSupervisor returns the supervisor of the resolver-only
// processes: the same restart policy as data planes.
func (d *Daemon) newResolverSupervisor() *supervisor {
	s := newSupervisor(d.log.With("process", "resolver"))
	s.what = "resolver"
	s.wait = func(ctx context.Context, network string, pid int) (string, error) {
		return d.resolvers.Wait(ctx, d.device(network, 0).IfName, pid)
	}
	s.current = func(ctx context.Context, network string) int {
		d.mu.Lock()
		defer d.mu.Unlock()
		return d.resolvers.PID(d.device(network, 0).IfName)
	}
	s.restart = d.restartResolver
	return s
}

// restartResolver is the resolver supervisor's restart: a new resolver
// for network, given its records again.
func (d *Daemon) restartResolver(ctx context.Context, network string) (int, error) {
	d.mu.Lock()
	defer d.mu.Unlock()
	n, wls, err := d.loadApplied(ctx, network)
	if err != nil {
		return 0, err
	}
	dev := d.device(network, 0)
	pid, err := d.resolvers.Ensure(ctx, dev.IfName, dev.NetNS)
	if err != nil {
		return d.resolvers.PID(dev.IfName), err
	}
	d.pushDNS(ctx, n, n.Spec, wls)
	return pid, nil
}

// removeOrphanResolvers stops the resolver-only processes of networks the
// state does not know (known: the applied ones): leftovers of a delete
// that crashed after the namespace went, or of a state that lost the
// network. A namespace of an unknown network is swept with its resolver
// (removeOrphans); this catches the resolvers left without one.
func (d *Daemon) removeOrphanResolvers(ctx context.Context, known []string) error {
	if d.resolvers == nil {
		return nil
	}
	running, err := d.resolvers.List(ctx)
	if err != nil {
		return err
	}
	want := map[string]bool{}
	for _, network := range known {
		want[d.device(network, 0).IfName] = true
	}
	var errs []error
	for _, ifname := range running {
		if want[ifname] {
			continue
		}
		d.log.Warn("removing the resolver of a network the state does not know", "ifname", ifname)
		if err := d.resolvers.Delete(ctx, ifname); err != nil {
			errs = append(errs, fmt.Errorf("orphan resolver %s: %w", ifname, err))
		}
	}
	return errors.Join(errs...)
}
