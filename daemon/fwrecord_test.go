package daemon

import (
	"context"
	"encoding/json"
	"net/netip"
	"os"
	"path/filepath"
	"testing"

	"github.com/stretchr/testify/assert"
	"github.com/stretchr/testify/require"

	"github.com/znet/znet/firewall"
)

// withRecords makes d keep firewall records under u's state dir, as znetd
// does, for a boot named boot.
func withRecords(u *unit, d *Daemon, boot string) *Daemon {
	d.markDir, d.bootID = filepath.Join(u.dir, "netns"), boot
	return d
}

// editRecord rewrites the firewall record of f's namespace through edit.
func editRecord(t *testing.T, f *fakeNet, edit func(*fwRecord)) {
	t.Helper()
	path := f.u.d.fwRecordPath(f.ns())
	b, err := os.ReadFile(path)
	require.NoError(t, err)
	var rec fwRecord
	require.NoError(t, json.Unmarshal(b, &rec))
	edit(&rec)
	b, err = json.Marshal(rec)
	require.NoError(t, err)
	require.NoError(t, os.WriteFile(path, b, 0o600))
}

// TestRestartKeepsFirewall checks that a restarted daemon adopts a
// network's firewall without rebuilding it when its record on disk matches
// the namespace, and rebuilds it when anything in the record does not.
func TestRestartKeepsFirewall(t *testing.T) {
	cases := []struct {
		name     string
		boot     string // the restarted daemon's boot
		change   func(t *testing.T, f *fakeNet)
		installs int // after the restart
	}{
		{"unchanged", "boot-1", func(*testing.T, *fakeNet) {}, 1},
		{"ruleset changed by hand", "boot-1", func(_ *testing.T, f *fakeNet) { f.u.host.ChangeRuleset(f.ns()) }, 2},
		{"another boot", "boot-2", func(*testing.T, *fakeNet) {}, 2},
		{"another znetd binary", "boot-1", func(t *testing.T, f *fakeNet) { editRecord(t, f, func(r *fwRecord) { r.Program += "x" }) }, 2},
		{"another namespace", "boot-1", func(t *testing.T, f *fakeNet) { editRecord(t, f, func(r *fwRecord) { r.Cookie++ }) }, 2},
		{"other rules", "boot-1", func(t *testing.T, f *fakeNet) { editRecord(t, f, func(r *fwRecord) { r.Rules.Bridge = "other" }) }, 2},
		{"other generation", "boot-1", func(t *testing.T, f *fakeNet) { editRecord(t, f, func(r *fwRecord) { r.Gen++ }) }, 2},
		{"corrupt record", "boot-1", func(t *testing.T, f *fakeNet) {
			require.NoError(t, os.WriteFile(f.u.d.fwRecordPath(f.ns()), []byte(`{"boot":"boot-1","cook`), 0o600))
		}, 2},
		{"missing record", "boot-1", func(t *testing.T, f *fakeNet) { require.NoError(t, os.Remove(f.u.d.fwRecordPath(f.ns()))) }, 2},
	}
	for _, c := range cases {
		t.Run(c.name, func(t *testing.T) {
			u := newUnit(t, newNodeID(t))
			withRecords(u, u.d, "boot-1")
			f := newFakeNet(t, u, "shop")
			f.apply(t, 1)
			require.Equal(t, 1, u.host.Installs(f.ns()))
			rules := u.host.Rules(f.ns())
			c.change(t, f)
			u.d.Close()
			d := withRecords(u, u.newDaemon(t), c.boot)
			require.NoError(t, d.Recover(context.Background()))
			assert.Equal(t, c.installs, u.host.Installs(f.ns()))
			assert.Equal(t, rules, u.host.Rules(f.ns()))
			// Whatever happened, the record now says what is there: a
			// second restart rebuilds nothing.
			d.Close()
			d = withRecords(u, u.newDaemon(t), c.boot)
			require.NoError(t, d.Recover(context.Background()))
			assert.Equal(t, c.installs, u.host.Installs(f.ns()), "the second restart")
		})
	}
}

// TestRecordRepairAndDelete checks that re-applying an unchanged spec
// still rebuilds the firewall after a restart (a repair), and that deleting
// the network removes its record.
func TestRecordRepairAndDelete(t *testing.T) {
	u := newUnit(t, newNodeID(t))
	withRecords(u, u.d, "boot-1")
	f := newFakeNet(t, u, "shop")
	f.apply(t, 1)
	u.d.Close()
	u.d = withRecords(u, u.newDaemon(t), "boot-1")
	require.NoError(t, u.d.Recover(context.Background()))
	require.Equal(t, 1, u.host.Installs(f.ns()))
	res := f.apply(t, 1)
	assert.False(t, res.Changed)
	assert.Equal(t, 2, u.host.Installs(f.ns()), "a repair rebuilds")
	path := u.d.fwRecordPath(f.ns())
	require.FileExists(t, path)
	require.NoError(t, u.d.DeleteNetwork(context.Background(), "shop", false))
	assert.NoFileExists(t, path)
}

// TestRecordRulesRoundTrip checks that every part of the rules survives
// the file, so an unchanged firewall is recognised as such after a restart.
func TestRecordRulesRoundTrip(t *testing.T) {
	r := fwRecord{Boot: "b", Program: "p", Cookie: 7, Gen: 9, Rules: firewall.Rules{
		Bridge: "br0", Overlay: "wg0",
		Ports: []firewall.Port{
			{IfName: "vw1", IPv4: netip.MustParseAddr("::ffff:10.20.1.2"), IPv6: netip.MustParseAddr("fd00::2"), MAC: "02:11:22:33:44:55"},
			{IfName: "vw2", IPv4: netip.MustParseAddr("10.20.1.3")},
		},
		AccessPeers: []netip.Addr{netip.MustParseAddr("10.20.255.1"), netip.MustParseAddr("fd00::ff")},
		Egress: &firewall.Egress{IfName: "eg0", Source: netip.MustParseAddr("100.64.0.2"),
			Blocked: []netip.Prefix{netip.MustParsePrefix("198.18.0.0/15")}},
	}}
	b, err := json.Marshal(r)
	require.NoError(t, err)
	var back fwRecord
	require.NoError(t, json.Unmarshal(b, &back))
	assert.True(t, back.Rules.Equal(r.Rules), "%+v", back.Rules)
	assert.Equal(t, r.Boot+r.Program, back.Boot+back.Program)
	assert.Equal(t, [2]uint64{7, 9}, [2]uint64{back.Cookie, uint64(back.Gen)})
}
