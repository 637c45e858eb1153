package store

import (
	"bytes"
	"encoding/json"
	"sync"

	"github.com/znet/znet/spec"
)

// specCache keeps, per network, the last spec decoded and the bytes it
// came from: every apply reads its network first, and decoding a spec of
// a thousand members with encoding/json took 1-2 ms while comparing the
// bytes and copying the spec takes a tenth of that. An entry is used only
// when the stored bytes are exactly the ones it was decoded from, so it
// can never be stale; callers get a copy they may change.
type specCache struct {
	mu     sync.Mutex
	byName map[string]cachedSpec
}

type cachedSpec struct {
	raw  []byte
	spec *spec.Spec
}

// decode returns the spec that raw, network name's stored spec, holds.
func (c *specCache) decode(name string, raw []byte) (*spec.Spec, error) {
	c.mu.Lock()
	e, ok := c.byName[name]
	c.mu.Unlock()
	if ok && bytes.Equal(e.raw, raw) {
		return e.spec.Clone(), nil
	}
	var s *spec.Spec
	if err := json.Unmarshal(raw, &s); err != nil {
		return nil, err
	}
	c.mu.Lock()
	defer c.mu.Unlock()
	if c.byName == nil {
		c.byName = map[string]cachedSpec{}
	}
	c.byName[name] = cachedSpec{raw: bytes.Clone(raw), spec: s.Clone()}
	return s, nil
}

// seed records s, the spec just stored for network name, so that the
// read that follows (the next apply's) copies it instead of decoding it:
// each apply of a changed spec read it back decoded. The entry holds the
// bytes s encodes to, which are those stored, and s as decoding them
// would give it (see decoded); a transaction rolled back leaves other
// bytes stored, which miss.
func (c *specCache) seed(name string, s *spec.Spec) {
	if s == nil {
		return
	}
	raw, err := json.Marshal(s)
	if err != nil {
		return
	}
	c.mu.Lock()
	defer c.mu.Unlock()
	if c.byName == nil {
		c.byName = map[string]cachedSpec{}
	}
	c.byName[name] = cachedSpec{raw: raw, spec: decoded(s)}
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
func (c *specCache) forget(name string) {
	c.mu.Lock()
	defer c.mu.Unlock()
	delete(c.byName, name)
}

// networkFields is Network without its methods, so that decodeNetwork can
// embed it and take the spec aside.
type networkFields Network

// decodeNetwork decodes a stored network, its spec through specs.
func decodeNetwork(name string, v []byte, specs *specCache) (*Network, error) {
	n := new(Network)
	w := struct {
		*networkFields
		Spec json.RawMessage `json:"spec,omitempty"` // shadows networkFields.Spec
	}{networkFields: (*networkFields)(n)}
	if err := json.Unmarshal(v, &w); err != nil {
		return nil, err
	}
	if len(w.Spec) == 0 || bytes.Equal(w.Spec, []byte("null")) {
		return n, nil
	}
	s, err := specs.decode(name, w.Spec)
	if err != nil {
		return nil, err
	}
	n.Spec = s
	return n, nil
}
