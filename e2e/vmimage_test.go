package e2e

import (
	"bufio"
	"bytes"
	"fmt"
	"os"
	"os/exec"
	"path/filepath"
	"sort"
	"strings"
	"testing"
)

// guestModules are the modules a guest needs for its virtio NIC, in load
// order; the ones the kernel has built in are skipped.
var guestModules = []string{
	"virtio", "virtio_ring", "virtio_pci_legacy_dev", "virtio_pci_modern_dev", "virtio_pci",
	"failover", "net_failover", "virtio_net",
}

// guestKernel finds the machine's newest kernel and its module directory,
// or says why there is none.
func guestKernel() (kernel, modules string, why string) {
	kernels, _ := filepath.Glob("/boot/vmlinuz-*")
	sort.Strings(kernels)
	for i := len(kernels) - 1; i >= 0; i-- {
		version := strings.TrimPrefix(filepath.Base(kernels[i]), "vmlinuz-")
		dir := filepath.Join("/lib/modules", version)
		if _, err := os.Stat(filepath.Join(dir, "modules.dep")); err == nil {
			return kernels[i], dir, ""
		}
	}
	if len(kernels) == 0 {
		return "", "", "no kernel in /boot (make deps installs linux-image-cloud-amd64)"
	}
	return "", "", "no /lib/modules/<version>/modules.dep for " + strings.Join(kernels, ", ")
}

// moduleFiles returns the paths (relative to modDir) of the modules in
// names that modules.dep lists, in the order of names.
func moduleFiles(modDir string, names []string) ([]string, error) {
	f, err := os.Open(filepath.Join(modDir, "modules.dep"))
	if err != nil {
		return nil, err
	}
	defer func() { _ = f.Close() }()
	byName := map[string]string{}
	sc := bufio.NewScanner(f)
	sc.Buffer(make([]byte, 1<<20), 1<<20)
	for sc.Scan() {
		path, _, _ := strings.Cut(sc.Text(), ":")
		base := filepath.Base(path)
		name := base[:strings.Index(base, ".ko")]
		byName[strings.ReplaceAll(name, "-", "_")] = path
	}
	var out []string
	for _, n := range names {
		if p, ok := byName[n]; ok {
			out = append(out, p)
		}
	}
	return out, sc.Err()
}

// readModule returns a module's ELF bytes: busybox insmod hands the file
// to init_module as it is, so a compressed module is decompressed here.
func readModule(path string) ([]byte, error) {
	var tool string
	switch {
	case strings.HasSuffix(path, ".ko"):
		return os.ReadFile(path)
	case strings.HasSuffix(path, ".ko.xz"):
		tool = "xz"
	case strings.HasSuffix(path, ".ko.zst"):
		tool = "zstd"
	case strings.HasSuffix(path, ".ko.gz"):
		tool = "gzip"
	default:
		return nil, fmt.Errorf("module %s: unknown compression", path)
	}
	out, err := exec.Command(tool, "-dc", path).Output()
	if err != nil {
		return nil, fmt.Errorf("decompressing %s with %s: %w", path, tool, err)
	}
	return out, nil
}

// guestInit is the guest's /init: it loads the NIC's modules, configures
// eth0 from the kernel command line (znet.* values from the attach
// answer), says @@ready, then runs each line read from the console and
// answers @@rc and the exit code.
const guestInit = `#!/bin/busybox sh
/bin/busybox --install -s /bin
mount -t proc proc /proc
mount -t sysfs sys /sys
mount -t devtmpfs dev /dev
for m in /lib/modules/*.ko; do insmod "$m" || echo "@@insmod $m failed"; done
for kv in $(cat /proc/cmdline); do
	case "$kv" in znet.*=*) k="${kv%%=*}"; eval "${k#znet.}=\"${kv#*=}\"";; esac
done
ip link set lo up
# No duplicate address detection (busybox ip has no nodad): a tentative
# address is not used as a source for a second or two.
echo 0 > /proc/sys/net/ipv6/conf/eth0/accept_dad
ip link set eth0 mtu "$mtu" up
ip addr add "$ip4" dev eth0
ip -6 addr add "$ip6" dev eth0
[ -n "$r4" ] && ip route add "$r4" via "$gw4"
[ -n "$r6" ] && ip -6 route add "$r6" via "$gw6"
echo "nameserver $dns" > /etc/resolv.conf
echo "search $domain" >> /etc/resolv.conf
stty -echo 2>/dev/null
echo "@@ready $(cat /sys/class/net/eth0/address)"
while read -r line; do
	sh -c "$line" 2>&1
	echo "@@rc $?"
done
poweroff -f
`

// buildInitramfs writes a newc cpio archive (uncompressed, which the
// kernel takes as it is) with busybox, the init script and the modules.
func buildInitramfs(t *testing.T, modDir string) string {
	t.Helper()
	var files []cpioFile
	for _, d := range []string{"bin", "dev", "etc", "proc", "sys", "lib", "lib/modules"} {
		files = append(files, cpioFile{name: d, mode: cpioDir | 0o755})
	}
	// The kernel opens /dev/console for init before devtmpfs is mounted.
	files = append(files, cpioFile{name: "dev/console", mode: cpioChar | 0o600, major: 5, minor: 1})
	bb, err := os.ReadFile("/bin/busybox")
	if err != nil {
		t.Skipf("no /bin/busybox (apt-get install busybox-static): %v", err)
	}
	files = append(files,
		cpioFile{name: "bin/busybox", mode: cpioReg | 0o755, data: bb},
		cpioFile{name: "init", mode: cpioReg | 0o755, data: []byte(guestInit)})
	mods, err := moduleFiles(modDir, guestModules)
	if err != nil {
		t.Fatalf("reading modules.dep: %v", err)
	}
	for i, m := range mods {
		data, err := readModule(filepath.Join(modDir, m))
		if err != nil {
			t.Fatal(err)
		}
		// The init script loads them in name order.
		name := fmt.Sprintf("lib/modules/%02d-%s", i, strings.SplitN(filepath.Base(m), ".ko", 2)[0]+".ko")
		files = append(files, cpioFile{name: name, mode: cpioReg | 0o644, data: data})
	}
	var buf bytes.Buffer
	writeCpio(&buf, files)
	path := filepath.Join(t.TempDir(), "initramfs.cpio")
	if err := os.WriteFile(path, buf.Bytes(), 0o644); err != nil {
		t.Fatal(err)
	}
	return path
}

// File types of a cpio entry's mode.
const (
	cpioDir  = 0o040000
	cpioReg  = 0o100000
	cpioChar = 0o020000
)

// cpioFile is one entry of a newc archive.
type cpioFile struct {
	name         string
	mode         uint32
	major, minor uint32 // of a device node
	data         []byte
}

// writeCpio writes files as a newc ("070701") archive and its trailer.
func writeCpio(buf *bytes.Buffer, files []cpioFile) {
	files = append(files, cpioFile{name: "TRAILER!!!"})
	for i, f := range files {
		fmt.Fprintf(buf, "070701%08X%08X%08X%08X%08X%08X%08X%08X%08X%08X%08X%08X%08X",
			i+1, f.mode, 0, 0, 1, 0, len(f.data), 0, 0, f.major, f.minor, len(f.name)+1, 0)
		buf.WriteString(f.name)
		buf.WriteByte(0)
		pad4(buf)
		buf.Write(f.data)
		pad4(buf)
	}
}

// pad4 pads buf to a multiple of 4 bytes, as newc aligns every header and
// every file's data.
func pad4(buf *bytes.Buffer) {
	for buf.Len()%4 != 0 {
		buf.WriteByte(0)
	}
}
