package api

import (
	"encoding/json"
	"math"
	"net/netip"
	"strconv"

	"github.com/znet/znet/internal/strictjson"
)

// decodeAttachRequest parses an AttachRequest strictly: exactly one JSON
// object, every key known, spelled exactly and given once, every value of
// the right type, nothing after the object. Errors name the field.
func decodeAttachRequest(data []byte) (AttachRequest, error) {
	var req AttachRequest
	texts := []strictjson.Text{{Key: "name", To: &req.Name}, {Key: "netns", To: &req.NetNS},
		{Key: "ifname", To: &req.IfName}, {Key: "mac", To: &req.MAC}}
	err := decodeObject(data, strictjson.Members(Invalid, texts, func(key, _ string, val json.RawMessage) error {
		switch key {
		case "tap":
			return decodeBool(val, key, &req.Tap)
		case "queues":
			// The daemon checks the upper bound: it depends on the device.
			return decodeInt(val, key, 0, 1<<16, &req.Queues)
		case "ipv4":
			var text string
			if err := strictjson.String(val, key, Invalid, &text); err != nil || text == "" {
				return err
			}
			a, err := netip.ParseAddr(text)
			if err != nil || !a.Is4() {
				return Invalid(key, "%q is not an IPv4 address", text)
			}
			req.IPv4 = a
			return nil
		}
		return Invalid(key, "unknown field")
	}))
	return req, err
}

// decodeReserveRequest parses a ReserveRequest strictly.
func decodeReserveRequest(data []byte) (ReserveRequest, error) {
	var req ReserveRequest
	err := decodeObject(data, func(key, _ string, val json.RawMessage) error {
		if key != "listen_port" {
			return Invalid(key, "unknown field")
		}
		// Only parsed: the Service checks that it is a UDP port.
		return decodeInt(val, key, math.MinInt32, math.MaxInt32, &req.ListenPort)
	})
	return req, err
}

// decodeObject calls fn for every member of the single JSON object in data,
// in document order, refusing a repeated key. A request's fields are at
// the top, so a member's path is its key.
func decodeObject(data []byte, fn strictjson.FieldFunc) error {
	raw, err := strictjson.Document(data, MaxBodySize, Invalid)
	if err != nil {
		return err
	}
	return strictjson.Fields(raw, "", Invalid, fn)
}

// decodeInt parses the JSON number val, the field key, into out; it must
// be an integer in [lo, hi].
func decodeInt(val json.RawMessage, key string, lo, hi int64, out *int) error {
	n, err := strictjson.Number(val, key, Invalid)
	if err != nil {
		return err
	}
	v, err := strconv.ParseInt(n, 10, 64)
	if err != nil || v < lo || v > hi {
		return Invalid(key, "%s is not an integer in %d-%d", n, lo, hi)
	}
	*out = int(v)
	return nil
}

// decodeBool parses the JSON boolean val, the field key, into out.
func decodeBool(val json.RawMessage, key string, out *bool) error {
	if k := strictjson.Kind(val); k != "a boolean" {
		return Invalid(key, "must be a boolean, not %s", k)
	}
	return json.Unmarshal(val, out)
}
