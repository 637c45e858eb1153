package tap

import (
	"testing"

	"github.com/stretchr/testify/assert"
	"github.com/stretchr/testify/require"
	"github.com/vishvananda/netlink"
	"golang.org/x/sys/unix"

	"github.com/znet/znet/internal/testutil"
	"github.com/znet/znet/internal/testutil/nstest"
)

func TestMAC(t *testing.T) {
	a := MAC("shop", "vm1")
	assert.Equal(t, a, MAC("shop", "vm1"), "stable")
	assert.Equal(t, byte(0x02), a[0], "unicast, locally administered")
	assert.Len(t, a, 6)
	seen := map[string]string{}
	for _, p := range [][2]string{{"shop", "vm1"}, {"shop", "vm2"}, {"blog", "vm1"}, {"shopv", "m1"}, {"shop", ""}} {
		mac := MAC(p[0], p[1]).String()
		require.NotContains(t, seen, mac, "%v and %s", p, seen[mac])
		seen[mac] = p[0] + "/" + p[1]
		_, err := ParseMAC(mac)
		assert.NoError(t, err, "a derived MAC is one ParseMAC takes")
	}
}

func TestParseMAC(t *testing.T) {
	good := map[string]string{
		"02:11:22:33:44:55": "02:11:22:33:44:55",
		"52-54-00-AB-CD-EF": "52:54:00:ab:cd:ef",
		"5254.00ab.cdef":    "52:54:00:ab:cd:ef",
	}
	for in, want := range good {
		mac, err := ParseMAC(in)
		require.NoError(t, err, in)
		assert.Equal(t, want, mac.String())
	}
	for _, in := range []string{"", "02:11", "01:00:5e:00:00:01", "ff:ff:ff:ff:ff:ff", "00:00:00:00:00:00",
		"02:00:00:00:00:00:00:01", "zz:11:22:33:44:55"} {
		_, err := ParseMAC(in)
		assert.ErrorIs(t, err, ErrBadMAC, "%q", in)
	}
}

func TestFlags(t *testing.T) {
	one := Flags(1)
	assert.Equal(t, uint16(unix.IFF_TAP|unix.IFF_NO_PI|unix.IFF_VNET_HDR), one)
	assert.Equal(t, one|unix.IFF_MULTI_QUEUE, Flags(4))
}

// TestCreateAndOpen makes persistent taps in a throwaway namespace and
// attaches to their queues.
func TestCreateAndOpen(t *testing.T) {
	testutil.SkipUnlessRoot(t)
	ns := nstest.CreateNS(t, "zt-tap-"+testutil.RandomHex(t, 4))
	h, err := netlink.NewHandleAt(ns)
	require.NoError(t, err)
	defer h.Close()

	require.NoError(t, Create(ns, "tq1", 1))
	require.NoError(t, Create(ns, "tq4", 4))
	for _, name := range []string{"tq1", "tq4"} {
		l, err := h.LinkByName(name)
		require.NoError(t, err, "the tap persists without an open queue")
		require.IsType(t, &netlink.Tuntap{}, l)
		assert.Equal(t, netlink.TUNTAP_MODE_TAP, l.(*netlink.Tuntap).Mode)
	}
	_, err = netlink.LinkByName("tq1")
	assert.Error(t, err, "made in the namespace, not the caller's")

	files, err := Open(ns, "tq4", 4)
	require.NoError(t, err)
	assert.Len(t, files, 4)
	for _, f := range files {
		assert.NoError(t, f.Close())
	}
	_, err = Open(ns, "tq4", 1)
	assert.ErrorIs(t, err, unix.EINVAL, "a multi-queue tap refuses a single-queue opener")

	files, err = Open(ns, "tq1", 1)
	require.NoError(t, err)
	_, err = Open(ns, "tq1", 1)
	assert.ErrorIs(t, err, unix.EBUSY, "one opener at a time")
	assert.NoError(t, files[0].Close())

	_, err = Open(ns, "missing", 1)
	assert.ErrorIs(t, err, ErrNoTap)
	_, err = h.LinkByName("missing")
	assert.Error(t, err, "opening a missing tap does not make one")
	_, err = Open(ns, "lo", 1)
	assert.ErrorIs(t, err, ErrNoTap)
	assert.Error(t, Create(ns, "tq0", 0))
	assert.Error(t, Create(ns, "tq0", MaxQueues+1))
	_, err = h.LinkByName("tq0")
	assert.Error(t, err, "nothing made for a bad queue count")
}
