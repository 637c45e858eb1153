package daemon

import (
	"errors"
	"fmt"
	"os"
	"path/filepath"
)

// A namespace carries its node's id in its name, but two state dirs can
// claim one node id: a znetd restarted with a mistyped --state-dir used
// to take the running node's namespaces for orphans and delete them,
// data planes and all. So the daemon marks each namespace it makes with an
// empty file named after it in its own state dir (Config.MarkDir), made
// before the namespace, removed after it; the orphan sweep removes only
// namespaces marked there. (The node lock keeps two such daemons from
// running at once; the marks protect a node from a second daemon started
// after the first one stopped.)

// markOwned marks namespace name as made by this daemon's state dir.
func (d *Daemon) markOwned(name string) error {
	if d.markDir == "" {
		return nil
	}
	if err := os.MkdirAll(d.markDir, 0o700); err != nil {
		return fmt.Errorf("marking namespace %s as ours: %w", name, err)
	}
	f, err := os.OpenFile(filepath.Join(d.markDir, name), os.O_CREATE|os.O_WRONLY, 0o600)
	if err != nil {
		return fmt.Errorf("marking namespace %s as ours: %w", name, err)
	}
	return f.Close()
}

// unmarkOwned removes the mark of namespace name once it is gone.
func (d *Daemon) unmarkOwned(name string) error {
	if d.markDir == "" {
		return nil
	}
	d.dropFirewallRecord(name)
	err := os.Remove(filepath.Join(d.markDir, name))
	if err != nil && !errors.Is(err, os.ErrNotExist) {
		return fmt.Errorf("unmarking namespace %s: %w", name, err)
	}
	return nil
}

// owns reports whether this daemon's state dir made namespace name; a
// daemon without a mark directory owns every namespace of its node id.
func (d *Daemon) owns(name string) bool {
	if d.markDir == "" {
		return true
	}
	_, err := os.Stat(filepath.Join(d.markDir, name))
	return err == nil
}
