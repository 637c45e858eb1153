package spec

import (
	"bytes"
	"encoding/json"
	"errors"
	"fmt"
	"io"
	"net/netip"
	"strconv"
)

// wireSpec is the document as it arrives, prefixes still as text so that a
// bad one can be reported against its own field.
type wireSpec struct {
	Name       string
	Generation uint64
	IPRange    string
	IPv6Range  string
	MTU        int
	Nodes      []wireNode
}

type wireNode struct {
	ID        string
	Subnet    string
	PublicKey string
	Endpoint  string
}

// Decode parses a JSON spec strictly, fills in defaults (see SetDefaults) and
// validates the result for the node self (see Validate).
//
// Unknown or repeated fields, values of the wrong JSON type, malformed or
// truncated JSON, data after the object and documents larger than MaxSize are
// all refused. Every error it returns is a *FieldError: problems of JSON
// syntax and types come first, then a prefix that does not parse, then the
// first problem Validate finds.
func Decode(data []byte, self string) (*Spec, error) {
	if len(data) > MaxSize {
		return nil, fieldErr("", "document is %d bytes, larger than the limit of %d", len(data), MaxSize)
	}
	raw, err := splitDocument(data)
	if err != nil {
		return nil, err
	}
	w, err := decodeWire(raw)
	if err != nil {
		return nil, err
	}
	s, err := w.toSpec()
	if err != nil {
		return nil, err
	}
	s.SetDefaults()
	if err := s.Validate(self); err != nil {
		return nil, err
	}
	return s, nil
}

// splitDocument checks that data is exactly one well-formed JSON object.
func splitDocument(data []byte) (json.RawMessage, error) {
	dec := json.NewDecoder(bytes.NewReader(data))
	var raw json.RawMessage
	if err := dec.Decode(&raw); err != nil {
		return nil, syntaxErr(err)
	}
	if rest := bytes.Trim(data[dec.InputOffset():], " \t\r\n"); len(rest) > 0 {
		return nil, fieldErr("", "trailing data after the JSON object at byte %d", len(data)-len(rest))
	}
	if kind(raw) != "an object" {
		return nil, fieldErr("", "must be a JSON object, not %s", kind(raw))
	}
	return raw, nil
}

func syntaxErr(err error) *FieldError {
	var se *json.SyntaxError
	switch {
	case errors.Is(err, io.EOF):
		return fieldErr("", "empty document")
	case errors.Is(err, io.ErrUnexpectedEOF):
		return fieldErr("", "truncated JSON")
	case errors.As(err, &se):
		return fieldErr("", "malformed JSON at byte %d: %s", se.Offset, se.Error())
	default:
		return fieldErr("", "malformed JSON: %s", err.Error())
	}
}

func decodeWire(raw json.RawMessage) (*wireSpec, error) {
	var w wireSpec
	err := eachField(raw, "", func(key, path string, val json.RawMessage) error {
		switch key {
		case "name":
			return decodeString(val, path, &w.Name)
		case "generation":
			n, err := decodeNumber(val, path)
			if err != nil {
				return err
			}
			if w.Generation, err = strconv.ParseUint(n, 10, 64); err != nil {
				return fieldErr(path, "must be a whole number between 1 and %d, not %s", uint64(1<<64-1), n)
			}
			return nil
		case "ip_range":
			return decodeString(val, path, &w.IPRange)
		case "ipv6_range":
			return decodeString(val, path, &w.IPv6Range)
		case "mtu":
			n, err := decodeNumber(val, path)
			if err != nil {
				return err
			}
			mtu, err := strconv.ParseInt(n, 10, 0)
			if err != nil {
				return fieldErr(path, "must be a whole number between %d and %d, not %s", MinMTU, MaxMTU, n)
			}
			w.MTU = int(mtu)
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

func decodeNodes(raw json.RawMessage, path string, out *[]wireNode) error {
	if k := kind(raw); k != "an array" {
		return fieldErr(path, "must be an array, not %s", k)
	}
	var items []json.RawMessage
	if err := json.Unmarshal(raw, &items); err != nil {
		return fieldErr(path, "malformed array: %s", err.Error())
	}
	nodes := make([]wireNode, len(items))
	for i, item := range items {
		p := fmt.Sprintf("%s[%d]", path, i)
		if k := kind(item); k != "an object" {
			return fieldErr(p, "must be an object, not %s", k)
		}
		n := &nodes[i]
		err := eachField(item, p, func(key, path string, val json.RawMessage) error {
			switch key {
			case "id":
				return decodeString(val, path, &n.ID)
			case "subnet":
				return decodeString(val, path, &n.Subnet)
			case "public_key":
				return decodeString(val, path, &n.PublicKey)
			case "endpoint":
				return decodeString(val, path, &n.Endpoint)
			}
			return fieldErr(path, "unknown field")
		})
		if err != nil {
			return err
		}
	}
	*out = nodes
	return nil
}

// eachField calls fn for every member of the JSON object raw, in document
// order, refusing a key that appears twice.
func eachField(raw json.RawMessage, prefix string, fn func(key, path string, val json.RawMessage) error) error {
	dec := json.NewDecoder(bytes.NewReader(raw))
	if _, err := dec.Token(); err != nil { // '{'
		return fieldErr(prefix, "malformed object: %s", err.Error())
	}
	seen := make(map[string]bool)
	for dec.More() {
		tok, err := dec.Token()
		if err != nil {
			return fieldErr(prefix, "malformed object: %s", err.Error())
		}
		key, ok := tok.(string)
		if !ok {
			return fieldErr(prefix, "malformed object: key %v is not a string", tok)
		}
		path := key
		if prefix != "" {
			path = prefix + "." + key
		}
		if seen[key] {
			return fieldErr(path, "field appears more than once")
		}
		seen[key] = true
		var val json.RawMessage
		if err := dec.Decode(&val); err != nil {
			return fieldErr(path, "malformed value: %s", err.Error())
		}
		if err := fn(key, path, val); err != nil {
			return err
		}
	}
	return nil
}

func decodeString(raw json.RawMessage, path string, out *string) error {
	if k := kind(raw); k != "a string" {
		return fieldErr(path, "must be a string, not %s", k)
	}
	if err := json.Unmarshal(raw, out); err != nil {
		return fieldErr(path, "malformed string: %s", err.Error())
	}
	return nil
}

// decodeNumber returns the literal text of a JSON number.
func decodeNumber(raw json.RawMessage, path string) (string, error) {
	if k := kind(raw); k != "a number" {
		return "", fieldErr(path, "must be a number, not %s", k)
	}
	return string(raw), nil
}

// kind names the JSON type of a syntactically valid value.
func kind(raw json.RawMessage) string {
	raw = bytes.TrimLeft(raw, " \t\r\n")
	if len(raw) == 0 {
		return "nothing"
	}
	switch raw[0] {
	case '{':
		return "an object"
	case '[':
		return "an array"
	case '"':
		return "a string"
	case 't', 'f':
		return "a boolean"
	case 'n':
		return "null"
	default:
		return "a number"
	}
}

// toSpec parses the prefixes, naming the field of the first bad one.
func (w *wireSpec) toSpec() (*Spec, error) {
	s := &Spec{Name: w.Name, Generation: w.Generation, MTU: w.MTU}
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
		if s.Nodes[i].Subnet, err = parsePrefix(n.Subnet, fmt.Sprintf("nodes[%d].subnet", i)); err != nil {
			return nil, err
		}
	}
	return s, nil
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
