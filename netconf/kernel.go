package netconf

import (
	"bytes"
	"context"
	"errors"
	"fmt"
	"net"
	"net/netip"
	"os"
	"time"

	"github.com/vishvananda/netlink"
	"github.com/vishvananda/netns"
	"golang.org/x/sys/unix"

	"github.com/znet/znet/firewall"
	"github.com/znet/znet/namespaces"
)

// deleteWait bounds how long Delete waits for the kernel to let a
// namespace go.
const deleteWait = 10 * time.Second

// Kernel is the Host of the machine's own namespaces (namespaces.Dir).
type Kernel struct {
	// UnderlayNS is the underlay namespace; 0: the calling thread's
	// (znetd runs in the underlay).
	UnderlayNS netns.NsHandle
}

var (
	_ Host      = Kernel{}
	_ Namespace = (*kernelNS)(nil)
	_ Underlay  = (*kernelUnderlay)(nil)
)

// Open implements Host.
func (Kernel) Open(name string, create bool) (Namespace, error) {
	if create {
		if err := namespaces.Create(name); err != nil {
			return nil, err
		}
	}
	ns, err := namespaces.Open(name)
	if err != nil {
		return nil, err
	}
	h, err := nsHandle(ns)
	if err != nil {
		_ = ns.Close()
		return nil, fmt.Errorf("netlink in %s: %w", name, err)
	}
	return &kernelNS{ns: ns, h: h}, nil
}

// Delete implements Host. It waits until the kernel frees the namespace
// (namespaces.Watch: one netlink message, whatever else runs on the node;
// scanning /proc instead cost more with every network's data plane).
func (Kernel) Delete(ctx context.Context, name string) error {
	w, err := namespaces.WatchGone(namespaces.Path(name))
	if err != nil {
		if !namespaces.Exists(name) {
			return namespaces.Delete(name) // a leftover file at most
		}
		return fmt.Errorf("deleting namespace %s: %w", name, err)
	}
	defer func() { _ = w.Close() }()
	if err := namespaces.Delete(name); err != nil {
		return err
	}
	wctx, cancel := context.WithTimeout(ctx, deleteWait)
	defer cancel()
	if err := waitFreed(wctx, w); err != nil {
		return fmt.Errorf("waiting for namespace %s to go: %w: %w", name, ErrLingering, err)
	}
	return nil
}

// freeGrace is how long Delete waits for the kernel to free a deleted
// namespace before it settles for no process holding it. Past that, what
// holds the namespace is a file that a process outside it keeps open and
// that was made inside it, such as a running VM's tap queue (its device is
// gone already): the kernel frees the namespace when the owner closes the
// file, and deleting a network must not fail, or wait, for a VM that runs.
const freeGrace = time.Second

// waitFreed waits until the kernel frees the namespace w watches or, past
// freeGrace, until no process or namespace handle holds it (the /proc scan,
// paid only by a namespace still there after the grace).
func waitFreed(ctx context.Context, w *namespaces.Watch) error {
	gctx, cancel := context.WithTimeout(ctx, freeGrace)
	err := w.Wait(gctx)
	cancel()
	if err == nil || ctx.Err() != nil || !errors.Is(err, context.DeadlineExceeded) {
		return err
	}
	return namespaces.WaitGone(ctx, w.Ident())
}

// List implements Host.
func (Kernel) List(prefix string) ([]string, error) { return namespaces.List(prefix) }

// Lookup implements Host.
func (Kernel) Lookup(prefix string, ino uint64) (string, error) {
	return namespaces.Lookup(prefix, ino)
}

// kernelNS is a namespace of the machine with a netlink handle in it.
type kernelNS struct {
	ns netns.NsHandle
	// h is nsHandle's: a request of a family it lacks would go out in
	// the calling thread's namespace.
	h *netlink.Handle
	// cookie is ns's, once read: it cannot change, and reading it (a
	// socket made inside ns) cost 25 us, four times per realize.
	cookie uint64
}

// nsHandle returns a netlink handle in ns for every family the netlink
// package knows (route, xfrm, netfilter). A handle for route requests only
// was measured at 24 us against 67 per namespace opened, but the package
// sends a request of a family its handle lacks from the calling thread's
// namespace, znetd's own: one future call through such a handle
// (conntrack, ipset) would act on the host instead of the network. Not
// worth ~0.1 ms an apply.
func nsHandle(ns netns.NsHandle) (*netlink.Handle, error) {
	return netlink.NewHandleAt(ns)
}

func (k *kernelNS) Close() error {
	k.h.Close()
	return k.ns.Close()
}

func (k *kernelNS) Cookie() (uint64, error) {
	if k.cookie != 0 {
		return k.cookie, nil
	}
	c, err := namespaces.Cookie(k.ns)
	if err == nil {
		k.cookie = c
	}
	return c, err
}

