package daemon

import (
	"testing"

	"github.com/stretchr/testify/assert"
	"github.com/stretchr/testify/require"
	"github.com/vishvananda/netlink"

	"github.com/znet/znet/api"
	"github.com/znet/znet/internal/testutil"
	"github.com/znet/znet/namespaces"
	"github.com/znet/znet/spec"
)

// TestMTUNeverTouchesAReplacedNamespace changes a network's MTU while its
// workload's path names another namespace than the one attached (the name
// made again while the old namespace lives on, so its veth is still
// there): the new namespace's link with the index of the old veth end
// keeps its MTU. znetd must never change a namespace it did not check.
func TestMTUNeverTouchesAReplacedNamespace(t *testing.T) {
	testutil.SkipUnlessRoot(t)
	n, s, ws := attachedAt1400(t)

	// Keep the attached namespace alive behind znet's back, and learn the
	// index of the workload's end in it.
	old, err := namespaces.Open(namespaces.Path(ws))
	require.NoError(t, err)
	defer func() { _ = old.Close() }()
	oh, err := netlink.NewHandleAt(old)
	require.NoError(t, err)
	defer oh.Close()
	end, err := oh.LinkByName("znet0")
	require.NoError(t, err)

	// The name now names a new namespace, with a link of that index.
	require.NoError(t, namespaces.Delete(ws))
	require.NoError(t, namespaces.Create(ws))
	fresh, err := namespaces.Open(namespaces.Path(ws))
	require.NoError(t, err)
	defer func() { _ = fresh.Close() }()
	fh, err := netlink.NewHandleAt(fresh)
	require.NoError(t, err)
	defer fh.Close()
	// A veth's peer is registered first: "victim" gets the first free
	// index, as the workload's end did in its namespace.
	require.NoError(t, fh.LinkAdd(&netlink.Veth{LinkAttrs: netlink.LinkAttrs{Name: "other", MTU: 1500}, PeerName: "victim"}))
	victim, err := fh.LinkByName("victim")
	require.NoError(t, err)
	require.Equal(t, end.Attrs().Index, victim.Attrs().Index, "test setup: the same index")

	changeMTUTo1300(t, n, s)
	v := view(t, namespaces.Path(ws))
	assert.Equal(t, 1500, v.links["victim"].mtu, "the new namespace's link keeps its MTU")
}

// TestMTUNeverTouchesALinkThatIsNotThePeer changes a network's MTU after
// the workload moved its end of the veth into another namespace of its own
// and made a link with that end's index in the namespace attached: the
// bridge end still names that index as its peer, but the link there is
// not the veth's other end and keeps its MTU.
func TestMTUNeverTouchesALinkThatIsNotThePeer(t *testing.T) {
	testutil.SkipUnlessRoot(t)
	n, s, ws := attachedAt1400(t)

	wh := handleIn(t, namespaces.Path(ws))
	defer wh.Close()
	end, err := wh.LinkByName("znet0")
	require.NoError(t, err)
	// The workload moves its end into a nested namespace (it keeps its
	// index there, which is free) and makes a link of that index.
	nested := n.newWorkloadNS(t)
	nh, err := namespaces.Open(namespaces.Path(nested))
	require.NoError(t, err)
	defer func() { _ = nh.Close() }()
	require.NoError(t, wh.LinkSetNsFd(end, int(nh)))
	victim := &netlink.Veth{LinkAttrs: netlink.LinkAttrs{Name: "victim", Index: end.Attrs().Index, MTU: 1500}, PeerName: "other"}
	require.NoError(t, wh.LinkAdd(victim))
	got, err := wh.LinkByName("victim")
	require.NoError(t, err)
	require.Equal(t, end.Attrs().Index, got.Attrs().Index, "test setup: the same index")

	changeMTUTo1300(t, n, s)
	assert.Equal(t, 1500, view(t, namespaces.Path(ws)).links["victim"].mtu, "a link that is not the veth's other end keeps its MTU")
}

// attachedAt1400 applies network "shop" with MTU 1400 on a new test node
// and attaches workload "web" in a namespace of its own; it returns the
// node, the spec and the workload's namespace.
func attachedAt1400(t *testing.T) (*testNode, *spec.Spec, string) {
	t.Helper()
	n := newTestNode(t)
	ctx := testCtx(t)
	n.use("shop")
	s := specOf("shop", 1, spec.Node{ID: n.id, Subnet: mustPrefix("10.20.1.0/24")})
	s.MTU = 1400
	_, err := n.d.Apply(ctx, s)
	require.NoError(t, err)
	ws := n.newWorkloadNS(t)
	_, err = n.d.Attach(ctx, "shop", api.AttachRequest{Name: "web", NetNS: namespaces.Path(ws)})
	require.NoError(t, err)
	return n, s, ws
}

// changeMTUTo1300 applies s's next generation with MTU 1300 and checks
// that the network follows.
func changeMTUTo1300(t *testing.T, n *testNode, s *spec.Spec) {
	t.Helper()
	s2 := s.Clone()
	s2.Generation, s2.MTU = 2, 1300
	_, err := n.d.Apply(testCtx(t), s2)
	require.NoError(t, err)
	assert.Equal(t, 1300, view(t, namespaces.Path(n.nsName("shop"))).links[bridgeName].mtu, "the network follows")
}
