package lab

import (
	"fmt"
	"net"

	"github.com/vishvananda/netlink"
)

// The kernel's ARP table is one table for all network namespaces, and its
// dynamic entries are capped machine-wide (net.ipv4.neigh.default.
// gc_thresh3, 1024 by default, settable only in the machine's own
// namespace). A lab's nodes share one segment, so each node learns every
// other's address: n·(n-1) entries, 9,900 at 100 nodes. Past the cap the
// kernel logs "neighbor table overflow", drops the packets that needed a
// lookup and the mesh never completes. Real nodes reach their peers
// through a router and need one entry. So the lab writes each node's
// neighbours as permanent entries, which the cap does not count (since
// Linux 4.19) and which nothing has to learn.

// pinNeighbours makes every node of nodes know every other node's underlay
// address as a permanent neighbour on its underlay link.
func pinNeighbours(nodes []Node) error {
	macs := make([]net.HardwareAddr, len(nodes))
	for i, n := range nodes {
		err := withHandle(n.NetNS, func(h *netlink.Handle) error {
			link, err := h.LinkByName(underlayLink)
			if err != nil {
				return err
			}
			macs[i] = link.Attrs().HardwareAddr
			return nil
		})
		if err != nil {
			return fmt.Errorf("node %s: %w", n.ID, err)
		}
	}
	for i, n := range nodes {
		err := withHandle(n.NetNS, func(h *netlink.Handle) error {
			link, err := h.LinkByName(underlayLink)
			if err != nil {
				return err
			}
			for j, m := range nodes {
				if j == i {
					continue
				}
				err := h.NeighSet(&netlink.Neigh{LinkIndex: link.Attrs().Index, Family: netlink.FAMILY_V4,
					State: netlink.NUD_PERMANENT, IP: m.Underlay.AsSlice(), HardwareAddr: macs[j]})
				if err != nil {
					return fmt.Errorf("neighbour %s: %w", m.ID, err)
				}
			}
			return nil
		})
		if err != nil {
			return fmt.Errorf("node %s: %w", n.ID, err)
		}
	}
	return nil
}
