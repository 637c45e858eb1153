package dataplane

import (
	"testing"
	"time"

	"github.com/stretchr/testify/assert"
	"github.com/stretchr/testify/require"
	"github.com/vishvananda/netlink"
	"golang.zx2c4.com/wireguard/tun"

	"github.com/znet/znet/internal/testutil"
	"github.com/znet/znet/internal/testutil/nstest"
	"github.com/znet/znet/namespaces"
)

// TestTUNEventsFromLinkNotifications checks that a data plane's TUN,
// made without wireguard-go's once-a-second status poll, still tells the
// device what it needs: up when the link is set up, the MTU when it
// changes; never down, which would close the device's sockets for good
// (see linkWatch); and that closing it ends its events.
func TestTUNEventsFromLinkNotifications(t *testing.T) {
	testutil.SkipUnlessRoot(t)
	testutil.GoroutineLeakCheck(t)
	ns := nstest.CreateNS(t, "zt-tun-"+testutil.RandomHex(t, 4))
	var dev tun.Device
	require.NoError(t, namespaces.Do(ns, func() error {
		var err error
		dev, err = createTUN("zttun0", 1380)
		return err
	}))
	defer func() { _ = dev.Close() }()
	// The device reads its MTU by name, in the namespace of the thread
	// (a data plane runs all in its network's).
	mtu := func() int {
		t.Helper()
		var m int
		require.NoError(t, namespaces.Do(ns, func() error {
			var err error
			m, err = dev.MTU()
			return err
		}))
		return m
	}
	assert.Equal(t, 1380, mtu())

	h, err := netlink.NewHandleAt(ns)
	require.NoError(t, err)
	defer h.Close()
	link, err := h.LinkByName("zttun0")
	require.NoError(t, err)
	// next returns the next event that has any of the bits want.
	next := func(want tun.Event) tun.Event {
		t.Helper()
		deadline := time.After(5 * time.Second)
		for {
			select {
			case ev, ok := <-dev.Events():
				require.True(t, ok, "events closed")
				if ev&want != 0 {
					return ev
				}
			case <-deadline:
				t.Fatalf("no event %v within 5 s", want)
			}
		}
	}
	require.NoError(t, h.LinkSetUp(link))
	assert.NotZero(t, next(tun.EventUp)&tun.EventMTUUpdate, "every change asks for the MTU")
	require.NoError(t, h.LinkSetMTU(link, 1300))
	next(tun.EventMTUUpdate)
	assert.Equal(t, 1300, mtu())
	require.NoError(t, h.LinkSetDown(link))
	assert.Zero(t, next(tun.EventMTUUpdate)&tun.EventDown, "a link down is no device down")
	require.NoError(t, h.LinkSetUp(link))
	next(tun.EventUp)

	require.NoError(t, dev.Close())
	for range dev.Events() { // drains, and ends once closed
	}
}
