package firewall

import (
	"fmt"

	"github.com/google/nftables"
	"github.com/mdlayher/netlink"
	"github.com/vishvananda/netns"
	"golang.org/x/sys/unix"
)

// Apply replaces znet's rules in the namespace ns by the rules r in one
// atomic netlink batch, so packets meet either the old rules or the new
// ones, never none. The tables, the chains and the sets that r still has
// are kept and refilled in place (see replaceInPlace for why); if that
// batch fails (someone changed a chain's hook, say), both tables are
// deleted and added anew in one batch instead. Applying the same rules
// again changes nothing a packet can see. ns is not closed. Invalid rules
// give an error wrapping ErrInvalid, before anything is sent to the kernel.
func Apply(ns netns.NsHandle, r Rules) error {
	r = r.normalized()
	if err := r.validate(); err != nil {
		return err
	}
	tables := build(r)
	if err := replaceInPlace(ns, tables); err == nil {
		return nil
	}
	c, err := conn(ns)
	if err != nil {
		return err
	}
	for _, t := range tables {
		nt := &nftables.Table{Name: tableName, Family: t.family}
		// Adding first makes the delete succeed when there is no table yet.
		c.AddTable(nt)
		c.DelTable(nt)
		c.AddTable(nt)
		if err := add(c, nt, t); err != nil {
			return fmt.Errorf("applying firewall: %w", err)
		}
	}
	if err := c.Flush(); err != nil {
		return fmt.Errorf("applying firewall: %w", err)
	}
	return nil
}

// Remove deletes znet's tables from the namespace ns in one batch; removing
// tables that are not there is not an error. ns is not closed.
func Remove(ns netns.NsHandle) error {
	c, err := conn(ns)
	if err != nil {
		return err
	}
	for _, f := range []nftables.TableFamily{nftables.TableFamilyINet, nftables.TableFamilyBridge} {
		nt := &nftables.Table{Name: tableName, Family: f}
		c.AddTable(nt)
		c.DelTable(nt)
	}
	if err := c.Flush(); err != nil {
		return fmt.Errorf("removing firewall: %w", err)
	}
	return nil
}

// conn returns an nftables connection into ns. A handle that is not an
// open fd is refused: fd 0 would silently mean the caller's own namespace.
func conn(ns netns.NsHandle) (*nftables.Conn, error) {
	if ns <= 0 {
		return nil, fmt.Errorf("namespace handle %d: %w", int(ns), ErrInvalid)
	}
	c, err := nftables.New(nftables.WithNetNSFd(int(ns)), nftables.WithSockOptions(bigReceiveBuffer))
	if err != nil {
		return nil, fmt.Errorf("nftables in namespace: %w", err)
	}
	return c, nil
}

// receiveBuffer is the netlink buffer size for a batch, both ways: the
// batch is sent in one message, and the kernel acknowledges every part of
// it at once; with a few dozen workloads the default buffers overflow
// (EMSGSIZE sending, ENOBUFS receiving).
const receiveBuffer = 16 << 20

// bigReceiveBuffer raises the socket's buffers past rmem_max/wmem_max,
// which root (CAP_NET_ADMIN) may do.
func bigReceiveBuffer(c *netlink.Conn) error {
	rc, err := c.SyscallConn()
	if err != nil {
		return err
	}
	var serr error
	err = rc.Control(func(fd uintptr) {
		serr = unix.SetsockoptInt(int(fd), unix.SOL_SOCKET, unix.SO_RCVBUFFORCE, receiveBuffer)
		if serr == nil {
			// The whole batch goes out in one sendmsg, which netlink
			// refuses (EMSGSIZE) beyond the send buffer.
			serr = unix.SetsockoptInt(int(fd), unix.SOL_SOCKET, unix.SO_SNDBUFFORCE, receiveBuffer)
		}
	})
	if err != nil {
		return err
	}
	if serr != nil {
		// Without CAP_NET_ADMIN fall back to what rmem_max allows.
		return c.SetReadBuffer(receiveBuffer)
	}
	return nil
}

// add queues the chains, sets and rules of t into table nt. Chains are
// added before any set or rule, so jumps (a verdict map's included) always
// find their target, and sets before the rules that look them up.
func add(c *nftables.Conn, nt *nftables.Table, t table) error {
	chains := make([]*nftables.Chain, len(t.chains))
	for i, ch := range t.chains {
		nc := &nftables.Chain{Name: ch.name, Table: nt}
		if ch.base() {
			prio, policy := ch.priority, ch.policy
			nc.Type = ch.chainType()
			nc.Hooknum = ch.hook
			nc.Priority = &prio
			nc.Policy = &policy
		}
		chains[i] = c.AddChain(nc)
	}
	if err := addSets(c, nt, t); err != nil {
		return err
	}
	for i, ch := range t.chains {
		for _, rl := range ch.rules {
			c.AddRule(&nftables.Rule{Table: nt, Chain: chains[i], Exprs: rl.exprs})
		}
	}
	return nil
}
