package deploy

import (
	"bytes"
	"encoding/json"
	"errors"
	"fmt"
	"io"
	"net/netip"
	"os"
	"strconv"
)

// MaxSize is the largest deployment file, in bytes, that Decode accepts.
const MaxSize = 1 << 20

// Load reads and decodes the deployment file at path.
func Load(path string) (*Deployment, error) {
	f, err := os.Open(path)
	if err != nil {
		return nil, fmt.Errorf("reading the deployment: %w", err)
	}
	defer f.Close()
	data, err := io.ReadAll(io.LimitReader(f, MaxSize+1))
	if err != nil {
		return nil, fmt.Errorf("reading the deployment: %w", err)
	}
	return Decode(data)
}

// Decode parses a deployment file strictly and validates it (see
// Deployment.Validate). Unknown or repeated fields, values of the wrong JSON
// type, malformed JSON, data after the object and documents larger than
// MaxSize are refused. Every error it returns is a *FieldError.
func Decode(data []byte) (*Deployment, error) {
	if len(data) > MaxSize {
		return nil, fieldErr("", "document is larger than the limit of %d bytes", MaxSize)
	}
	dec := json.NewDecoder(bytes.NewReader(data))
	var raw json.RawMessage
	if err := dec.Decode(&raw); err != nil {
		if errors.Is(err, io.EOF) {
			return nil, fieldErr("", "empty document")
		}
		return nil, fieldErr("", "malformed JSON: %v", err)
	}
	if rest := bytes.TrimSpace(data[dec.InputOffset():]); len(rest) > 0 {
		return nil, fieldErr("", "trailing data after the JSON object")
	}
	d, err := decodeDeployment(raw)
	if err != nil {
		return nil, err
	}
	if err := d.Validate(); err != nil {
		return nil, err
	}
	return d, nil
}

func decodeDeployment(raw json.RawMessage) (*Deployment, error) {
	var d Deployment
	err := eachField(raw, "", func(key, f string, val json.RawMessage) error {
		switch key {
		case "name":
			return decodeString(val, f, &d.Name)
		case "ip_range":
			return decodePrefix(val, f, &d.IPRange)
		case "ipv6_range":
			return decodePrefix(val, f, &d.IPv6Range)
		case "mtu":
			return decodeInt(val, f, &d.MTU)
		case "subnet_bits":
			return decodeInt(val, f, &d.SubnetBits)
		case "nodes":
			return decodeNodes(val, f, &d.Nodes)
		}
		return fieldErr(f, "unknown field")
	})
	if err != nil {
		return nil, err
	}
	return &d, nil
}

func decodeNodes(raw json.RawMessage, f string, out *[]NodeRef) error {
	if k := kind(raw); k != "an array" {
		return fieldErr(f, "must be an array, not %s", k)
	}
	var items []json.RawMessage
	if err := json.Unmarshal(raw, &items); err != nil {
		return fieldErr(f, "malformed array: %v", err)
	}
	nodes := make([]NodeRef, len(items))
	for i, item := range items {
		n := &nodes[i]
		err := eachField(item, fmt.Sprintf("%s[%d]", f, i), func(key, f string, val json.RawMessage) error {
			switch key {
			case "id":
				return decodeString(val, f, &n.ID)
			case "api":
				return decodeString(val, f, &n.API)
			case "token_file":
				return decodeString(val, f, &n.TokenFile)
			case "ca_file":
				return decodeString(val, f, &n.CAFile)
			case "endpoint_host":
				return decodeString(val, f, &n.EndpointHost)
			case "hidden":
				return decodeBool(val, f, &n.Hidden)
			case "listen_port":
				if err := decodeInt(val, f, &n.ListenPort); err != nil {
					return err
				}
				if n.ListenPort < 1 || n.ListenPort > 65535 {
					return fieldErr(f, "must be a UDP port (1-65535)")
				}
				return nil
			}
			return fieldErr(f, "unknown field")
		})
		if err != nil {
			return err
		}
	}
	*out = nodes
	return nil
}

// eachField calls fn for every member of the JSON object raw, in document
// order, refusing a key that appears twice. prefix is raw's own path.
func eachField(raw json.RawMessage, prefix string, fn func(key, path string, val json.RawMessage) error) error {
	if k := kind(raw); k != "an object" {
		return fieldErr(prefix, "must be an object, not %s", k)
	}
	dec := json.NewDecoder(bytes.NewReader(raw))
	if _, err := dec.Token(); err != nil { // '{'
		return fieldErr(prefix, "malformed object: %v", err)
	}
	seen := make(map[string]bool)
	for dec.More() {
		tok, err := dec.Token()
		if err != nil {
			return fieldErr(prefix, "malformed object: %v", err)
		}
		key, _ := tok.(string) // object keys are always strings
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
			return fieldErr(path, "malformed value: %v", err)
		}
		if err := fn(key, path, val); err != nil {
			return err
		}
	}
	return nil
}

func decodeString(raw json.RawMessage, f string, out *string) error {
	if k := kind(raw); k != "a string" {
		return fieldErr(f, "must be a string, not %s", k)
	}
	if err := json.Unmarshal(raw, out); err != nil {
		return fieldErr(f, "malformed string: %v", err)
	}
	return nil
}

func decodePrefix(raw json.RawMessage, f string, out *netip.Prefix) error {
	var s string
	if err := decodeString(raw, f, &s); err != nil {
		return err
	}
	p, err := netip.ParsePrefix(s)
	if err != nil {
		return fieldErr(f, "%q is not a CIDR prefix (like 10.20.0.0/16)", s)
	}
	*out = p
	return nil
}

func decodeInt(raw json.RawMessage, f string, out *int) error {
	if k := kind(raw); k != "a number" {
		return fieldErr(f, "must be a number, not %s", k)
	}
	n, err := strconv.ParseInt(string(raw), 10, 32)
	if err != nil || n <= 0 {
		return fieldErr(f, "must be a positive whole number, not %s", raw)
	}
	*out = int(n)
	return nil
}

func decodeBool(raw json.RawMessage, f string, out *bool) error {
	if k := kind(raw); k != "a boolean" {
		return fieldErr(f, "must be true or false, not %s", k)
	}
	*out = string(raw) == "true"
	return nil
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
	}
	return "a number"
}
