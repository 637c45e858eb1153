package deploy

import (
	"encoding/json"
	"fmt"
	"io"
	"net/netip"
	"os"
	"strconv"

	"github.com/znet/znet/internal/strictjson"
	"github.com/znet/znet/spec"
)

// MaxSize is the largest deployment file, in bytes, that Decode accepts.
const MaxSize = 1 << 20

// Load reads and decodes the deployment file at path.
func Load(path string) (*Deployment, error) {
	f, err := os.Open(path)
	if err != nil {
		return nil, fmt.Errorf("reading the deployment: %w", err)
	}
	defer func() { _ = f.Close() }()
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
	raw, err := strictjson.Document(data, MaxSize, fail)
	if err != nil {
		return nil, err
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
	err := strictjson.Fields(raw, "", fail, func(key, f string, val json.RawMessage) error {
		switch key {
		case "name":
			return strictjson.String(val, f, fail, &d.Name)
		case "ip_range":
			return decodePrefix(val, f, &d.IPRange)
		case "ipv6_range":
			return decodePrefix(val, f, &d.IPv6Range)
		case "mtu":
			return decodeInt(val, f, &d.MTU)
		case "subnet_bits":
			return decodeInt(val, f, &d.SubnetBits)
		case "egress":
			return decodeBool(val, f, &d.Egress)
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
	nodes, err := strictjson.Objects(raw, f, fail, func(n *NodeRef) strictjson.FieldFunc {
		texts := []strictjson.Text{{Key: "id", To: &n.ID}, {Key: "api", To: &n.API}, {Key: "token_file", To: &n.TokenFile},
			{Key: "ca_file", To: &n.CAFile}, {Key: "endpoint_host", To: &n.EndpointHost}}
		return strictjson.Members(fail, texts, func(key, f string, val json.RawMessage) error {
			switch key {
			case "hidden":
				return decodeBool(val, f, &n.Hidden)
			case "listen_port":
				if err := decodeInt(val, f, &n.ListenPort); err != nil {
					return err
				}
				return spec.CheckListenPort(f, n.ListenPort)
			}
			return fieldErr(f, "unknown field")
		})
	})
	*out = nodes
	return err
}

func decodePrefix(raw json.RawMessage, f string, out *netip.Prefix) error {
	var s string
	if err := strictjson.String(raw, f, fail, &s); err != nil {
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
	lit, err := strictjson.Number(raw, f, fail)
	if err != nil {
		return err
	}
	n, err := strconv.ParseInt(lit, 10, 32)
	if err != nil || n <= 0 {
		return fieldErr(f, "must be a positive whole number, not %s", lit)
	}
	*out = int(n)
	return nil
}

func decodeBool(raw json.RawMessage, f string, out *bool) error {
	if k := strictjson.Kind(raw); k != "a boolean" {
		return fieldErr(f, "must be true or false, not %s", k)
	}
	*out = string(raw) == "true"
	return nil
}
