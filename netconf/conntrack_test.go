package netconf

import (
	"net"
	"net/netip"
	"testing"

	"github.com/stretchr/testify/assert"
	"github.com/stretchr/testify/require"
	"github.com/vishvananda/netlink"
	"golang.org/x/sys/unix"

	"github.com/znet/znet/internal/testutil"
	"github.com/znet/znet/namespaces"
)

// TestKernelFlushConntrackInItsNamespace checks that FlushConntrack cuts
// the flows of an address in its namespace and only there: the handle a
// Namespace keeps speaks NETLINK_ROUTE only, and a conntrack request
// through it would have gone out in the calling thread's namespace.
func TestKernelFlushConntrackInItsNamespace(t *testing.T) {
	testutil.SkipUnlessRoot(t)
	addr := netip.MustParseAddr("198.18.7.7")
	open := func() (Namespace, *netlink.Handle) {
		name := "zt-nc-" + testutil.RandomHex(t, 4)
		ns, err := Kernel{}.Open(name, true)
		require.NoError(t, err)
		t.Cleanup(func() { _ = namespaces.Delete(name) })
		t.Cleanup(func() { _ = ns.Close() })
		nf, err := netlink.NewHandleAt(ns.(*kernelNS).ns, unix.NETLINK_NETFILTER)
		require.NoError(t, err)
		t.Cleanup(nf.Close)
		flow := &netlink.ConntrackFlow{
			FamilyType: unix.AF_INET,
			Forward:    netlink.IPTuple{SrcIP: addr.AsSlice(), DstIP: net.IP{198, 18, 0, 9}, SrcPort: 40000, DstPort: 53, Protocol: unix.IPPROTO_UDP},
			Reverse:    netlink.IPTuple{SrcIP: net.IP{198, 18, 0, 9}, DstIP: addr.AsSlice(), SrcPort: 53, DstPort: 40000, Protocol: unix.IPPROTO_UDP},
			TimeOut:    100,
		}
		if err := nf.ConntrackCreate(netlink.ConntrackTable, unix.AF_INET, flow); err != nil {
			t.Skipf("conntrack unavailable: %v", err)
		}
		return ns, nf
	}
	flows := func(nf *netlink.Handle) int {
		fs, err := nf.ConntrackTableList(netlink.ConntrackTable, unix.AF_INET)
		require.NoError(t, err)
		return len(fs)
	}
	ns, nf := open()
	_, otherNF := open()
	require.Equal(t, 1, flows(nf))
	require.NoError(t, ns.FlushConntrack(addr))
	assert.Zero(t, flows(nf), "flushed in its namespace")
	assert.Equal(t, 1, flows(otherNF), "and nowhere else")
}
