package e2e

import (
	"context"
	"fmt"
	"strings"
	"syscall"
	"testing"
	"time"

	"github.com/stretchr/testify/assert"
	"github.com/stretchr/testify/require"

	"github.com/znet/znet/api"
	"github.com/znet/znet/namespaces"
)

// rebootNetworks is how many networks TestReboot brings back.
const rebootNetworks = 20

// TestReboot takes a node with rebootNetworks networks, each with a
// workload and an access peer, through a simulated reboot (znetd, every
// data plane and every namespace of the node gone) and measures how long
// the restarted znetd takes to bring everything back.
func TestReboot(t *testing.T) {
	l := newLab(t, 1)
	node := l.Nodes[0]
	c := node.Client()
	ctx := t.Context()

	type network struct {
		name   string
		wl     attached
		access string
	}
	nets := make([]network, rebootNetworks)
	for i := range nets {
		n := &nets[i]
		n.name = fmt.Sprintf("r%02d", i)
		res, err := c.Reserve(ctx, n.name)
		require.NoError(t, err)
		// Every network has the same range: each lives in its own namespace.
		_, err = c.ApplyRaw(ctx, fmt.Appendf(nil,
			`{"name":%q,"generation":1,"ip_range":"10.40.0.0/16","nodes":[{"id":%q,"subnet":"10.40.1.0/24","endpoint":"%s:%d"}]}`,
			n.name, node.ID, node.Underlay, res.ListenPort))
		require.NoError(t, err)
		n.wl = attach(t, node, n.name, "web")
		_, err = c.AddAccess(ctx, n.name, api.AccessRequest{Name: "laptop", PublicKey: wgKey(t)})
		require.NoError(t, err)
		n.access = "access/laptop"
	}
	before, err := c.Networks(ctx)
	require.NoError(t, err)

	// The reboot: znetd and every data plane die, every namespace of the
	// node goes (workload namespaces stay, as a container runtime brings
	// its containers back).
	pids := dataplanePIDs(t, node)
	require.Len(t, pids, rebootNetworks)
	killZnetd(t, l, node)
	for _, pid := range pids {
		require.NoError(t, syscall.Kill(pid, syscall.SIGKILL))
	}
	left, err := namespaces.List(namespaces.NodePrefix(node.ID))
	require.NoError(t, err)
	require.Len(t, left, rebootNetworks)
	for _, name := range left {
		id, err := namespaces.Identify(namespaces.Path(name))
		require.NoError(t, err)
		require.NoError(t, namespaces.Delete(name))
		wctx, cancel := context.WithTimeout(ctx, 10*time.Second)
		require.NoError(t, namespaces.WaitGone(wctx, id))
		cancel()
	}
	require.Zero(t, dataplaneCount(l))
	// The kernel dismantles a deleted namespace's links shortly after its
	// last reference goes; after a real reboot the workloads' ends are gone.
	for _, n := range nets {
		gone, _ := within(10*time.Second, func() bool {
			_, ok := linksIn(t, n.wl.ns)["znet0"]
			return !ok
		})
		require.True(t, gone, "the end of %s's veth in %s outlived its network's namespace", n.name, n.wl.ns)
	}

	start := time.Now()
	require.NoError(t, l.StartNode(ctx, node))
	var st []api.NetworkStatus
	ok, _ := within(60*time.Second, func() bool {
		sctx, cancel := context.WithTimeout(ctx, 10*time.Second)
		defer cancel()
		if st, err = c.Status(sctx, ""); err != nil || len(st) != rebootNetworks {
			return false
		}
		for _, s := range st {
			if s.PID == 0 {
				return false
			}
			for _, p := range s.Problems {
				if strings.Contains(p, "namespace") {
					return false
				}
			}
		}
		return true
	})
	took := time.Since(start)
	require.True(t, ok, "status after restart: %+v", st)
	t.Logf("reboot: %d networks (each with a workload and an access peer) back in %s", rebootNetworks, took.Round(time.Millisecond))

	after, err := c.Networks(ctx)
	require.NoError(t, err)
	assert.Equal(t, before, after, "the networks are as they were")
	for _, s := range st {
		var peers []string
		for _, p := range s.Peers {
			peers = append(peers, p.Name)
		}
		assert.Contains(t, peers, "access/laptop", "network %s has its access peer", s.Name)
		assert.Equal(t, 1, s.Workloads, "network %s", s.Name)
	}
	for _, n := range nets {
		t.Run(n.name, func(t *testing.T) {
			assert.True(t, pingOK(n.wl.ns, "10.40.1.1"), "workload -> gateway")
			a, status := dig(t, n.wl.ns, "web")
			assert.Equal(t, n.wl.ipv4, a, "dig web: %s", status)
		})
	}
	assert.Equal(t, rebootNetworks, dataplaneCount(l))
}
