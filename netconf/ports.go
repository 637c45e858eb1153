package netconf

import (
	"bytes"
	"errors"
	"fmt"
	"net"
	"net/netip"

	"github.com/vishvananda/netlink"
	"golang.org/x/sys/unix"

	"github.com/znet/znet/namespaces"
	"github.com/znet/znet/tap"
)

// The kernel's side of workloads' ports: the namespaces they live in, the
// veths and taps on the bridge, their MTUs, FDB pins and gateway routes.

// OpenPath implements Host.
func (Kernel) OpenPath(path string) (Namespace, namespaces.Identity, error) {
	ns, id, err := namespaces.OpenIdentified(path)
	if err != nil {
		return nil, namespaces.Identity{}, err
	}
	h, err := nsHandle(ns)
	if err != nil {
		_ = ns.Close()
		return nil, namespaces.Identity{}, fmt.Errorf("netlink in %s: %w", path, err)
	}
	return &kernelNS{ns: ns, h: h}, id, nil
}

// Identify implements Host.
func (Kernel) Identify(path string) (namespaces.Identity, error) {
	ns, id, err := namespaces.OpenIdentified(path)
	if err != nil {
		return namespaces.Identity{}, err
	}
	_ = ns.Close()
	return id, nil
}

// linkInfo describes l.
func linkInfo(l netlink.Link) LinkInfo {
	a := l.Attrs()
	info := LinkInfo{Name: a.Name, Kind: l.Type(), Index: a.Index, MTU: a.MTU, MAC: a.HardwareAddr}
	if _, ok := l.(*netlink.Veth); ok {
		info.Peer = a.ParentIndex
	}
	return info
}

// link finds link name, wrapping ErrNoLink when it does not exist.
func (k *kernelNS) link(name string) (netlink.Link, error) {
	l, err := k.h.LinkByName(name)
	var missing netlink.LinkNotFoundError
	if errors.As(err, &missing) {
		return nil, fmt.Errorf("finding %s: %w", name, ErrNoLink)
	}
	if err != nil {
		return nil, fmt.Errorf("finding %s: %w", name, err)
	}
	return l, nil
}

func (k *kernelNS) Link(name string) (LinkInfo, error) {
	l, err := k.link(name)
	if err != nil {
		return LinkInfo{}, err
	}
	return linkInfo(l), nil
}

func (k *kernelNS) SetMTU(name string, mtu int) error {
	l, err := k.link(name)
	if err != nil {
		return err
	}
	if err := k.h.LinkSetMTU(l, mtu); err != nil {
		return fmt.Errorf("setting %s mtu: %w", name, err)
	}
	return nil
}

func (k *kernelNS) AddPort(p Port, peer Namespace) error {
	attrs := netlink.LinkAttrs{Name: p.Name, MTU: p.MTU}
	var br netlink.Link
	if p.Master != "" {
		var err error
		if br, err = k.link(p.Master); err != nil {
			return err
		}
		attrs.MasterIndex = br.Attrs().Index
	}
	if p.Tap {
		return k.addTap(p, br)
	}
	var other *kernelNS
	switch peer := peer.(type) {
	case *kernelNS:
		other = peer
	case *kernelUnderlay:
		other = peer.kernelNS
	default:
		return fmt.Errorf("veth %s: the other end's namespace is not the kernel's", p.Name)
	}
	veth := &netlink.Veth{
		LinkAttrs:        attrs,
		PeerName:         p.PeerName,
		PeerHardwareAddr: p.PeerMAC,
		PeerMTU:          uint32(p.MTU),
		PeerNamespace:    netlink.NsFd(other.ns),
	}
	if err := k.h.LinkAdd(veth); err != nil {
		return fmt.Errorf("adding veth: %w", err)
	}
	return nil
}

// addTap makes the persistent tap of p and sets its MTU and MAC, puts it on
// bridge br and sets it up. A tap made and then failed is left for the
// caller to remove.
func (k *kernelNS) addTap(p Port, br netlink.Link) error {
	if err := tap.Create(k.ns, p.Name, p.Queues); err != nil {
		return err
	}
	link, err := k.h.LinkByName(p.Name)
	if err != nil {
		return fmt.Errorf("finding tap %s: %w", p.Name, err)
	}
	steps := []struct {
		what string
		do   func() error
	}{
		{"mtu", func() error { return k.h.LinkSetMTU(link, p.MTU) }},
		{"mac", func() error { return k.h.LinkSetHardwareAddr(link, p.MAC) }},
		{"bridge", func() error { return k.h.LinkSetMaster(link, br) }},
		{"up", func() error { return k.h.LinkSetUp(link) }},
	}
	for _, s := range steps {
		if err := s.do(); err != nil {
			return fmt.Errorf("tap %s %s: %w", p.Name, s.what, err)
		}
	}
	return nil
}

// Pin adds a static FDB entry: "static" (NUD_NOARP), not "permanent": a
// permanent entry would mean the bridge itself owns mac.
func (k *kernelNS) Pin(port string, mac net.HardwareAddr) error {
	link, err := k.h.LinkByName(port)
	if err != nil {
		return fmt.Errorf("finding port %s: %w", port, err)
	}
	if err := k.h.LinkSetLearning(link, false); err != nil {
		return fmt.Errorf("learning off on %s: %w", port, err)
	}
	fdb := &netlink.Neigh{
		LinkIndex:    link.Attrs().Index,
		Family:       unix.AF_BRIDGE,
		Flags:        netlink.NTF_MASTER,
		State:        netlink.NUD_NOARP,
		HardwareAddr: mac,
	}
	if err := k.h.NeighSet(fdb); err != nil {
		return fmt.Errorf("static fdb entry on %s: %w", port, err)
	}
	// The port's static entries are exactly this one: a MAC pinned here
	// before (a workload re-pinned) must not keep leading here.
	have, err := RetryDump(func() ([]netlink.Neigh, error) { return k.h.NeighList(link.Attrs().Index, unix.AF_BRIDGE) })
	if err != nil {
		return fmt.Errorf("listing fdb entries of %s: %w", port, err)
	}
	for _, e := range have {
		if e.State == netlink.NUD_NOARP && !bytes.Equal(e.HardwareAddr, mac) {
			e.Flags |= netlink.NTF_MASTER
			if err := k.h.NeighDel(&e); err != nil && !errors.Is(err, unix.ENOENT) {
				return fmt.Errorf("removing fdb entry %s of %s: %w", e.HardwareAddr, port, err)
			}
		}
	}
	return nil
}

func (k *kernelNS) RouteVia(link string, dst netip.Prefix, gw netip.Addr, on bool) error {
	l, err := k.h.LinkByName(link)
	if err != nil {
		return fmt.Errorf("finding %s: %w", link, err)
	}
	r := &netlink.Route{LinkIndex: l.Attrs().Index, Dst: IPNet(dst), Gw: gw.AsSlice()}
	if on {
		if err := k.h.RouteReplace(r); err != nil {
			return fmt.Errorf("route %s via %s: %w", dst, gw, err)
		}
		return nil
	}
	if err := k.h.RouteDel(r); err != nil && !errors.Is(err, unix.ESRCH) {
		return fmt.Errorf("removing route %s via %s: %w", dst, gw, err)
	}
	return nil
}
