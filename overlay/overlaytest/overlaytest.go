package overlaytest

import (
	"context"
	"errors"
	"fmt"
	"net"
	"slices"
	"sort"
	"sync"

	"golang.zx2c4.com/wireguard/wgctrl/wgtypes"

	"github.com/znet/znet/overlay"
)

// The operations a Call records, as in the names of overlay.Backend's
// methods.
const (
	OpEnsure    = "Ensure"
	OpDelete    = "Delete"
	OpConfigure = "Configure"
	OpShow      = "Show"
)

// Call is one recorded call of a Backend method.
type Call struct {
	Op     string
	Device overlay.Device
	// Config is a copy of the config given to Configure; nil otherwise.
	Config *wgtypes.Config
}

// Backend is a fake overlay.Backend that keeps devices in memory. It is
// safe for concurrent use. The zero value is not usable; call New.
type Backend struct {
	kind string

	mu      sync.Mutex
	devices map[string]*device // by ifname
	calls   []Call
	fail    map[string][]error // op -> errors for the next calls
	nextPID int
	drops   map[string]overlay.SendDrops // by ifname
}

type device struct {
	dev  overlay.Device
	pid  int
	wg   wgtypes.Device
	gone chan struct{} // closed when the device is removed
}

// CrashReason is what Wait says of a device removed by Crash.
const CrashReason = "killed by signal 9 (killed)"

var _ overlay.Backend = (*Backend)(nil)

// New returns an empty fake whose Kind is kind ("userspace" if empty).
// Devices get pids from 1000 upwards, or 0 when kind is "kernel".
func New(kind string) *Backend {
	if kind == "" {
		kind = "userspace"
	}
	return &Backend{kind: kind, devices: map[string]*device{}, fail: map[string][]error{}, nextPID: 1000}
}

// Kind returns the kind given to New.
func (b *Backend) Kind() string { return b.kind }

// Close does nothing; like the real backends it leaves devices as they are.
func (b *Backend) Close() error { return nil }

// FailNext makes the next call of op (OpEnsure, ...) return err without
// doing anything. Several calls queue up in order.
func (b *Backend) FailNext(op string, err error) {
	b.mu.Lock()
	defer b.mu.Unlock()
	b.fail[op] = append(b.fail[op], err)
}

// Calls returns the calls made so far, oldest first.
func (b *Backend) Calls() []Call {
	b.mu.Lock()
	defer b.mu.Unlock()
	return slices.Clone(b.calls)
}

// Ops returns the recorded calls as "Op ifname" strings, handy to compare.
func (b *Backend) Ops() []string {
	b.mu.Lock()
	defer b.mu.Unlock()
	out := make([]string, len(b.calls))
	for i, c := range b.calls {
		out[i] = c.Op + " " + c.Device.IfName
	}
	return out
}

// ResetCalls forgets the recorded calls.
func (b *Backend) ResetCalls() {
	b.mu.Lock()
	defer b.mu.Unlock()
	b.calls = nil
}

// IfNames returns the names of the existing devices, sorted.
func (b *Backend) IfNames() []string {
	b.mu.Lock()
	defer b.mu.Unlock()
	names := make([]string, 0, len(b.devices))
	for n := range b.devices {
		names = append(names, n)
	}
	sort.Strings(names)
	return names
}

// Crash makes the device ifname vanish as if its data plane died: the next
// Ensure creates a fresh, unconfigured one with a new pid.
func (b *Backend) Crash(ifname string) {
	b.mu.Lock()
	defer b.mu.Unlock()
	b.removeLocked(ifname)
}

// removeLocked deletes the device ifname and wakes its Waits.
func (b *Backend) removeLocked(ifname string) {
	if dev, ok := b.devices[ifname]; ok {
		close(dev.gone)
		delete(b.devices, ifname)
	}
}

// Wait blocks until the device with pid is removed (Crash, Delete) and
// returns CrashReason, or until ctx ends; kernel fakes return
// overlay.ErrNoProcess.
func (b *Backend) Wait(ctx context.Context, d overlay.Device, pid int) (string, error) {
	if b.kind == "kernel" {
		return "", overlay.ErrNoProcess
	}
	b.mu.Lock()
	dev, ok := b.devices[d.IfName]
	b.mu.Unlock()
	if !ok || dev.pid != pid {
		return CrashReason, nil
	}
	select {
	case <-dev.gone:
		return CrashReason, nil
	case <-ctx.Done():
		return "", ctx.Err()
	}
}

// recordLocked notes a call and returns the error queued for op, if any.
func (b *Backend) recordLocked(op string, d overlay.Device, cfg *wgtypes.Config) error {
	c := Call{Op: op, Device: d}
	if cfg != nil {
		cp := copyConfig(*cfg)
		c.Config = &cp
	}
	b.calls = append(b.calls, c)
	if q := b.fail[op]; len(q) > 0 {
		b.fail[op] = q[1:]
		return q[0]
	}
	return nil
}

// Ensure creates d if it does not exist and returns its pid; an existing
// device is adopted unchanged.
func (b *Backend) Ensure(ctx context.Context, d overlay.Device) (int, error) {
	b.mu.Lock()
	defer b.mu.Unlock()
	if err := b.recordLocked(OpEnsure, d, nil); err != nil {
		return 0, err
	}
	if d.IfName == "" || d.NetNS == "" {
		return 0, fmt.Errorf("ensuring %q: bad device", d.IfName)
	}
	if dev, ok := b.devices[d.IfName]; ok {
		return dev.pid, nil
	}
	dev := &device{dev: d, wg: wgtypes.Device{Name: d.IfName, Type: wgtypes.Userspace}, gone: make(chan struct{})}
	if b.kind == "kernel" {
		dev.wg.Type = wgtypes.LinuxKernel
	} else {
		dev.pid = b.nextPID
		b.nextPID++
		dev.wg.ListenPort = d.ListenPort // a data plane binds it at start
	}
	b.devices[d.IfName] = dev
	return dev.pid, nil
}

