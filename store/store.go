package store

import (
	"bytes"
	"encoding/json"
	"errors"
	"fmt"
	"net/netip"
	"os"
	"path/filepath"
	"sort"
	"strconv"
	"time"

	bolt "go.etcd.io/bbolt"
	bolterrors "go.etcd.io/bbolt/errors"

	"github.com/znet/znet/ipam"
	"github.com/znet/znet/namespaces"
	"github.com/znet/znet/spec"
)

// ErrNotFound is returned by Tx getters when the object does not exist.
var ErrNotFound = errors.New("not found")

var (
	bucketMeta      = []byte("meta")
	bucketNetworks  = []byte("networks")
	bucketWorkloads = []byte("workloads")
	bucketAccess    = []byte("access")
	// bucketPorts indexes networks' listen ports (name -> decimal port);
	// Open rebuilds it from bucketNetworks.
	bucketPorts = []byte("ports")
	keyNodeID   = []byte("node_id")
)

// Network is what a node keeps about one network.
type Network struct {
	Name string `json:"name"`
	// PrivateKey is the node's WireGuard key for this network (base64). It
	// never leaves the node.
	PrivateKey string `json:"private_key"`
	PublicKey  string `json:"public_key"`
	ListenPort int    `json:"listen_port"`
	// Spec is the last spec applied successfully; nil while only reserved.
	Spec *spec.Spec `json:"spec,omitempty"`
	// Addrs hands out this node's addresses in the network; nil until applied.
	Addrs *ipam.Allocator `json:"addrs,omitempty"`
	// Zos says which zos workload the network realizes; nil for a network
	// made with a spec. Its key and port were imported from the workload.
	Zos *ZosOrigin `json:"zos,omitempty"`
}

// ZosOrigin names the zos network workload a network realizes.
type ZosOrigin struct {
	Twin    uint32 `json:"twin"`
	Name    string `json:"name"`
	Version uint64 `json:"version"`
}

// Workload is one attached workload.
type Workload struct {
	Network string `json:"network"`
	Name    string `json:"name"`
	NetNS   string `json:"netns"`
	// IfName is the interface inside the workload's namespace.
	IfName string `json:"ifname"`
	// HostIf is the veth end on the network's bridge.
	HostIf string     `json:"host_if"`
	IPv4   netip.Addr `json:"ipv4"`
	IPv6   netip.Addr `json:"ipv6"`
	// ResolvConf is the resolv.conf file znetd wrote for it ("" if none).
	ResolvConf string `json:"resolv_conf,omitempty"`
	// NetNSID is the identity of the namespace NetNS named at attach: a
	// repair plumbs only into that namespace, never into whatever the path
	// names later. Zero for workloads attached before it was recorded.
	NetNSID namespaces.Identity `json:"netns_id"`
	// State is "" while the workload is attached; a repair that found its
	// namespace gone or replaced records why it did not plumb it
	// (api.StateNetNSGone, api.StateNetNSReplaced).
	State string `json:"state,omitempty"`
	// Kind is "tap" for a VM's NIC; "" (or "netns") for a veth. A tap's
	// NetNS is the network's namespace, and IfName and HostIf its name.
	Kind string `json:"kind,omitempty"`
	// MAC is the address the workload's port is pinned to ("" in state
	// written before ports were pinned, until recovery records it).
	MAC string `json:"mac,omitempty"`
	// Queues is a tap's number of queues.
	Queues int `json:"queues,omitempty"`
}

// Store is a node's state file. It is safe for concurrent use.
type Store struct {
	db      *bolt.DB
	records recordCache
}

// Open opens (or creates) the state file in dir. A second process opening
// the same dir fails after a short wait instead of sharing it.
func Open(dir string) (*Store, error) {
	if err := os.MkdirAll(dir, 0o700); err != nil {
		return nil, fmt.Errorf("creating state dir: %w", err)
	}
	path := filepath.Join(dir, "state.db")
	db, err := bolt.Open(path, 0o600, &bolt.Options{Timeout: 2 * time.Second})
	if err != nil {
		if errors.Is(err, bolterrors.ErrTimeout) {
			return nil, fmt.Errorf("opening %s: another znetd holds it", path)
		}
		return nil, fmt.Errorf("opening %s: %w", path, err)
	}
	err = db.Update(func(tx *bolt.Tx) error {
		for _, b := range [][]byte{bucketMeta, bucketNetworks, bucketWorkloads, bucketAccess} {
			if _, err := tx.CreateBucketIfNotExists(b); err != nil {
				return err
			}
		}
		return indexPorts(tx)
	})
	if err != nil {
		_ = db.Close()
		return nil, fmt.Errorf("initialising %s: %w", path, err)
	}
	return &Store{db: db}, nil
}

