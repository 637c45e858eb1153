package daemon

import (
	"encoding/json"
	"errors"
	"fmt"
	"os"
	"path/filepath"
	"strings"

	"golang.org/x/sys/unix"

	"github.com/znet/znet/firewall"
)

// A restart of znetd used to rebuild every network's firewall, the largest
// cost of adopting a network (a third of a recovery's CPU at a thousand
// networks). So the firewall part of realized's record is also kept on
// disk, one small file per namespace beside its ownership mark
// (<MarkDir>/firewall/<namespace>), written after each install. Recover
// loads it back, and Ensure then trusts it exactly as it trusts the memory
// of a running daemon: same namespace (netns cookie), same rules, and the
// nftables generation where that install left it, so any other change of
// the ruleset since (an operator's nft) forces a rebuild. A cookie is
// unique only within one boot, so the record also names the boot
// (/proc/sys/kernel/random/boot_id) and is ignored after a reboot. It also
// names the znetd binary that wrote it (programStamp): a new version may
// turn the same Rules into other nftables rules, so after an upgrade every
// firewall is rebuilt once. A missing, unreadable or corrupt record means a
// rebuild, as before.

// bootIDFile names the running kernel's boot.
const bootIDFile = "/proc/sys/kernel/random/boot_id"

// readBootID returns the running kernel's boot id; "" when unknown, which
// turns the records off.
func readBootID() string {
	b, err := os.ReadFile(bootIDFile)
	if err != nil {
		return ""
	}
	return strings.TrimSpace(string(b))
}

// programStamp identifies the running znetd binary by its file (device,
// inode, size, modification time): a reinstalled or rebuilt binary gets
// another stamp. "" when unknown, which turns the records off.
func programStamp() string {
	var st unix.Stat_t
	if err := unix.Stat("/proc/self/exe", &st); err != nil {
		return ""
	}
	return fmt.Sprintf("%d:%d:%d:%d.%d", st.Dev, st.Ino, st.Size, st.Mtim.Sec, st.Mtim.Nsec)
}

// fwRecord is the file form of a network's firewall.Installed.
type fwRecord struct {
	Boot    string         `json:"boot"`
	Program string         `json:"program"`
	Cookie  uint64         `json:"cookie"`
	Gen     uint32         `json:"gen"`
	Rules   firewall.Rules `json:"rules"`
}

// fwRecordPath returns where namespace name's record lives; "" when the
// daemon keeps none (no mark directory, or the boot is unknown).
func (d *Daemon) fwRecordPath(name string) string {
	if d.markDir == "" || d.bootID == "" || d.program == "" {
		return ""
	}
	return filepath.Join(d.markDir, "firewall", name)
}

// loadFirewall puts network's firewall record from disk into realized,
// when it was made during this boot; Ensure checks the rest. Called at
// Recover, before the network is realized.
func (d *Daemon) loadFirewall(network string) {
	path := d.fwRecordPath(d.nsName(network))
	if path == "" {
		return
	}
	b, err := os.ReadFile(path)
	if err != nil {
		return // none: the firewall is rebuilt
	}
	var rec fwRecord
	if err := json.Unmarshal(b, &rec); err != nil || rec.Boot != d.bootID || rec.Program != d.program || rec.Cookie == 0 {
		return
	}
	d.realized.put(network, &realizedNet{cookie: rec.Cookie, rules: &firewall.Installed{Rules: rec.Rules, Gen: rec.Gen}})
}

// saveFirewall records on disk what is installed in network's namespace
// (cookie); in nil (unknown) removes the record. A record that cannot be
// written is removed too: a stale one must not outlive a new install.
func (d *Daemon) saveFirewall(network string, cookie uint64, in *firewall.Installed) {
	path := d.fwRecordPath(d.nsName(network))
	if path == "" {
		return
	}
	if in == nil {
		d.dropFirewallRecord(d.nsName(network))
		return
	}
	b, err := json.Marshal(fwRecord{Boot: d.bootID, Program: d.program, Cookie: cookie, Gen: in.Gen, Rules: in.Rules})
	if err == nil {
		err = writeFileAtomic(path, b)
	}
	if err != nil {
		d.log.Warn("recording the firewall; the next start rebuilds it", "network", network, "err", err)
		d.dropFirewallRecord(d.nsName(network))
	}
}

// dropFirewallRecord removes namespace name's record, if any.
func (d *Daemon) dropFirewallRecord(name string) {
	path := d.fwRecordPath(name)
	if path == "" {
		return
	}
	if err := os.Remove(path); err != nil && !errors.Is(err, os.ErrNotExist) {
		d.log.Warn("removing a firewall record", "namespace", name, "err", err)
	}
}

// writeFileAtomic writes b to path through a temporary file and a rename,
// so a crash leaves the old record or the new one, never half of one.
func writeFileAtomic(path string, b []byte) error {
	if err := os.MkdirAll(filepath.Dir(path), 0o700); err != nil {
		return err
	}
	f, err := os.CreateTemp(filepath.Dir(path), ".tmp-*")
	if err != nil {
		return err
	}
	_, werr := f.Write(b)
	if cerr := f.Close(); werr == nil {
		werr = cerr
	}
	if werr == nil {
		werr = os.Rename(f.Name(), path)
	}
	if werr != nil {
		_ = os.Remove(f.Name())
	}
	return werr
}