// Delete removes d; a missing device is fine.
func (b *Backend) Delete(ctx context.Context, d overlay.Device) error {
	b.mu.Lock()
	defer b.mu.Unlock()
	if err := b.recordLocked(OpDelete, d, nil); err != nil {
		return err
	}
	b.removeLocked(d.IfName)
	return nil
}

// SetSendDrops makes SendDrops of device ifname return drops.
func (b *Backend) SetSendDrops(ifname string, drops overlay.SendDrops) {
	b.mu.Lock()
	defer b.mu.Unlock()
	if b.drops == nil {
		b.drops = map[string]overlay.SendDrops{}
	}
	b.drops[ifname] = drops
}

// SendDrops implements overlay.Backend: what SetSendDrops set, else zero.
func (b *Backend) SendDrops(d overlay.Device) (overlay.SendDrops, error) {
	b.mu.Lock()
	defer b.mu.Unlock()
	return b.drops[d.IfName], nil
}

// PID returns d's pid, 0 when it does not exist.
func (b *Backend) PID(d overlay.Device) int {
	b.mu.Lock()
	defer b.mu.Unlock()
	if dev, ok := b.devices[d.IfName]; ok {
		return dev.pid
	}
	return 0
}

// Configure applies cfg as wgctrl would: private key (and the public key
// derived from it), listen port, firewall mark and per-peer changes with
// Remove, UpdateOnly and ReplaceAllowedIPs. ReplacePeers is refused with
// overlay.ErrReplacePeers, a missing device gives overlay.ErrNotFound.
func (b *Backend) Configure(ctx context.Context, d overlay.Device, cfg wgtypes.Config) error {
	b.mu.Lock()
	defer b.mu.Unlock()
	if err := b.recordLocked(OpConfigure, d, &cfg); err != nil {
		return err
	}
	if cfg.ReplacePeers {
		return fmt.Errorf("configuring %s: %w", d.IfName, overlay.ErrReplacePeers)
	}
	dev, ok := b.devices[d.IfName]
	if !ok {
		return fmt.Errorf("configuring %s: %w", d.IfName, overlay.ErrNotFound)
	}
	for _, p := range cfg.Peers {
		if p.PublicKey == (wgtypes.Key{}) {
			return errors.New("configuring " + d.IfName + ": peer without public key")
		}
	}
	w := &dev.wg
	if cfg.PrivateKey != nil {
		w.PrivateKey = *cfg.PrivateKey
		w.PublicKey = cfg.PrivateKey.PublicKey()
	}
	if cfg.ListenPort != nil {
		w.ListenPort = *cfg.ListenPort
	}
	if cfg.FirewallMark != nil {
		w.FirewallMark = *cfg.FirewallMark
	}
	for _, pc := range cfg.Peers {
		i := slices.IndexFunc(w.Peers, func(p wgtypes.Peer) bool { return p.PublicKey == pc.PublicKey })
		switch {
		case pc.Remove:
			if i >= 0 {
				w.Peers = slices.Delete(w.Peers, i, i+1)
			}
			continue
		case i < 0 && pc.UpdateOnly:
			continue
		case i < 0:
			w.Peers = append(w.Peers, wgtypes.Peer{PublicKey: pc.PublicKey, ProtocolVersion: 1})
			i = len(w.Peers) - 1
		}
		p := &w.Peers[i]
		if pc.PresharedKey != nil {
			p.PresharedKey = *pc.PresharedKey
		}
		if pc.Endpoint != nil {
			e := *pc.Endpoint
			e.IP = slices.Clone(e.IP)
			p.Endpoint = &e
		}
		if pc.PersistentKeepaliveInterval != nil {
			p.PersistentKeepaliveInterval = *pc.PersistentKeepaliveInterval
		}
		if pc.ReplaceAllowedIPs {
			p.AllowedIPs = nil
		}
		p.AllowedIPs = append(p.AllowedIPs, copyIPNets(pc.AllowedIPs)...)
	}
	return nil
}

// Show returns a copy of d's state; a missing device gives
// overlay.ErrNotFound.
func (b *Backend) Show(ctx context.Context, d overlay.Device) (*wgtypes.Device, error) {
	b.mu.Lock()
	defer b.mu.Unlock()
	if err := b.recordLocked(OpShow, d, nil); err != nil {
		return nil, err
	}
	dev, ok := b.devices[d.IfName]
	if !ok {
		return nil, fmt.Errorf("reading %s: %w", d.IfName, overlay.ErrNotFound)
	}
	cp := dev.wg
	cp.Peers = make([]wgtypes.Peer, len(dev.wg.Peers))
	for i, p := range dev.wg.Peers {
		p.AllowedIPs = copyIPNets(p.AllowedIPs)
		if p.Endpoint != nil {
			e := *p.Endpoint
			e.IP = slices.Clone(e.IP)
			p.Endpoint = &e
		}
		cp.Peers[i] = p
	}
	return &cp, nil
}

func copyIPNets(ns []net.IPNet) []net.IPNet {
	out := make([]net.IPNet, len(ns))
	for i, n := range ns {
		out[i] = net.IPNet{IP: slices.Clone(n.IP), Mask: slices.Clone(n.Mask)}
	}
	return out
}

func copyConfig(c wgtypes.Config) wgtypes.Config {
	c.Peers = slices.Clone(c.Peers)
	for i := range c.Peers {
		c.Peers[i].AllowedIPs = copyIPNets(c.Peers[i].AllowedIPs)
	}
	return c
}
