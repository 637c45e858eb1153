package spec

import (
	"encoding/json"
	"fmt"
	"net/netip"
	"strconv"

	"github.com/znet/znet/internal/strictjson"
)

// wireSpec is the document as it arrives, prefixes still as text so that a
// bad one can be reported against its own field.
type wireSpec struct {
	Name       string
	Generation uint64
	IPRange    string
	IPv6Range  string
	MTU        int
	Egress     bool
	Nodes      []wireNode
}

type wireNode struct {
	ID          string
	Subnet      string
	PublicKey   string
	Endpoint    string
	AllowedIPs  []string
	LinkAddress string
}

// Parse parses a JSON spec strictly and only parses: it fills in no
// defaults and does not validate, which is the service's job (see
// Validate), so a spec is checked in one place for the node that applies
// it.
//
// Unknown or repeated fields, values of the wrong JSON type, malformed or
// truncated JSON, data after the object, documents larger than MaxSize and
// prefixes or addresses that do not parse are all refused. Every error it
// returns is a *FieldError.
func Parse(data []byte) (*Spec, error) {
	w, err := decodeWire(data)
	if err != nil {
		return nil, err
	}
	return w.toSpec()
}

// Decode parses a JSON spec (see Parse), fills in defaults (see
// SetDefaults) and validates the result for the node self (see Validate).
// Every error it returns is a *FieldError: problems of JSON syntax and
// types come first, then a prefix that does not parse, then the first
// problem Validate finds.
func Decode(data []byte, self string) (*Spec, error) {
	s, err := Parse(data)
	if err != nil {
		return nil, err
	}
	s.SetDefaults()
	if err := s.Validate(self); err != nil {
		return nil, err
	}
	return s, nil
}

func decodeWire(data []byte) (*wireSpec, error) {
	var w wireSpec
	notObject := func(k string) error { return fieldErr("", "must be a JSON object, not %s", k) }
	err := strictjson.DocumentFields(data, MaxSize, fail, notObject, func(key, path string, val json.RawMessage) error {
		switch key {
		case "name":
			return strictjson.String(val, path, fail, &w.Name)
		case "generation":
			n, err := strictjson.Number(val, path, fail)
			if err != nil {
				return err
			}
			if w.Generation, err = strconv.ParseUint(n, 10, 64); err != nil {
				return fieldErr(path, "must be a whole number between 1 and %d, not %s", uint64(1<<64-1), n)
			}
			return nil
		case "ip_range":
			return strictjson.String(val, path, fail, &w.IPRange)
		case "ipv6_range":
			return strictjson.String(val, path, fail, &w.IPv6Range)
		case "mtu":
			n, err := strictjson.Number(val, path, fail)
			if err != nil {
				return err
			}
			mtu, err := strconv.ParseInt(n, 10, 0)
			if err != nil {
				return fieldErr(path, "must be a whole number between %d and %d, not %s", MinMTU, MaxMTU, n)
			}
			w.MTU = int(mtu)
			return nil
		case "egress":
			if k := strictjson.Kind(val); k != "a boolean" {
				return fieldErr(path, "must be true or false, not %s", k)
			}
			w.Egress = string(val) == "true"
			return nil
		case "nodes":
			return decodeNodes(val, path, &w.Nodes)
		}
		return fieldErr(path, "unknown field")
	})
	if err != nil {
		return nil, err
	}
	return &w, nil
}

// nodeTexts are a node's members that are strings, for TextObjects: a
// spec has thousands of them.
var nodeTexts = []strictjson.TextField[wireNode]{
	{Key: "id", To: func(n *wireNode) *string { return &n.ID }},
	{Key: "subnet", To: func(n *wireNode) *string { return &n.Subnet }},
	{Key: "public_key", To: func(n *wireNode) *string { return &n.PublicKey }},
	{Key: "endpoint", To: func(n *wireNode) *string { return &n.Endpoint }},
	{Key: "link_address", To: func(n *wireNode) *string { return &n.LinkAddress }},
}

func decodeNodes(raw json.RawMessage, path string, out *[]wireNode) error {
	nodes, err := strictjson.TextObjects(raw, path, fail, nodeTexts, func(n *wireNode) strictjson.FieldFunc {
		return func(key, path string, val json.RawMessage) error {
			if key == "allowed_ips" {
				return strictjson.Strings(val, path, fail, &n.AllowedIPs)
			}
			return fieldErr(path, "unknown field")
		}
	})
	*out = nodes
	return err
}

// toSpec parses the prefixes, naming the field of the first bad one.
func (w *wireSpec) toSpec() (*Spec, error) {
	s := &Spec{Name: w.Name, Generation: w.Generation, MTU: w.MTU, Egress: w.Egress}
	var err error
	if s.IPRange, err = parsePrefix(w.IPRange, "ip_range"); err != nil {
		return nil, err
	}
	if s.IPv6Range, err = parsePrefix(w.IPv6Range, "ipv6_range"); err != nil {
		return nil, err
	}
	if w.Nodes != nil {
		s.Nodes = make([]Node, len(w.Nodes))
	}
	for i, n := range w.Nodes {
		s.Nodes[i] = Node{ID: n.ID, PublicKey: n.PublicKey, Endpoint: n.Endpoint}
		if err := n.parseExtension(&s.Nodes[i], i); err != nil {
			return nil, err
		}
		if n.Subnet == "" {
			continue
		}
		// The path is made only for an error: a thousand members are common.
		if s.Nodes[i].Subnet, err = netip.ParsePrefix(n.Subnet); err != nil {
			_, err = parsePrefix(n.Subnet, fmt.Sprintf("nodes[%d].subnet", i))
			return nil, err
		}
	}
	return s, nil
}

// parseExtension parses the verbatim allowed IPs and the link address of
// member i (see Node.AllowedIPs and Node.LinkAddress).
func (w *wireNode) parseExtension(n *Node, i int) error {
	for j, text := range w.AllowedIPs {
		p, err := parsePrefix(text, fmt.Sprintf("nodes[%d].allowed_ips[%d]", i, j))
		if err != nil {
			return err
		}
		if !p.IsValid() {
			return fieldErr(fmt.Sprintf("nodes[%d].allowed_ips[%d]", i, j), "must not be empty")
		}
		n.AllowedIPs = append(n.AllowedIPs, p)
	}
	if w.LinkAddress != "" {
		a, err := netip.ParseAddr(w.LinkAddress)
		if err != nil {
			return fieldErr(fmt.Sprintf("nodes[%d].link_address", i), "%q is not an IP address", w.LinkAddress)
		}
		n.LinkAddress = a
	}
	return nil
}

// parsePrefix parses a CIDR prefix; the empty string gives the zero Prefix,
// which Validate reports as missing where a prefix is required.
func parsePrefix(text, path string) (netip.Prefix, error) {
	if text == "" {
		return netip.Prefix{}, nil
	}
	p, err := netip.ParsePrefix(text)
	if err != nil {
		return netip.Prefix{}, fieldErr(path, "%q is not a CIDR prefix (like 10.20.0.0/16)", text)
	}
	return p, nil
}

// fail is Invalid, as spec's decoders call it.
var fail = Invalid
