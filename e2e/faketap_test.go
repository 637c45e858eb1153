package e2e

import (
	"errors"
	"fmt"
	"os"
	"sync"
	"testing"

	"github.com/stretchr/testify/require"
	"github.com/vishvananda/netns"
	"golang.org/x/sys/unix"

	"github.com/znet/znet/api"
	"github.com/znet/znet/lab"
	"github.com/znet/znet/namespaces"
	"github.com/znet/znet/tap"
)

// attachTapGuest attaches a tap workload and plays its VM without a VM: a
// namespace (the "guest") with a tap eth0 of its own, configured from the
// attach answer like a guest, and a pump in this process that copies
// frames between the workload's tap and eth0 (both carry the same
// virtio-net header, so frames go through as they are). Probes and
// listeners then treat the guest's namespace as any workload's.
func attachTapGuest(t *testing.T, node lab.Node, network, name string, extra ...string) attached {
	t.Helper()
	var a api.Attachment
	znetJSON(t, node, &a, append([]string{"workload", "attach", network, name, "--tap"}, extra...)...)
	guestNS := workloadNS(t, name)
	gh, err := namespaces.Open(guestNS)
	require.NoError(t, err)
	defer func() { _ = gh.Close() }()
	require.NoError(t, tap.Create(gh, "eth0", 1))
	guest := openPollable(t, gh, "eth0")
	nh, err := namespaces.Open(a.NetNS)
	require.NoError(t, err)
	defer func() { _ = nh.Close() }()
	port := openPollable(t, nh, a.Interface)

	var wg sync.WaitGroup
	wg.Go(func() { pump(port, guest) })
	wg.Go(func() { pump(guest, port) })
	t.Cleanup(func() {
		_ = port.Close()
		_ = guest.Close()
		wg.Wait()
	})
	cmds := [][]string{
		{"ip", "link", "set", "eth0", "address", a.MAC, "mtu", fmt.Sprint(a.MTU), "up"},
		{"ip", "addr", "add", fmt.Sprintf("%s/%d", a.IPv4, a.Subnet.Bits()), "dev", "eth0"},
		{"ip", "-6", "addr", "add", fmt.Sprintf("%s/%d", a.IPv6, a.Subnet6.Bits()), "dev", "eth0", "nodad"},
	}
	for _, r := range a.Routes {
		cmds = append(cmds, []string{"ip", "route", "add", r.To.String(), "via", r.Via.String()})
	}
	for _, c := range cmds {
		out, err := inNS(guestNS, c...)
		require.NoError(t, err, "%v: %s", c, out)
	}
	return attached{ns: guestNS, ipv4: a.IPv4.String(), ipv6: a.IPv6.String()}
}

// openPollable opens the single queue of tap name in ns as a file the Go
// runtime polls, so Close ends a pending Read.
func openPollable(t *testing.T, ns netns.NsHandle, name string) *os.File {
	t.Helper()
	files, err := tap.Open(ns, name, 1)
	require.NoError(t, err)
	fd, err := unix.Dup(int(files[0].Fd()))
	require.NoError(t, err)
	require.NoError(t, files[0].Close())
	require.NoError(t, unix.SetNonblock(fd, true))
	return os.NewFile(uintptr(fd), "tap:"+name)
}

// pump copies frames from src to dst until either is closed. One Read of
// a tap is one frame and one Write sends one; a frame dst refuses (its
// link down for a moment) is dropped, as a wire would.
func pump(src, dst *os.File) {
	buf := make([]byte, 65536)
	for {
		n, err := src.Read(buf)
		if err != nil {
			return
		}
		if _, err := dst.Write(buf[:n]); errors.Is(err, os.ErrClosed) {
			return
		}
	}
}