// Close closes the file.
func (s *Store) Close() error { return s.db.Close() }

// View runs fn in a read-only transaction.
func (s *Store) View(fn func(*Tx) error) error {
	return s.db.View(func(tx *bolt.Tx) error { return fn(&Tx{tx, &s.records}) })
}

// Update runs fn in a read-write transaction; an error from fn rolls back
// every change fn made.
func (s *Store) Update(fn func(*Tx) error) error {
	return s.db.Update(func(tx *bolt.Tx) error { return fn(&Tx{tx, &s.records}) })
}

// Tx is one transaction.
type Tx struct {
	tx      *bolt.Tx
	records *recordCache
}

// NodeID returns the node id recorded at first start ("" if none).
func (t *Tx) NodeID() string {
	return string(t.tx.Bucket(bucketMeta).Get(keyNodeID))
}

// SetNodeID records the node id.
func (t *Tx) SetNodeID(id string) error {
	return t.tx.Bucket(bucketMeta).Put(keyNodeID, []byte(id))
}

// Network returns the named network or ErrNotFound.
func (t *Tx) Network(name string) (*Network, error) {
	v := t.tx.Bucket(bucketNetworks).Get([]byte(name))
	if v == nil {
		return nil, fmt.Errorf("network %s: %w", name, ErrNotFound)
	}
	n, err := t.records.decode(name, v)
	if err != nil {
		return nil, fmt.Errorf("decoding network %s: %w", name, err)
	}
	return n, nil
}

// Networks returns every network, sorted by name.
func (t *Tx) Networks() ([]*Network, error) {
	var out []*Network
	err := t.tx.Bucket(bucketNetworks).ForEach(func(k, v []byte) error {
		var n Network
		if err := json.Unmarshal(v, &n); err != nil {
			return fmt.Errorf("decoding network %s: %w", k, err)
		}
		out = append(out, &n)
		return nil
	})
	return out, err
}

// PutNetwork stores n.
func (t *Tx) PutNetwork(n *Network) error {
	v, at, err := encodeNetwork(n, t.records.encoded(n.Name))
	if err != nil {
		return fmt.Errorf("encoding network %s: %w", n.Name, err)
	}
	if err := t.tx.Bucket(bucketPorts).Put([]byte(n.Name), []byte(strconv.Itoa(n.ListenPort))); err != nil {
		return err
	}
	if err := t.tx.Bucket(bucketNetworks).Put([]byte(n.Name), v); err != nil {
		return err
	}
	t.records.put(n.Name, v, n, at)
	return nil
}

// DeleteNetwork removes a network and all its workloads.
func (t *Tx) DeleteNetwork(name string) error {
	wls, err := t.Workloads(name)
	if err != nil {
		return err
	}
	for _, w := range wls {
		if err := t.DeleteWorkload(name, w.Name); err != nil {
			return err
		}
	}
	acc, err := t.AccessPeers(name)
	if err != nil {
		return err
	}
	for _, a := range acc {
		if err := t.DeleteAccess(name, a.Name); err != nil {
			return err
		}
	}
	if err := t.tx.Bucket(bucketPorts).Delete([]byte(name)); err != nil {
		return err
	}
	t.records.forget(name) // harmless if the transaction rolls back: a miss
	return t.tx.Bucket(bucketNetworks).Delete([]byte(name))
}

func workloadKey(network, name string) []byte { return []byte(network + "/" + name) }

// Workload returns one workload or ErrNotFound.
func (t *Tx) Workload(network, name string) (*Workload, error) {
	v := t.tx.Bucket(bucketWorkloads).Get(workloadKey(network, name))
	if v == nil {
		return nil, fmt.Errorf("workload %s in %s: %w", name, network, ErrNotFound)
	}
	var w Workload
	if err := json.Unmarshal(v, &w); err != nil {
		return nil, fmt.Errorf("decoding workload %s: %w", name, err)
	}
	return &w, nil
}

// Workloads returns a network's workloads, sorted by name.
func (t *Tx) Workloads(network string) ([]*Workload, error) {
	var out []*Workload
	c := t.tx.Bucket(bucketWorkloads).Cursor()
	prefix := []byte(network + "/")
	for k, v := c.Seek(prefix); k != nil && hasPrefix(k, prefix); k, v = c.Next() {
		var w Workload
		if err := json.Unmarshal(v, &w); err != nil {
			return nil, fmt.Errorf("decoding workload %s: %w", k, err)
		}
		out = append(out, &w)
	}
	sort.Slice(out, func(i, j int) bool { return out[i].Name < out[j].Name })
	return out, nil
}

// PutWorkload stores w.
func (t *Tx) PutWorkload(w *Workload) error {
	v, err := json.Marshal(w)
	if err != nil {
		return fmt.Errorf("encoding workload %s: %w", w.Name, err)
	}
	return t.tx.Bucket(bucketWorkloads).Put(workloadKey(w.Network, w.Name), v)
}

