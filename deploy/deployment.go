package deploy

import (
	"errors"
	"fmt"
	"net/netip"
	"net/url"
	"path"
	"strconv"
	"strings"

	"github.com/znet/znet/ipam"
	"github.com/znet/znet/spec"
)

// ErrInvalid is matched (via errors.Is) by every *FieldError that Decode
// and Deployment.Validate return. It is spec.ErrInvalid: a deployment
// file is refused with the same error type as a spec.
var ErrInvalid = spec.ErrInvalid

// FieldError says which field of a deployment file is wrong and why: a
// *spec.FieldError, whose Field is a JSON path such as "nodes[1].api", or
// "" for the document as a whole.
type FieldError = spec.FieldError

// fieldErr and fail make the *FieldError every refusal is.
var fieldErr, fail = spec.Invalid, spec.Invalid

// Deployment is a deployment file: one network and the nodes it spans.
type Deployment struct {
	Name    string       `json:"name"`
	IPRange netip.Prefix `json:"ip_range"`
	// IPv6Range is the network's ULA /48; zero means derived from the name.
	IPv6Range netip.Prefix `json:"ipv6_range,omitzero"`
	// MTU is the overlay MTU; zero lets each node derive its own from its
	// underlay.
	MTU int `json:"mtu,omitempty"`
	// Egress gives the workloads a way out through their node (spec.Spec.Egress).
	Egress bool `json:"egress,omitempty"`
	// SubnetBits is the length of a new member's subnet; zero means
	// ipam.DefaultSubnetBits of the range.
	SubnetBits int       `json:"subnet_bits,omitempty"`
	Nodes      []NodeRef `json:"nodes"`
}

// NodeRef is one node of a deployment: how deploy reaches its API and how
// its peers reach its WireGuard socket.
type NodeRef struct {
	// ID is the node's id, as its znetd was started with (--node-id).
	ID string `json:"id"`
	// API is "unix:///path/to/znetd.sock" or "https://host:port" (znetd's
	// --listen API).
	API string `json:"api"`
	// TokenFile holds the bearer token of an https API (required for one;
	// the file must be private, mode 0600).
	TokenFile string `json:"token_file,omitempty"`
	// CAFile is the PEM file of the CA that signs an https API's
	// certificate; empty means the system's roots.
	CAFile string `json:"ca_file,omitempty"`
	// EndpointHost is the address or name peers send WireGuard packets to;
	// the port is the one the node reserved.
	EndpointHost string `json:"endpoint_host,omitempty"`
	// Hidden marks a node behind NAT: it has no endpoint and reaches the
	// others through the public members.
	Hidden bool `json:"hidden,omitempty"`
	// ListenPort asks the node for this UDP port (0: the node picks, and
	// keeps what it has); changing it moves the node and re-points peers.
	ListenPort int `json:"listen_port,omitempty"`
}

// Socket returns the Unix socket path of the node's API, or an error when
// the API is not a unix:/// URL.
func (n NodeRef) Socket() (string, error) { return parseAPI(n.API) }

// IsHTTPS reports whether the node's API is an https:// URL.
func (n NodeRef) IsHTTPS() bool { return strings.HasPrefix(n.API, "https:") }

// Endpoint returns the node's WireGuard endpoint for listen port port:
// "host:port", "[v6]:port", or "" for a hidden node.
func (n NodeRef) Endpoint(port int) string {
	if n.Hidden || n.EndpointHost == "" {
		return ""
	}
	host := strings.TrimSuffix(strings.TrimPrefix(n.EndpointHost, "["), "]")
	if strings.Contains(host, ":") {
		return "[" + host + "]:" + strconv.Itoa(port)
	}
	return host + ":" + strconv.Itoa(port)
}

// subnetBits returns the length of a new member's subnet.
func (d *Deployment) subnetBits() int {
	if d.SubnetBits != 0 {
		return d.SubnetBits
	}
	return ipam.DefaultSubnetBits(d.IPRange.Bits())
}

