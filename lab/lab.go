package lab

import (
	"context"
	"encoding/json"
	"fmt"
	"net"
	"net/netip"
	"os"
	"path/filepath"
	"strconv"
	"strings"
	"syscall"
	"time"

	"github.com/vishvananda/netlink"

	"github.com/znet/znet/api"
	"github.com/znet/znet/namespaces"
)

// Config says what lab to build.
type Config struct {
	// Name is a short DNS label that prefixes every node id and namespace
	// of the lab ("" means node ids node1, node2, ... and namespaces
	// lab-*).
	Name string
	// Dir holds the lab's description, and each node's state, socket and log.
	Dir string
	// Nodes is how many nodes to run.
	Nodes int
	// Znetd is the znetd binary.
	Znetd string
	// Wireguard is passed to znetd --wireguard (default "auto").
	Wireguard string
	// UnderlayMTU is the MTU of the simulated internet: the internet
	// bridge and both ends of every node's veth into it (0: the kernel's
	// default, 1500). A smaller one plays a cloud VPC (1460) or a tunnel.
	UnderlayMTU int
	// AllowImportedKeys starts every znetd with --allow-imported-keys, so
	// the nodes accept zos network workloads.
	AllowImportedKeys bool
	// MetricsPort, if not 0, makes every node's znetd serve metrics on its
	// underlay address at this TCP port (znetd --metrics).
	MetricsPort int
	// Args are more znetd flags, the same for every node
	// (e.g. --metrics-peers, --log-format json).
	Args []string
}

// Node is one simulated node.
type Node struct {
	ID string `json:"id"`
	// NetNS is the node's underlay namespace name.
	NetNS    string     `json:"netns"`
	Underlay netip.Addr `json:"underlay"`
	Socket   string     `json:"socket"`
	StateDir string     `json:"state_dir"`
	Log      string     `json:"log"`
	PIDFile  string     `json:"pid_file"`
	// Metrics is where the node's znetd serves metrics (ADDR:PORT), if
	// the lab has a MetricsPort.
	Metrics string `json:"metrics,omitempty"`
}

// Lab is a running grid, as described by DIR/lab.json.
type Lab struct {
	Name      string `json:"name"`
	Dir       string `json:"dir"`
	Internet  string `json:"internet"`
	Znetd     string `json:"znetd"`
	Wireguard string `json:"wireguard"`
	// AllowImportedKeys is Config.AllowImportedKeys, kept for restarts.
	AllowImportedKeys bool `json:"allow_imported_keys,omitempty"`
	// Args are the extra znetd flags of Config.Args.
	Args  []string `json:"args,omitempty"`
	Nodes []Node   `json:"nodes"`
	// Workloads are the names of the workload namespaces made for the lab
	// (AddWorkloadNS); Down removes them.
	Workloads []string `json:"workloads,omitempty"`
	// UnderlayMTU is Config.UnderlayMTU (0: the kernel's default).
	UnderlayMTU int `json:"underlay_mtu,omitempty"`
}

const (
	bridgeName = "inet0"
	// underlayLink is each node's link into the internet bridge.
	underlayLink = "eth0"
	maxNodes     = 200
	descFile     = "lab.json"
	underlayNet  = "198.18.0.0/24"
)

// Bounds of Config.UnderlayMTU: IPv4's minimum datagram size (so a test can
// make the overlay's 1280 floor matter) to jumbo frames.
const (
	minUnderlayMTU = 576
	maxUnderlayMTU = 9000
)

// UnderlayPrefix is the lab's underlay subnet inside its own internet
// namespace.
var UnderlayPrefix = netip.MustParsePrefix(underlayNet)

func (c Config) prefix() string {
	if c.Name == "" {
		return "lab-"
	}
	return c.Name + "-"
}

func (c Config) nodeID(i int) string {
	if c.Name == "" {
		return fmt.Sprintf("node%d", i)
	}
	return fmt.Sprintf("%s-n%d", c.Name, i)
}

