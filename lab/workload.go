package lab

import (
	"errors"
	"fmt"
	"os"
	"path/filepath"
	"slices"
	"strings"

	"github.com/vishvananda/netlink"

	"github.com/znet/znet/namespaces"
)

// etcNetNS is where iproute2 (and znetd) keep per-namespace /etc files.
const etcNetNS = "/etc/netns"

// WorkloadNS returns the name of the lab's i-th workload namespace,
// "<prefix>w<i>" (lab-w1, lab-w2, ...).
func (l *Lab) WorkloadNS(i int) string { return fmt.Sprintf("%sw%d", l.Prefix(), i) }

// AddWorkloadNS makes the named namespace name for a workload (as a
// container runtime would), with its loopback up, records it in the lab's
// description so that Down removes it, and returns its path. It is
// idempotent. name must start with the lab's Prefix.
func (l *Lab) AddWorkloadNS(name string) (string, error) {
	if !strings.HasPrefix(name, l.Prefix()) {
		return "", fmt.Errorf("workload namespace %q does not start with the lab's prefix %q", name, l.Prefix())
	}
	if !slices.Contains(l.Workloads, name) {
		// Recorded first: a namespace made but not recorded would outlive
		// the lab.
		l.Workloads = append(l.Workloads, name)
		if err := l.save(); err != nil {
			return "", err
		}
	}
	if err := namespaces.Create(name); err != nil {
		return "", err
	}
	err := withHandle(name, func(h *netlink.Handle) error {
		lo, err := h.LinkByName("lo")
		if err != nil {
			return err
		}
		return h.LinkSetUp(lo)
	})
	if err != nil {
		return "", fmt.Errorf("workload namespace %s: %w", name, err)
	}
	return namespaces.Path(name), nil
}

// removeWorkloadNS deletes the lab's workload namespaces and their
// /etc/netns dirs.
func (l *Lab) removeWorkloadNS() error {
	var errs []error
	for _, name := range l.Workloads {
		if !strings.HasPrefix(name, l.Prefix()) || strings.ContainsAny(name, "/.") {
			continue // not ours: never delete what the description did not make
		}
		errs = append(errs, namespaces.Delete(name))
		if err := os.RemoveAll(filepath.Join(etcNetNS, name)); err != nil {
			errs = append(errs, err)
		}
	}
	return errors.Join(errs...)
}
