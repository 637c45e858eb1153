package firewall

import (
	"errors"
	"net/netip"
	"testing"

	"github.com/stretchr/testify/assert"
	"github.com/stretchr/testify/require"
)

// counting is an Installer that counts installs and keeps a generation.
type counting struct {
	installs int
	gen      uint32
	fail     error
}

func (c *counting) Install(Rules) error {
	if c.fail != nil {
		return c.fail
	}
	c.installs++
	c.gen++
	return nil
}

func (c *counting) Generation() (uint32, error) { return c.gen, nil }

func TestEnsure(t *testing.T) {
	c := &counting{}
	r := Rules{Bridge: "znbr", Overlay: "wg0", AccessPeers: []netip.Addr{netip.MustParseAddr("10.0.1.9")}}
	last, err := Ensure(c, r, nil)
	require.NoError(t, err)
	require.NotNil(t, last)
	assert.Equal(t, 1, c.installs, "nothing known: installed")

	last, err = Ensure(c, r, last)
	require.NoError(t, err)
	assert.Equal(t, 1, c.installs, "the same rules, nothing changed since: not installed")

	c.gen++ // an operator's nft
	last, err = Ensure(c, r, last)
	require.NoError(t, err)
	assert.Equal(t, 2, c.installs, "the ruleset changed since: installed")

	other := r
	other.Egress = &Egress{IfName: "egress", Source: netip.MustParseAddr("100.127.0.1")}
	last, err = Ensure(c, other, last)
	require.NoError(t, err)
	assert.Equal(t, 3, c.installs, "other rules: installed")

	boom := errors.New("boom")
	c.fail = boom
	last, err = Ensure(c, r, last)
	require.ErrorIs(t, err, boom)
	assert.Nil(t, last, "a failed install leaves nothing known")
}

func TestRulesEqual(t *testing.T) {
	a := Rules{Bridge: "znbr", Overlay: "wg0", Egress: &Egress{IfName: "egress", Blocked: []netip.Prefix{netip.MustParsePrefix("198.18.0.0/15")}}}
	b := a
	b.Egress = &Egress{IfName: "egress", Blocked: []netip.Prefix{netip.MustParsePrefix("198.18.0.0/15")}}
	assert.True(t, a.Equal(b), "equal ways out, different pointers")
	b.Egress.Source6 = netip.MustParseAddr("fd5a:6e65:6567::1")
	assert.False(t, a.Equal(b), "the node gained global IPv6: the IPv6 way out must be installed")
	b.Egress.Source6 = netip.Addr{}
	b.Egress.Blocked = nil
	assert.False(t, a.Equal(b))
	b.Egress = nil
	assert.False(t, a.Equal(b))
	a.Egress = nil
	assert.True(t, a.Equal(b), "no way out on either")
	b.Ports = []Port{{IfName: "vw1"}}
	assert.False(t, a.Equal(b))
}
