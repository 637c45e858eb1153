package daemon

import (
	"context"
	"fmt"

	"github.com/znet/znet/store"
)

// locked runs fn under d.mu, under a context that the caller's
// cancellation no longer reaches (see detach): every change of the state
// and the kernel objects runs this way, one at a time.
func (d *Daemon) locked(ctx context.Context, fn func(ctx context.Context) error) error {
	d.mu.Lock()
	defer d.mu.Unlock()
	ctx, cancel := detach(ctx)
	defer cancel()
	return fn(ctx)
}

// withNetwork is locked, with network's record and workloads as the state
// holds them (a 404 error when there is no such network).
func (d *Daemon) withNetwork(ctx context.Context, network string, fn func(ctx context.Context, n *store.Network, wls []*store.Workload) error) error {
	return d.locked(ctx, func(ctx context.Context) error {
		n, wls, err := d.loadNetwork(network)
		if err != nil {
			return err
		}
		return fn(ctx, n, wls)
	})
}

// change is one change of a network: the kernel first, then the state.
type change struct {
	// kernel makes the kernel objects match the change; its errors are
	// reported as "<doing>: <err>".
	doing  string
	kernel func() error
	// save commits the change; its errors are reported as
	// "<saving>: <err>".
	saving string
	save   func(tx *store.Tx) error
	// undo puts the kernel back to what the state still holds, after
	// either failed; it logs what it could not undo (the change's own
	// error is the one reported).
	undo func(ctx context.Context)
}

// commit makes change c: the state records a change only once the kernel
// holds it, and a failure half way leaves the kernel as the state says.
func (d *Daemon) commit(ctx context.Context, c change) error {
	if err := c.kernel(); err != nil {
		c.undo(context.WithoutCancel(ctx))
		return fmt.Errorf("%s: %w", c.doing, err)
	}
	if err := d.store.Update(c.save); err != nil {
		c.undo(context.WithoutCancel(ctx))
		return fmt.Errorf("%s: %w", c.saving, err)
	}
	return nil
}