// Up builds the lab or completes one built before (it is idempotent:
// running nodes are kept, missing ones are added and started).
func Up(ctx context.Context, c Config) (*Lab, error) {
	if c.Nodes < 1 || c.Nodes > maxNodes {
		return nil, fmt.Errorf("nodes: %d is not in 1..%d", c.Nodes, maxNodes)
	}
	if c.Wireguard == "" {
		c.Wireguard = "auto"
	}
	if c.UnderlayMTU != 0 && (c.UnderlayMTU < minUnderlayMTU || c.UnderlayMTU > maxUnderlayMTU) {
		return nil, fmt.Errorf("underlay mtu: %d is not in %d..%d", c.UnderlayMTU, minUnderlayMTU, maxUnderlayMTU)
	}
	dir, err := filepath.Abs(c.Dir)
	if err != nil {
		return nil, err
	}
	if c.MetricsPort < 0 || c.MetricsPort > 65535 {
		return nil, fmt.Errorf("metrics port: %d is not a TCP port", c.MetricsPort)
	}
	l := &Lab{Name: c.Name, Dir: dir, Internet: c.prefix() + "inet", Znetd: c.Znetd, Wireguard: c.Wireguard, UnderlayMTU: c.UnderlayMTU,
		AllowImportedKeys: c.AllowImportedKeys, Args: c.Args}
	if old, err := Load(dir); err == nil {
		if len(old.Nodes) > c.Nodes {
			return nil, fmt.Errorf("nodes: the lab in %s has %d nodes; take it down first to shrink it", dir, len(old.Nodes))
		}
		if old.Name != c.Name {
			return nil, fmt.Errorf("name: the lab in %s is named %q; take it down first to rename it", dir, old.Name)
		}
		if old.UnderlayMTU != c.UnderlayMTU {
			return nil, fmt.Errorf("underlay mtu: the lab in %s has %d; take it down first to change it", dir, old.UnderlayMTU)
		}
		l.Workloads = old.Workloads
	}
	if err := os.MkdirAll(dir, 0o700); err != nil {
		return nil, err
	}
	if err := ensureInternet(l.Internet, c.UnderlayMTU); err != nil {
		return nil, err
	}
	for i := 1; i <= c.Nodes; i++ {
		n := Node{
			ID:       c.nodeID(i),
			NetNS:    fmt.Sprintf("%sn%d", c.prefix(), i),
			Underlay: netip.AddrFrom4([4]byte{198, 18, 0, byte(i)}),
		}
		nodeDir := filepath.Join(dir, n.ID)
		n.Socket = filepath.Join(nodeDir, "znetd.sock")
		n.StateDir = filepath.Join(nodeDir, "state")
		n.Log = filepath.Join(nodeDir, "znetd.log")
		n.PIDFile = filepath.Join(nodeDir, "znetd.pid")
		if c.MetricsPort != 0 {
			n.Metrics = netip.AddrPortFrom(n.Underlay, uint16(c.MetricsPort)).String()
		}
		if err := os.MkdirAll(nodeDir, 0o700); err != nil {
			return nil, err
		}
		if err := ensureNodeNet(l.Internet, n, i, c.UnderlayMTU); err != nil {
			return nil, fmt.Errorf("node %s: %w", n.ID, err)
		}
		l.Nodes = append(l.Nodes, n)
	}
	if err := pinNeighbours(l.Nodes); err != nil {
		return nil, err
	}
	if err := l.save(); err != nil {
		return nil, err
	}
	for _, n := range l.Nodes {
		if err := l.StartNode(ctx, n); err != nil {
			return nil, fmt.Errorf("node %s: %w", n.ID, err)
		}
	}
	return l, nil
}

// Load reads the lab described in dir.
func Load(dir string) (*Lab, error) {
	b, err := os.ReadFile(filepath.Join(dir, descFile))
	if err != nil {
		return nil, err
	}
	var l Lab
	if err := json.Unmarshal(b, &l); err != nil {
		return nil, fmt.Errorf("reading %s: %w", filepath.Join(dir, descFile), err)
	}
	return &l, nil
}

func (l *Lab) save() error {
	b, err := json.MarshalIndent(l, "", "  ")
	if err != nil {
		return err
	}
	return os.WriteFile(filepath.Join(l.Dir, descFile), b, 0o600)
}

// Prefix returns what every namespace of the lab starts with: "lab-", or
// the lab's name and "-".
func (l *Lab) Prefix() string { return Config{Name: l.Name}.prefix() }

// Node returns the node with id.
func (l *Lab) Node(id string) (Node, bool) {
	for _, n := range l.Nodes {
		if n.ID == id {
			return n, true
		}
	}
	return Node{}, false
}

// Client returns an API client for node n.
func (n Node) Client() *api.Client { return api.NewClient(n.Socket) }

func ensureInternet(name string, mtu int) error {
	if err := namespaces.Create(name); err != nil {
		return err
	}
	return withHandle(name, func(h *netlink.Handle) error {
		if lo, err := h.LinkByName("lo"); err == nil {
			if err := h.LinkSetUp(lo); err != nil {
				return fmt.Errorf("setting lo up: %w", err)
			}
		}
		br, err := h.LinkByName(bridgeName)
		if err != nil {
			if err := h.LinkAdd(&netlink.Bridge{LinkAttrs: netlink.LinkAttrs{Name: bridgeName}}); err != nil {
				return fmt.Errorf("adding bridge: %w", err)
			}
			if br, err = h.LinkByName(bridgeName); err != nil {
				return err
			}
		}
		if err := setMTU(h, br, mtu); err != nil {
			return err
		}
		return h.LinkSetUp(br)
	})
}

