package firewall

import (
	"bytes"
	"net/netip"
	"os/exec"
	"regexp"
	"slices"
	"strconv"
	"sync"
	"testing"
	"time"

	"github.com/stretchr/testify/assert"
	"github.com/stretchr/testify/require"

	"github.com/znet/znet/internal/testutil"
)

// pingStats matches ping's summary line.
var pingStats = regexp.MustCompile(`(\d+) packets transmitted, (\d+) received`)

// accessPeer4 is an access peer's address behind the lab's overlay.
var accessPeer4 = netip.MustParseAddr("10.20.2.3")

// TestApplyKeepsTraffic re-applies rules that change another port and
// another access peer, over and over, while a and b ping each other every
// 10 ms, and an access peer behind the overlay pings a: not one echo may
// be lost, because each Apply swaps the rules in one transaction, and a
// port or access peer that stays is in the sets and maps of both the old
// rules and the new.
func TestApplyKeepsTraffic(t *testing.T) {
	testutil.SkipUnlessRoot(t)
	l := newLab(t)
	l.remote.addAddrs(t, "eth0", accessPeer4.String()+"/24")
	base := l.rules()
	base.AccessPeers = []netip.Addr{accessPeer4}
	mustApply(t, l.net, base)
	withX := base
	withX.Ports = append(slices.Clone(base.Ports), Port{IfName: "veth-x", IPv4: x4, IPv6: x6})
	withX.AccessPeers = []netip.Addr{accessPeer4, remote6}
	movedX := base
	movedX.Ports = append(slices.Clone(base.Ports), Port{IfName: "veth-x", IPv4: spoof4})
	variants := []Rules{withX, movedX, base}

	const count = 300
	flows := []struct {
		name     string
		from     *testNS
		src, dst netip.Addr
	}{
		{"a to b v4", l.a, a4, b4},
		{"b to a v6", l.b, b6, a6},
		{"a to remote v4", l.a, a4, remote4},
		{"access peer to a v4", l.remote, accessPeer4, a4},
	}
	outs := make([]bytes.Buffer, len(flows))
	var wg sync.WaitGroup
	t.Cleanup(wg.Wait) // pings that started end by themselves within seconds
	done := make(chan struct{})
	for i, f := range flows {
		cmd := exec.Command("ip", "netns", "exec", f.from.name, "ping", "-n", "-q",
			"-i", "0.01", "-c", strconv.Itoa(count), "-I", f.src.String(), f.dst.String())
		cmd.Stdout, cmd.Stderr = &outs[i], &outs[i]
		require.NoError(t, cmd.Start())
		wg.Add(1)
		go func() {
			defer wg.Done()
			_ = cmd.Wait() // judged by the summary below
		}()
	}
	go func() {
		wg.Wait()
		close(done)
	}()

	applies := 0
	var applyErr error
loop:
	for {
		select {
		case <-done:
			break loop
		default:
		}
		if err := Apply(l.net.ns, variants[applies%len(variants)]); err != nil && applyErr == nil {
			applyErr = err
		}
		applies++
		time.Sleep(5 * time.Millisecond)
	}
	require.NoError(t, applyErr)
	assert.Greater(t, applies, 50, "rules changed often while the pings ran")

	for i, f := range flows {
		t.Run(f.name, func(t *testing.T) {
			m := pingStats.FindStringSubmatch(outs[i].String())
			require.NotNil(t, m, "ping output: %s", outs[i].String())
			assert.Equal(t, strconv.Itoa(count), m[1], "sent")
			assert.Equal(t, strconv.Itoa(count), m[2], "received: %s", outs[i].String())
		})
	}
}