// DeleteWorkload removes one workload; removing a missing one is no error.
func (t *Tx) DeleteWorkload(network, name string) error {
	return t.tx.Bucket(bucketWorkloads).Delete(workloadKey(network, name))
}

func hasPrefix(b, prefix []byte) bool {
	return len(b) >= len(prefix) && string(b[:len(prefix)]) == string(prefix)
}

// AccessPeer is a person's device allowed into a network through this node.
type AccessPeer struct {
	Network   string     `json:"network"`
	Name      string     `json:"name"`
	PublicKey string     `json:"public_key"`
	IPv4      netip.Addr `json:"ipv4"`
	IPv6      netip.Addr `json:"ipv6"`
}

// AccessPeers returns a network's access peers, sorted by name.
func (t *Tx) AccessPeers(network string) ([]*AccessPeer, error) {
	var out []*AccessPeer
	c := t.tx.Bucket(bucketAccess).Cursor()
	prefix := []byte(network + "/")
	for k, v := c.Seek(prefix); k != nil && hasPrefix(k, prefix); k, v = c.Next() {
		var a AccessPeer
		if err := json.Unmarshal(v, &a); err != nil {
			return nil, fmt.Errorf("decoding access peer %s: %w", k, err)
		}
		out = append(out, &a)
	}
	sort.Slice(out, func(i, j int) bool { return out[i].Name < out[j].Name })
	return out, nil
}

// PutAccess stores a.
func (t *Tx) PutAccess(a *AccessPeer) error {
	v, err := json.Marshal(a)
	if err != nil {
		return fmt.Errorf("encoding access peer %s: %w", a.Name, err)
	}
	return t.tx.Bucket(bucketAccess).Put(workloadKey(a.Network, a.Name), v)
}

// DeleteAccess removes one access peer; removing a missing one is no error.
func (t *Tx) DeleteAccess(network, name string) error {
	return t.tx.Bucket(bucketAccess).Delete(workloadKey(network, name))
}

// Dump renders the whole state for tests and debugging: every bucket, then
// every key and value in key order, values as stored, each quoted on a line
// of its own. Two dumps are byte-identical if and only if the states are.
// It includes the private keys: never log or send it.
func (s *Store) Dump() ([]byte, error) {
	var buf bytes.Buffer
	err := s.db.View(func(tx *bolt.Tx) error {
		return tx.ForEach(func(name []byte, b *bolt.Bucket) error {
			return dumpBucket(&buf, strconv.Quote(string(name)), b)
		})
	})
	if err != nil {
		return nil, fmt.Errorf("dumping the state: %w", err)
	}
	return buf.Bytes(), nil
}

// dumpBucket writes b's keys under path, descending into nested buckets.
func dumpBucket(buf *bytes.Buffer, path string, b *bolt.Bucket) error {
	fmt.Fprintf(buf, "bucket %s\n", path)
	return b.ForEach(func(k, v []byte) error {
		if v == nil { // a nested bucket
			return dumpBucket(buf, path+"/"+strconv.Quote(string(k)), b.Bucket(k))
		}
		fmt.Fprintf(buf, "%s %s = %s\n", path, strconv.Quote(string(k)), strconv.Quote(string(v)))
		return nil
	})
}

// ListenPorts returns the UDP port every network reserved, by network
// name, from the ports index: a reservation on a node with a thousand
// networks reads them all, and decoding every spec and allocator in full
// cost that apply more than the rest of it.
func (t *Tx) ListenPorts() (map[string]int, error) {
	out := map[string]int{}
	err := t.tx.Bucket(bucketPorts).ForEach(func(k, v []byte) error {
		port, err := strconv.Atoi(string(v))
		if err != nil {
			return fmt.Errorf("decoding the port of network %s: %w", k, err)
		}
		out[string(k)] = port
		return nil
	})
	return out, err
}

// indexPorts rebuilds the ports index from the networks. Open runs it, so
// the index never outlives a state file written without it, or by hand.
func indexPorts(tx *bolt.Tx) error {
	if err := tx.DeleteBucket(bucketPorts); err != nil && !errors.Is(err, bolterrors.ErrBucketNotFound) {
		return err
	}
	ports, err := tx.CreateBucket(bucketPorts)
	if err != nil {
		return err
	}
	return tx.Bucket(bucketNetworks).ForEach(func(k, v []byte) error {
		var n Network
		if err := json.Unmarshal(v, &n); err != nil {
			return fmt.Errorf("decoding network %s: %w", k, err)
		}
		return ports.Put(k, []byte(strconv.Itoa(n.ListenPort)))
	})
}