// ensureNodeNet makes node n's namespace and its veth into the internet
// bridge, with its underlay address and MTU (0: leave it).
func ensureNodeNet(internet string, n Node, i int, mtu int) error {
	if err := namespaces.Create(n.NetNS); err != nil {
		return err
	}
	inner := underlayLink
	outer := fmt.Sprintf("u%d", i)
	inetNS, err := namespaces.Open(internet)
	if err != nil {
		return err
	}
	defer func() { _ = inetNS.Close() }()
	return withHandle(n.NetNS, func(h *netlink.Handle) error {
		if lo, err := h.LinkByName("lo"); err == nil {
			if err := h.LinkSetUp(lo); err != nil {
				return fmt.Errorf("setting lo up: %w", err)
			}
		}
		link, err := h.LinkByName(inner)
		if err != nil {
			veth := &netlink.Veth{LinkAttrs: netlink.LinkAttrs{Name: inner}, PeerName: outer, PeerNamespace: netlink.NsFd(inetNS)}
			if err := h.LinkAdd(veth); err != nil {
				return fmt.Errorf("adding veth: %w", err)
			}
			if link, err = h.LinkByName(inner); err != nil {
				return err
			}
		}
		if err := setMTU(h, link, mtu); err != nil {
			return err
		}
		addr := &netlink.Addr{IPNet: &net.IPNet{IP: n.Underlay.AsSlice(), Mask: net.CIDRMask(UnderlayPrefix.Bits(), 32)}}
		if err := h.AddrReplace(link, addr); err != nil {
			return fmt.Errorf("underlay address: %w", err)
		}
		if err := h.LinkSetUp(link); err != nil {
			return err
		}
		return withHandle(internet, func(ih *netlink.Handle) error {
			port, err := ih.LinkByName(outer)
			if err != nil {
				return err
			}
			br, err := ih.LinkByName(bridgeName)
			if err != nil {
				return err
			}
			if err := setMTU(ih, port, mtu); err != nil {
				return err
			}
			if err := ih.LinkSetMaster(port, br); err != nil {
				return err
			}
			return ih.LinkSetUp(port)
		})
	})
}

// setMTU sets link's MTU to mtu unless mtu is 0 or the link has it.
func setMTU(h *netlink.Handle, link netlink.Link, mtu int) error {
	if mtu == 0 || link.Attrs().MTU == mtu {
		return nil
	}
	if err := h.LinkSetMTU(link, mtu); err != nil {
		return fmt.Errorf("setting %s mtu %d: %w", link.Attrs().Name, mtu, err)
	}
	return nil
}

func withHandle(ns string, fn func(*netlink.Handle) error) error {
	h, err := namespaces.Open(ns)
	if err != nil {
		return err
	}
	defer func() { _ = h.Close() }()
	nh, err := netlink.NewHandleAt(h)
	if err != nil {
		return err
	}
	defer nh.Close()
	return fn(nh)
}

// PID returns the pid of node n's znetd if it runs, else 0.
func (n Node) PID() int {
	b, err := os.ReadFile(n.PIDFile)
	if err != nil {
		return 0
	}
	pid, err := strconv.Atoi(strings.TrimSpace(string(b)))
	if err != nil || !isZnetd(pid, n.Socket) {
		return 0
	}
	return pid
}

// isZnetd reports whether pid is a znetd serving socket (so a recycled pid
// is never signalled).
func isZnetd(pid int, socket string) bool {
	b, err := os.ReadFile(fmt.Sprintf("/proc/%d/cmdline", pid))
	if err != nil {
		return false
	}
	args := strings.Split(string(b), "\x00")
	return len(args) > 0 && strings.HasSuffix(args[0], "znetd") && strings.Contains(string(b), "\x00"+socket+"\x00")
}

// waitSocket waits until the node's API answers.
func waitSocket(ctx context.Context, n Node, pid int) error {
	ctx, cancel := context.WithTimeout(ctx, 30*time.Second)
	defer cancel()
	c := n.Client()
	for {
		if _, err := c.Networks(ctx); err == nil {
			return nil
		}
		if syscall.Kill(pid, 0) != nil {
			return fmt.Errorf("znetd exited; see %s", n.Log)
		}
		select {
		case <-ctx.Done():
			return fmt.Errorf("znetd did not answer on %s; see %s", n.Socket, n.Log)
		case <-time.After(20 * time.Millisecond):
		}
	}
}
