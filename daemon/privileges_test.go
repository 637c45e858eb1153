package daemon

import (
	"fmt"
	"net/netip"
	"os"
	"os/exec"
	"strconv"
	"strings"
	"testing"
	"time"

	"github.com/miekg/dns"
	"github.com/stretchr/testify/assert"
	"github.com/stretchr/testify/require"
	"golang.org/x/sys/unix"
	"golang.zx2c4.com/wireguard/wgctrl/wgtypes"

	"github.com/znet/znet/api"
	"github.com/znet/znet/dataplane"
	"github.com/znet/znet/internal/testutil"
	"github.com/znet/znet/internal/testutil/nstest"
	"github.com/znet/znet/namespaces"
	"github.com/znet/znet/spec"
)

// startCapsMask is what a data plane's bounding set may keep when its
// runtime cannot empty it on every thread (a cgo build, as under -race):
// the capabilities it starts with, unusable once it is its own user with
// no_new_privs.
const startCapsMask = 1<<unix.CAP_NET_ADMIN | 1<<unix.CAP_SYS_ADMIN | 1<<unix.CAP_NET_BIND_SERVICE |
	1<<unix.CAP_SETUID | 1<<unix.CAP_SETGID | 1<<unix.CAP_SETPCAP

// taskStatus returns the fields of /proc/PID/task/TID/status.
func taskStatus(t *testing.T, path string) map[string]string {
	t.Helper()
	b, err := os.ReadFile(path)
	require.NoError(t, err)
	out := map[string]string{}
	for _, line := range strings.Split(string(b), "\n") {
		if k, v, ok := strings.Cut(line, ":"); ok {
			out[k] = strings.TrimSpace(v)
		}
	}
	return out
}

// requireUnprivileged checks every thread of data plane pid: its own user, no
// capabilities, no_new_privs, and no handle of the underlay left open.
func requireUnprivileged(t *testing.T, pid int, ifname string, underlay uint64) {
	t.Helper()
	dir := fmt.Sprintf("/proc/%d/task", pid)
	tasks, err := os.ReadDir(dir)
	require.NoError(t, err)
	require.NotEmpty(t, tasks)
	for _, task := range tasks {
		st := taskStatus(t, dir+"/"+task.Name()+"/status")
		name := "thread " + task.Name()
		ids := strings.Repeat(strconv.Itoa(dataplane.UID(ifname))+"\t", 4)
		assert.Equal(t, strings.TrimSuffix(ids, "\t"), st["Uid"], name)
		assert.Equal(t, strings.TrimSuffix(ids, "\t"), st["Gid"], name)
		assert.Empty(t, strings.TrimSpace(st["Groups"]), name)
		for _, set := range []string{"CapEff", "CapPrm", "CapInh", "CapAmb"} {
			assert.Equal(t, "0000000000000000", st[set], "%s %s", name, set)
		}
		bnd, err := strconv.ParseUint(st["CapBnd"], 16, 64)
		require.NoError(t, err)
		assert.Zero(t, bnd&^startCapsMask, "%s CapBnd %s", name, st["CapBnd"])
		assert.Equal(t, "1", st["NoNewPrivs"], name)
	}
	fds, err := os.ReadDir(fmt.Sprintf("/proc/%d/fd", pid))
	require.NoError(t, err)
	for _, fd := range fds {
		l, _ := os.Readlink(fmt.Sprintf("/proc/%d/fd/%s", pid, fd.Name()))
		assert.NotEqual(t, fmt.Sprintf("net:[%d]", underlay), l, "fd %s is the underlay", fd.Name())
	}
}

// lookupA asks the resolver at server for name's A record from inside
// namespace ns.
func lookupA(ns, server, name string) ([]string, error) {
	var out []string
	err := namespaces.DoPath(ns, func() error {
		c := &dns.Client{Timeout: time.Second}
		r, _, err := c.Exchange(new(dns.Msg).SetQuestion(dns.Fqdn(name), dns.TypeA), server+":53")
		if err != nil {
			return err
		}
		for _, rr := range r.Answer {
			if a, ok := rr.(*dns.A); ok {
				out = append(out, a.A.String())
			}
		}
		return nil
	})
	return out, err
}

