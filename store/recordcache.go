package store

import (
	"bytes"
	"encoding/json"
	"sync"

	"github.com/znet/znet/ipam"
	"github.com/znet/znet/spec"
)

// recordCache keeps, per network, the last record decoded or written and
// the bytes it was stored as: every apply reads its network first, and
// decoding a record whose spec has a thousand members took ~1 ms with
// encoding/json (the scan of the spec's bytes alone, to skip them, ~0.5
// ms) while comparing the bytes and copying the record takes a tenth of
// that. An entry is used only when the stored bytes are exactly the ones
// it stands for, so it can never be stale; callers get a copy they may
// change.
type recordCache struct {
	mu     sync.Mutex
	byName map[string]cachedRecord
}

// cachedRecord is a network as decoding raw gives it. Its allocator is
// kept as its JSON, which is small, and decoded for each reader: the
// allocator has no copy of its own, and its decoded state is what every
// read must see.
type cachedRecord struct {
	raw   []byte
	n     Network // without its allocator
	addrs []byte  // the allocator's JSON; nil when there is none
	// at is where each member of n.Spec is in raw (encodeNetwork); nil
	// when not known.
	at [][2]int
}

// decode returns the network that raw, network name's stored record,
// holds.
func (c *recordCache) decode(name string, raw []byte) (*Network, error) {
	c.mu.Lock()
	e, ok := c.byName[name]
	c.mu.Unlock()
	if ok && bytes.Equal(e.raw, raw) {
		return e.network()
	}
	var n Network
	if err := json.Unmarshal(raw, &n); err != nil {
		return nil, err
	}
	c.put(name, bytes.Clone(raw), &n, nil)
	return &n, nil
}

// encoded returns where network name's last record has its members, for
// encodeNetwork; nil when not known. What it returns is never modified.
func (c *recordCache) encoded(name string) *encodedNodes {
	c.mu.Lock()
	defer c.mu.Unlock()
	e, ok := c.byName[name]
	if !ok || e.at == nil || e.n.Spec == nil {
		return nil
	}
	return &encodedNodes{nodes: e.n.Spec.Nodes, raw: e.raw, at: e.at}
}

// put records n, which raw encodes (with its members at at, nil when not
// known), as decoding raw would give it (see decoded). A write puts what
// it stored, so that the read that follows (the next apply's) copies it
// instead of decoding it; a transaction rolled back leaves other bytes
// stored, which miss. A record whose allocator does not encode is left
// out.
func (c *recordCache) put(name string, raw []byte, n *Network, at [][2]int) {
	e := cachedRecord{raw: raw, n: *n, at: at}
	e.n.Addrs, e.n.Spec = nil, nil
	if n.Spec != nil {
		e.n.Spec = decoded(n.Spec)
	}
	if n.Zos != nil {
		z := *n.Zos
		e.n.Zos = &z
	}
	if n.Addrs != nil {
		a, err := json.Marshal(n.Addrs)
		if err != nil {
			return
		}
		e.addrs = a
	}
	c.mu.Lock()
	defer c.mu.Unlock()
	if c.byName == nil {
		c.byName = map[string]cachedRecord{}
	}
	c.byName[name] = e
}

// network returns a copy of e's network for a reader to change.
func (e cachedRecord) network() (*Network, error) {
	n := e.n
	if n.Spec != nil {
		n.Spec = n.Spec.Clone()
	}
	if n.Zos != nil {
		z := *n.Zos
		n.Zos = &z
	}
	if e.addrs != nil {
		n.Addrs = new(ipam.Allocator)
		if err := json.Unmarshal(e.addrs, n.Addrs); err != nil {
			return nil, err
		}
	}
	return &n, nil
}

// decoded returns a copy of s as decoding its JSON gives it: AllowedIPs
// left out (omitempty) when empty decode as nil.
func decoded(s *spec.Spec) *spec.Spec {
	c := s.Clone()
	for i := range c.Nodes {
		if len(c.Nodes[i].AllowedIPs) == 0 {
			c.Nodes[i].AllowedIPs = nil
		}
	}
	return c
}

// forget drops network name's entry (the network was deleted).
func (c *recordCache) forget(name string) {
	c.mu.Lock()
	defer c.mu.Unlock()
	delete(c.byName, name)
}
