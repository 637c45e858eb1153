package firewall

import (
	"net/netip"
	"os/exec"
	"strconv"
	"testing"

	"github.com/google/nftables"
	"github.com/stretchr/testify/assert"
	"github.com/stretchr/testify/require"

	"github.com/znet/znet/internal/testutil"
)

// kernelSets lists the sets of znet's tables in n with their number of
// elements, as "family set elements".
func kernelSets(t *testing.T, n *testNS) []string {
	t.Helper()
	c, err := nftables.New(nftables.WithNetNSFd(int(n.ns)))
	require.NoError(t, err)
	var out []string
	for _, f := range []nftables.TableFamily{nftables.TableFamilyINet, nftables.TableFamilyBridge} {
		tables, err := c.ListTablesOfFamily(f)
		require.NoError(t, err)
		for _, tb := range tables {
			if tb.Name != tableName {
				continue
			}
			sets, err := c.GetSets(tb)
			require.NoError(t, err)
			for _, s := range sets {
				elems, err := c.GetSetElements(s)
				require.NoError(t, err)
				out = append(out, familyName(f)+" "+s.Name+" "+strconv.Itoa(len(elems)))
			}
		}
	}
	return out
}

// wantSets is kernelSets as build says it should be.
func wantSets(r Rules) []string {
	var out []string
	for _, tb := range build(r.normalized()) {
		for _, s := range tb.sets {
			out = append(out, familyName(tb.family)+" "+s.name+" "+strconv.Itoa(len(s.elements)))
		}
	}
	return out
}

// TestReplaceInPlace goes through rule sets that add and drop ports,
// access peers of each family and the egress chain, each installed by
// replaceInPlace itself (Apply would hide its failure behind the
// delete-and-add batch): it must succeed from every one of them, leave
// exactly the chains and sets of the new rules, and then leave them alone
// when Apply installs the same rules again.
func TestReplaceInPlace(t *testing.T) {
	testutil.SkipUnlessRoot(t)
	n := newNS(t, "zt-fw-"+testutil.RandomHex(t, 4))
	port := func(name string, a netip.Addr) Port { return Port{IfName: name, IPv4: a} }
	two := Rules{Bridge: "br0", Overlay: "wg0", Ports: []Port{port("veth-a", a4), port("veth-b", b4)},
		AccessPeers: []netip.Addr{remote4, remote6}}
	other := Rules{Bridge: "br0", Overlay: "wg0", Ports: []Port{port("veth-b", b4), port("veth-x", x4)},
		AccessPeers: []netip.Addr{remote6},
		Egress:      &Egress{IfName: "egress", Source: netip.MustParseAddr("100.127.0.2")}}
	none := Rules{Bridge: "br0", Overlay: "wg0"}
	steps := []struct {
		name string
		r    Rules
	}{
		{"no tables yet", two},
		{"same again", two},
		{"a port, an IPv4 access peer gone, egress added", other},
		{"back", two},
		{"nothing", none},
		{"everything again", other},
		{"the same with egress", other},
	}
	for _, s := range steps {
		t.Run(s.name, func(t *testing.T) {
			r := s.r.normalized()
			require.NoError(t, r.validate())
			require.NoError(t, replaceInPlace(n.ns, build(r)))
			assert.ElementsMatch(t, wantChains(r), kernelChains(t, n))
			assert.ElementsMatch(t, wantSets(r), kernelSets(t, n))
		})
	}
}

// TestApplyWhenInPlaceFails checks that Apply still installs the rules
// when the tables cannot be refilled in place: here someone made a set
// named like znet's verdict map, of another type.
func TestApplyWhenInPlaceFails(t *testing.T) {
	testutil.SkipUnlessRoot(t)
	n := newNS(t, "zt-fw-"+testutil.RandomHex(t, 4))
	c, err := nftables.New(nftables.WithNetNSFd(int(n.ns)))
	require.NoError(t, err)
	nt := c.AddTable(&nftables.Table{Name: tableName, Family: nftables.TableFamilyBridge})
	require.NoError(t, c.AddSet(&nftables.Set{Table: nt, Name: portsMap, KeyType: nftables.TypeIPAddr}, nil))
	require.NoError(t, c.Flush())

	r := Rules{Bridge: "br0", Overlay: "wg0", Ports: []Port{{IfName: "veth-a", IPv4: a4}}}.normalized()
	require.Error(t, replaceInPlace(n.ns, build(r)), "a set of another type is not refilled")
	mustApply(t, n, r)
	assert.ElementsMatch(t, wantChains(r), kernelChains(t, n))
	assert.ElementsMatch(t, wantSets(r), kernelSets(t, n))
}

// TestReplaceInPlaceOverAnonymousSet checks that a rule with an anonymous
// set in one of znet's chains (an operator's `nft add rule ... { 22, 80 }`)
// does not make the in-place batch fail: the flush of the rules already
// retires such a set, and deleting it by name as well made the kernel
// refuse the batch (ENOENT), so Apply fell back to deleting the tables,
// the path that loses packets looking up the verdict map.
func TestReplaceInPlaceOverAnonymousSet(t *testing.T) {
	testutil.SkipUnlessRoot(t)
	n := newNS(t, "zt-fw-"+testutil.RandomHex(t, 4))
	r := Rules{Bridge: "br0", Overlay: "wg0", Ports: []Port{{IfName: "veth-a", IPv4: a4}}}.normalized()
	mustApply(t, n, r)
	out, err := exec.Command("ip", "netns", "exec", n.name,
		"nft", "add", "rule", "inet", tableName, "input", "tcp", "dport", "{ 22, 80 }", "accept").CombinedOutput()
	require.NoError(t, err, string(out))
	require.NoError(t, replaceInPlace(n.ns, build(r)))
	assert.ElementsMatch(t, wantChains(r), kernelChains(t, n))
	assert.ElementsMatch(t, wantSets(r), kernelSets(t, n))
}
