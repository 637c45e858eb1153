package zos

import (
	"encoding/json"
	"strconv"

	"github.com/znet/znet/internal/strictjson"
	"github.com/znet/znet/spec"
)

// TypeNetwork is the only workload type this package reads.
const TypeNetwork = "network"

// MaxNameLen bounds a workload name. zos allows any characters in it, so
// the name is not a DNS label (see NetworkName).
const MaxNameLen = 255

// Workload is a zos workload envelope carrying a network.
type Workload struct {
	// Version orders updates of the same workload (zos starts at 0).
	Version uint64 `json:"version"`
	Name    string `json:"name"`
	Type    string `json:"type"`
	// Description and Metadata are the client's notes; znet ignores them.
	Description string  `json:"description,omitempty"`
	Metadata    string  `json:"metadata,omitempty"`
	Data        Network `json:"data"`
}

// Network is the data of a network workload, fields as zos names them.
// Prefixes are kept as text: zos keeps host bits, Translate masks them.
type Network struct {
	IPRange             string     `json:"ip_range"`
	Subnet              string     `json:"subnet"`
	WireguardPrivateKey PrivateKey `json:"wireguard_private_key"`
	WireguardListenPort uint16     `json:"wireguard_listen_port"`
	Peers               []Peer     `json:"peers"`
	// Mycelium must be null or absent: znet has no mycelium.
	Mycelium json.RawMessage `json:"mycelium,omitempty"`
}

// Peer is one WireGuard peer of the node, as the client planned it.
type Peer struct {
	// Subnet is the peer's subnet (a node's, or a user's /24).
	Subnet             string   `json:"subnet"`
	WireguardPublicKey string   `json:"wireguard_public_key"`
	AllowedIPs         []string `json:"allowed_ips"`
	// Endpoint is host:port, empty for a peer that connects to this node.
	Endpoint string `json:"endpoint"`
}

// PrivateKey is a WireGuard private key in base64. It prints and marshals
// as "(hidden)", so that no log or answer can carry it by accident.
type PrivateKey string

const hidden = "(hidden)"

// String implements fmt.Stringer without the key.
func (PrivateKey) String() string { return hidden }

// GoString implements fmt.GoStringer without the key.
func (PrivateKey) GoString() string { return hidden }

// MarshalJSON implements json.Marshaler without the key.
func (PrivateKey) MarshalJSON() ([]byte, error) { return json.Marshal(hidden) }

// fail makes the *spec.FieldError every refusal is.
var fail = spec.Invalid

// Decode parses a network workload strictly: one JSON object of at most
// spec.MaxSize bytes, every field known and given once with the right JSON
// type. It checks the envelope (type "network", a name); Translate checks
// the data.
func Decode(data []byte) (*Workload, error) {
	if len(data) > spec.MaxSize {
		return nil, fail("", "document is %d bytes, larger than the limit of %d", len(data), spec.MaxSize)
	}
	if !json.Valid(data) {
		return nil, fail("", "malformed or truncated JSON, or data after the object")
	}
	var w Workload
	err := strictjson.Fields(data, "", fail, func(key, path string, val json.RawMessage) error {
		switch key {
		case "version":
			return uintField(val, path, 1<<64-2, &w.Version)
		case "name":
			return strictjson.String(val, path, fail, &w.Name)
		case "type":
			return strictjson.String(val, path, fail, &w.Type)
		case "description":
			return strictjson.String(val, path, fail, &w.Description)
		case "metadata":
			return strictjson.String(val, path, fail, &w.Metadata)
		case "data":
			return decodeNetwork(val, path, &w.Data)
		}
		return fail(path, "unknown field")
	})
	if err != nil {
		return nil, err
	}
	switch {
	case w.Type != TypeNetwork:
		return nil, fail("type", "must be %q, not %q", TypeNetwork, w.Type)
	case w.Name == "":
		return nil, fail("name", "is required")
	case len(w.Name) > MaxNameLen:
		return nil, fail("name", "too long (%d bytes, max %d)", len(w.Name), MaxNameLen)
	}
	return &w, nil
}

func decodeNetwork(raw json.RawMessage, prefix string, n *Network) error {
	return strictjson.Fields(raw, prefix, fail, func(key, path string, val json.RawMessage) error {
		switch key {
		case "ip_range":
			return strictjson.String(val, path, fail, &n.IPRange)
		case "subnet":
			return strictjson.String(val, path, fail, &n.Subnet)
		case "wireguard_private_key":
			var s string
			err := strictjson.String(val, path, fail, &s)
			n.WireguardPrivateKey = PrivateKey(s)
			return err
		case "wireguard_listen_port":
			var port uint64
			err := uintField(val, path, 65535, &port)
			n.WireguardListenPort = uint16(port)
			return err
		case "peers":
			return decodePeers(val, path, &n.Peers)
		case "mycelium":
			if strictjson.Kind(val) != "null" {
				return fail(path, "is not supported by znet (it has no mycelium); send null")
			}
			return nil
		}
		return fail(path, "unknown field")
	})
}

func decodePeers(raw json.RawMessage, path string, out *[]Peer) error {
	if strictjson.Kind(raw) == "null" {
		return nil // Go's encoder writes an empty list as null
	}
	peers, err := strictjson.Objects(raw, path, fail, func(p *Peer) strictjson.FieldFunc {
		texts := []strictjson.Text{{Key: "subnet", To: &p.Subnet}, {Key: "wireguard_public_key", To: &p.WireguardPublicKey},
			{Key: "endpoint", To: &p.Endpoint}}
		return strictjson.Members(fail, texts, func(key, path string, val json.RawMessage) error {
			if key == "allowed_ips" {
				return decodeStrings(val, path, &p.AllowedIPs)
			}
			return fail(path, "unknown field")
		})
	})
	*out = peers
	return err
}

func decodeStrings(raw json.RawMessage, path string, out *[]string) error {
	if strictjson.Kind(raw) == "null" {
		return nil
	}
	return strictjson.Strings(raw, path, fail, out)
}

// uintField decodes a whole JSON number between 0 and maxVal.
func uintField(raw json.RawMessage, path string, maxVal uint64, out *uint64) error {
	text, err := strictjson.Number(raw, path, fail)
	if err != nil {
		return err
	}
	v, err := strconv.ParseUint(text, 10, 64)
	if err != nil || v > maxVal {
		return fail(path, "must be a whole number between 0 and %d, not %s", maxVal, text)
	}
	*out = v
	return nil
}