func (k *kernelNS) Prepare(sysctls []Sysctl) error {
	if lo, err := k.h.LinkByName("lo"); err == nil {
		if err := k.h.LinkSetUp(lo); err != nil {
			return fmt.Errorf("lo up: %w", err)
		}
	}
	return WriteSysctls(k.ns, sysctls)
}

func (k *kernelNS) SetLink(l Link) (LinkState, error) {
	link, err := k.h.LinkByName(l.Name)
	if err != nil && l.Bridge {
		br := &netlink.Bridge{LinkAttrs: netlink.LinkAttrs{Name: l.Name, MTU: l.MTU}}
		if err := k.h.LinkAdd(br); err != nil {
			return LinkState{}, fmt.Errorf("adding bridge: %w", err)
		}
		link, err = k.h.LinkByName(l.Name)
	}
	if err != nil {
		return LinkState{}, fmt.Errorf("finding %s: %w", l.Name, err)
	}
	st := LinkState{Index: link.Attrs().Index, WasUp: link.Attrs().Flags&net.FlagUp != 0}
	if link.Attrs().MTU != l.MTU {
		if err := k.h.LinkSetMTU(link, l.MTU); err != nil {
			return st, fmt.Errorf("setting %s mtu: %w", l.Name, err)
		}
	}
	if err := SyncAddrs(k.h, link, l.Addrs); err != nil {
		return st, fmt.Errorf("%s addresses: %w", l.Name, err)
	}
	// Up already (every realize after the first): a request that changes
	// nothing is a netlink round trip saved, twice per apply.
	if !st.WasUp {
		if err := k.h.LinkSetUp(link); err != nil {
			return st, fmt.Errorf("%s up: %w", l.Name, err)
		}
	}
	if l.MAC != nil {
		return st, k.setMAC(link, l.MAC)
	}
	return st, nil
}

// setMAC sets link's MAC to mac. When it changes (a bridge made before
// MACs were fixed), the kernel announces the new one with a gratuitous ARP
// and an unsolicited neighbour advertisement (arp_notify, ndisc_notify), so
// neighbours do not keep sending to the old one until their entries time
// out.
func (k *kernelNS) setMAC(link netlink.Link, mac net.HardwareAddr) error {
	if bytes.Equal(link.Attrs().HardwareAddr, mac) {
		return nil
	}
	name := link.Attrs().Name
	err := namespaces.Do(k.ns, func() error {
		for _, key := range []string{"ipv4/conf/" + name + "/arp_notify", "ipv6/conf/" + name + "/ndisc_notify"} {
			// /proc/sys/net shows the namespace of the thread that opens it.
			if err := os.WriteFile("/proc/sys/net/"+key, []byte("1"), 0o644); err != nil {
				return fmt.Errorf("setting %s: %w", key, err)
			}
		}
		return nil
	})
	if err != nil {
		return err
	}
	if err := k.h.LinkSetHardwareAddr(link, mac); err != nil {
		return fmt.Errorf("setting the MAC of %s: %w", name, err)
	}
	return nil
}

func (k *kernelNS) Routes(link string, have, want []netip.Prefix) error {
	l, err := k.h.LinkByName(link)
	if err != nil {
		return fmt.Errorf("finding %s: %w", link, err)
	}
	if have != nil {
		return changeRoutes(k.h, l.Attrs().Index, have, want)
	}
	return syncRoutes(k.h, l, want)
}

func (k *kernelNS) ProxyNeigh(link string, want []netip.Addr) error {
	l, err := k.h.LinkByName(link)
	if err != nil {
		return fmt.Errorf("finding %s: %w", link, err)
	}
	return syncProxyNeigh(k.h, l.Attrs().Index, want)
}

func (k *kernelNS) Links() ([]LinkInfo, error) {
	links, err := RetryDump(k.h.LinkList)
	if err != nil {
		return nil, fmt.Errorf("listing links: %w", err)
	}
	out := make([]LinkInfo, 0, len(links))
	for _, l := range links {
		out = append(out, linkInfo(l))
	}
	return out, nil
}

func (k *kernelNS) DeleteLink(name string) error {
	l, err := k.h.LinkByName(name)
	var missing netlink.LinkNotFoundError
	if errors.As(err, &missing) {
		return nil // gone already
	}
	if err != nil {
		return fmt.Errorf("finding %s: %w", name, err)
	}
	if err := k.h.LinkDel(l); err != nil && !errors.Is(err, unix.ENODEV) {
		return fmt.Errorf("removing %s: %w", name, err)
	}
	return nil
}

func (k *kernelNS) Install(r firewall.Rules) error { return firewall.Apply(k.ns, r) }

func (k *kernelNS) Generation() (uint32, error) { return firewall.Generation(k.ns) }