// Validate checks every field of d and returns the first problem as a
// *FieldError. The network's own fields follow the rules of spec.Validate.
func (d *Deployment) Validate() error {
	// A spec with no members yet: spec.Validate checks name, ranges and
	// MTU before it gets to the members, so any other complaint is ours.
	probe := &spec.Spec{Name: d.Name, Generation: 1, IPRange: d.IPRange, IPv6Range: d.IPv6Range, MTU: d.MTU}
	probe.SetDefaults()
	var fe *FieldError
	if err := probe.Validate(""); err != nil && (!errors.As(err, &fe) || fe.Field != "nodes") {
		return err
	}
	if b := d.SubnetBits; b != 0 {
		lo, hi := d.IPRange.Bits(), min(spec.MaxSubnetBits, d.IPRange.Bits()+16)
		if b < lo || b > hi {
			return fieldErr("subnet_bits", "%d is out of range for %s (%d..%d)", b, d.IPRange, lo, hi)
		}
	}
	if len(d.Nodes) == 0 {
		return fieldErr("nodes", "at least one node is required")
	}
	ids := make(map[string]int, len(d.Nodes))
	apis := make(map[string]int, len(d.Nodes))
	for i, n := range d.Nodes {
		f := fmt.Sprintf("nodes[%d]", i)
		if err := spec.ValidName(n.ID); err != nil {
			return fieldErr(f+".id", "%v", err)
		}
		if j, dup := ids[n.ID]; dup {
			return fieldErr(f+".id", "%q is also nodes[%d]'s id", n.ID, j)
		}
		ids[n.ID] = i
		if err := checkAPI(n, f); err != nil {
			return err
		}
		if j, dup := apis[n.API]; dup {
			return fieldErr(f+".api", "%s is also nodes[%d]'s API", n.API, j)
		}
		apis[n.API] = i
		switch {
		case n.Hidden && n.EndpointHost != "":
			return fieldErr(f+".endpoint_host", "a hidden node has no endpoint; give endpoint_host or hidden, not both")
		case !n.Hidden && n.EndpointHost == "":
			return fieldErr(f+".endpoint_host", "is required (or \"hidden\": true for a node behind NAT)")
		case !n.Hidden:
			if err := checkEndpointHost(n.EndpointHost); err != nil {
				return fieldErr(f+".endpoint_host", "%v", err)
			}
		}
	}
	return nil
}

// checkAPI checks node n's api, token_file and ca_file fields.
func checkAPI(n NodeRef, f string) error {
	if n.API == "" {
		return fieldErr(f+".api", "is required (unix:///path/to/znetd.sock or https://host:port)")
	}
	if n.IsHTTPS() {
		if err := checkHTTPSAPI(n.API); err != nil {
			return fieldErr(f+".api", "%v", err)
		}
		if n.TokenFile == "" {
			return fieldErr(f+".token_file", "is required for an https API")
		}
		return nil
	}
	if _, err := parseAPI(n.API); err != nil {
		return fieldErr(f+".api", "%v", err)
	}
	if n.TokenFile != "" {
		return fieldErr(f+".token_file", "is only for https APIs")
	}
	if n.CAFile != "" {
		return fieldErr(f+".ca_file", "is only for https APIs")
	}
	return nil
}

// checkHTTPSAPI accepts an https://host:port API URL.
func checkHTTPSAPI(s string) error {
	u, err := url.Parse(s)
	switch {
	case err != nil:
		return fmt.Errorf("%q is not a URL (want https://host:port)", s)
	case u.Host == "" || u.Port() == "":
		return fmt.Errorf("%q: want https://host:port", s)
	case (u.Path != "" && u.Path != "/") || u.RawQuery != "" || u.Fragment != "" || u.User != nil:
		return fmt.Errorf("%q: an https API URL has only a host and a port", s)
	}
	if p, err := strconv.Atoi(u.Port()); err != nil || p < 1 || p > 65535 {
		return fmt.Errorf("%q: the port must be 1-65535", s)
	}
	return nil
}

// errNotUnix is what Socket returns for an https API.
var errNotUnix = errors.New("the API is https, not a Unix socket")

// parseAPI returns the socket path of a unix:///path API URL.
func parseAPI(s string) (string, error) {
	u, err := url.Parse(s)
	if err != nil {
		return "", fmt.Errorf("%q is not a URL (want unix:///path/to/znetd.sock or https://host:port)", s)
	}
	switch u.Scheme {
	case "unix":
	case "https":
		return "", errNotUnix
	default:
		return "", fmt.Errorf("%q: want unix:///path/to/znetd.sock or https://host:port", s)
	}
	if u.Host != "" || u.Opaque != "" || !strings.HasPrefix(u.Path, "/") {
		return "", fmt.Errorf("%q: the socket path must be absolute (unix:///path/to/znetd.sock)", s)
	}
	if u.RawQuery != "" || u.Fragment != "" || u.User != nil {
		return "", fmt.Errorf("%q: a unix API URL has only a path", s)
	}
	if path.Clean(u.Path) != u.Path {
		return "", fmt.Errorf("%q: the socket path is not clean (did you mean unix://%s?)", s, path.Clean(u.Path))
	}
	return u.Path, nil
}

// checkEndpointHost accepts what spec.ParseEndpoint accepts as a host: an
// IPv4 address, an IPv6 address (bracketed or not) or a host name.
func checkEndpointHost(host string) error {
	if strings.ContainsAny(host, "/ ") {
		return fmt.Errorf("%q is not an address or host name", host)
	}
	ep := NodeRef{EndpointHost: host}.Endpoint(1)
	if _, _, err := spec.ParseEndpoint(ep); err != nil {
		return fmt.Errorf("%q: %w", host, errors.Unwrap(err))
	}
	if a, err := netip.ParseAddr(strings.Trim(host, "[]")); err == nil && (a.IsUnspecified() || a.IsMulticast()) {
		return fmt.Errorf("%s cannot be reached as an endpoint", host)
	}
	return nil
}
