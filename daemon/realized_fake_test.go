package daemon

import (
	"context"
	"testing"

	"github.com/stretchr/testify/assert"
	"github.com/stretchr/testify/require"

	"github.com/znet/znet/netconf/netconftest"
)

// prepares counts the calls of Prepare in network f's namespace since the
// last look at the calls.
func (f *fakeNet) prepares() int {
	n := 0
	for _, c := range f.u.host.Calls() {
		if c == "prepare "+f.ns() {
			n++
		}
	}
	return n
}

// prepareAgain has the next realize of f prepare its namespace when op,
// the step a test makes fail, is Prepare: a namespace prepared before is
// not prepared again (prepareOf).
func prepareAgain(f *fakeNet, op string) {
	if op == netconftest.OpPrepare {
		f.u.d.realized.forget(f.name)
	}
}

// TestFakeApplyRemembersPrepare checks that the namespace's loopback and
// sysctls are set by the apply that makes the namespace, not by the next
// ones, and again by a repair (an apply that changes nothing), in a
// namespace made anew, after a failed Prepare and when br_netfilter
// came since.
func TestFakeApplyRemembersPrepare(t *testing.T) {
	u := newUnit(t, newNodeID(t))
	f := newFakeNet(t, u, "shop")
	u.host.Calls()
	f.apply(t, 1)
	assert.Equal(t, 1, f.prepares(), "a new namespace is prepared")
	assert.Equal(t, "1", u.host.Sysctl(f.ns(), "net/ipv4/ip_forward"))
	f.addMember(t, 3)
	f.apply(t, 2)
	assert.Zero(t, f.prepares(), "an update of a namespace prepared before")

	res := f.apply(t, 2)
	require.False(t, res.Changed)
	assert.Equal(t, 1, f.prepares(), "a repair prepares again")

	u.host.Remove(f.ns()) // gone behind the daemon's back: made anew
	f.addMember(t, 4)
	f.apply(t, 3)
	assert.Equal(t, 1, f.prepares(), "a namespace made anew is prepared")
	assert.Equal(t, "1", u.host.Sysctl(f.ns(), "net/ipv4/ip_forward"))

	u.d.realized.forget(f.name)
	u.host.FailNext("prepare", errInjected)
	f.addMember(t, 5)
	_, err := u.d.Apply(context.Background(), f.spec(4))
	require.ErrorIs(t, err, errInjected)
	assert.Equal(t, 2, f.prepares(), "a failed Prepare is tried again by the rollback")
	f.apply(t, 4)
	assert.Zero(t, f.prepares(), "which did it")

	// br_netfilter loaded (or gone) since: its sysctls are set again.
	u.d.realized.mu.Lock()
	u.d.realized.nets[f.name].hooks = !bridgeHooksLoaded()
	u.d.realized.mu.Unlock()
	f.addMember(t, 6)
	f.apply(t, 5)
	assert.Equal(t, 1, f.prepares(), "br_netfilter came or went")
}