// TestDataplanePrivileges checks (issue 10 item 5) that a running data
// plane runs as its own user without capabilities, with no_new_privs and without the
// underlay's handle, and that its network keeps working: DNS records
// pushed after the drop, peers changed, the device taken down and up by
// hand; a listen port set by hand, which it cannot bind any more, ends it,
// and the supervisor starts one that binds the reserved port at start; a
// port moved through the API gets a new data plane that binds it at start.
func TestDataplanePrivileges(t *testing.T) {
	testutil.SkipUnlessRoot(t)
	testutil.GoroutineLeakCheck(t)
	n := newTestNode(t)
	ctx := testCtx(t)
	n.use("shop")
	res, err := n.d.Reserve(ctx, "shop")
	require.NoError(t, err)
	// Public, so that it peers with the hidden members.
	self := spec.Node{ID: n.id, Subnet: mustPrefix("10.20.1.0/24"), Endpoint: fmt.Sprintf("198.18.0.1:%d", res.ListenPort)}
	s := specOf("shop", 1, self, member(t, "node2", "10.20.2.0/24"))
	_, err = n.d.Apply(ctx, s)
	require.NoError(t, err)
	underlay, err := namespaces.IdentityOf(n.underlay)
	require.NoError(t, err)
	ws := n.newWorkloadNS(t)
	web, err := n.d.Attach(ctx, "shop", api.AttachRequest{Name: "web", NetNS: namespaces.Path(ws)})
	require.NoError(t, err)
	gw := web.Gateway.String()
	resolves := func(t *testing.T, name string, want netip.Addr) {
		t.Helper()
		var got []string
		assert.Eventually(t, func() bool {
			got, err = lookupA(namespaces.Path(ws), gw, name+".shop.internal")
			return err == nil && len(got) == 1 && got[0] == want.String()
		}, 5*time.Second, 50*time.Millisecond, "%s: %v %v", name, got, err)
	}

	step(t, "the running data plane holds no privilege", func(t *testing.T) {
		pid := n.real.PID(n.dev("shop"))
		require.Positive(t, pid)
		requireUnprivileged(t, pid, n.dev("shop").IfName, underlay.Ino)
		dev, err := n.real.Show(ctx, n.dev("shop"))
		require.NoError(t, err)
		assert.Equal(t, res.ListenPort, dev.ListenPort)
		resolves(t, "web", web.IPv4)
		assert.Len(t, n.peersOf(t, "shop"), 1)
	})

	step(t, "DNS pushes and peer changes work without privileges", func(t *testing.T) {
		db, err := n.d.Attach(ctx, "shop", api.AttachRequest{Name: "db", NetNS: namespaces.Path(n.newWorkloadNS(t))})
		require.NoError(t, err)
		resolves(t, "db", db.IPv4)
		third := member(t, "node3", "10.20.3.0/24")
		s2 := specOf("shop", 2, self, s.Nodes[1], third)
		_, err = n.d.Apply(ctx, s2)
		require.NoError(t, err)
		assert.Len(t, n.peersOf(t, "shop"), 2)
		s = s2
	})

	step(t, "a device taken down and up by hand keeps its data plane and its sockets", func(t *testing.T) {
		pid := n.real.PID(n.dev("shop"))
		for _, state := range []string{"down", "up"} {
			out, err := exec.Command("ip", "-n", n.nsName("shop"), "link", "set", n.dev("shop").IfName, state).CombinedOutput()
			require.NoError(t, err, string(out))
			// Down for a while: a device that took the link's down for
			// its own would close its sockets, which the data plane can
			// no longer open (dataplane's linkWatch).
			time.Sleep(1500 * time.Millisecond)
		}
		_, err := n.d.Apply(ctx, s) // the routes went with the link
		require.NoError(t, err)
		assert.Equal(t, pid, n.real.PID(n.dev("shop")))
		requireUnprivileged(t, pid, n.dev("shop").IfName, underlay.Ino)
		resolves(t, "web", web.IPv4)
		out, err := exec.Command("nsenter", fmt.Sprintf("--net=/proc/%d/fd/%d", os.Getpid(), n.underlay), "ss", "-Huln").CombinedOutput()
		require.NoError(t, err, "%s", out)
		assert.True(t, nstest.Listens(string(out), res.ListenPort), "the data plane still listens on %d in the underlay:\n%s", res.ListenPort, out)
	})

	step(t, "a port changed by hand ends the data plane; the supervisor starts one on the reserved port", func(t *testing.T) {
		pid := n.real.PID(n.dev("shop"))
		other := res.ListenPort + 1
		// The data plane cannot open sockets in the underlay any more.
		assert.Error(t, n.real.Configure(ctx, n.dev("shop"), wgtypes.Config{ListenPort: &other}))
		var newPid int
		// Its pid file is written at the fork; it answers once it runs.
		require.Eventually(t, func() bool {
			newPid = n.real.PID(n.dev("shop"))
			dev, err := n.real.Show(ctx, n.dev("shop"))
			return newPid != 0 && newPid != pid && err == nil && dev.ListenPort == res.ListenPort && len(dev.Peers) == 2
		}, 10*time.Second, 20*time.Millisecond, "a new data plane on the reserved port, with the peers")
		requireUnprivileged(t, newPid, n.dev("shop").IfName, underlay.Ino)
		resolves(t, "web", web.IPv4)
	})

	step(t, "a port moved by reserve and apply gets a new data plane bound to it", func(t *testing.T) {
		pid := n.real.PID(n.dev("shop"))
		moved := res.ListenPort + 5
		_, err := n.d.ReservePort(ctx, "shop", moved)
		require.NoError(t, err)
		next := s.Clone()
		next.Generation++
		next.Nodes[0].Endpoint = fmt.Sprintf("198.18.0.1:%d", moved)
		_, err = n.d.Apply(ctx, next)
		require.NoError(t, err)
		newPid := n.real.PID(n.dev("shop"))
		require.Positive(t, newPid)
		assert.NotEqual(t, pid, newPid)
		requireUnprivileged(t, newPid, n.dev("shop").IfName, underlay.Ino)
		dev, err := n.real.Show(ctx, n.dev("shop"))
		require.NoError(t, err)
		assert.Equal(t, moved, dev.ListenPort)
		assert.Len(t, n.peersOf(t, "shop"), 2)
		resolves(t, "web", web.IPv4)
	})
}
