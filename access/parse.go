package access

import (
	"fmt"
	"strings"

	"github.com/znet/znet/spec"
)

// ParseError is an error of Parse about one line of the text. It matches
// ErrInvalid. It never quotes a PrivateKey.
type ParseError struct {
	// Line is the 1-based line number; 0 for the text as a whole (a
	// missing section).
	Line int
	// Reason says what is wrong.
	Reason string
}

func (e *ParseError) Error() string {
	if e.Line == 0 {
		return e.Reason
	}
	return fmt.Sprintf("line %d: %s", e.Line, e.Reason)
}

// Unwrap returns ErrInvalid.
func (e *ParseError) Unwrap() error { return ErrInvalid }

// Sections and the keys a Config holds, by their lower-case spelling.
const (
	sectionInterface = "[Interface]"
	sectionPeer      = "[Peer]"
)

var knownKeys = map[string]map[string]string{
	sectionInterface: {"privatekey": "PrivateKey", "address": "Address", "dns": "DNS", "mtu": "MTU"},
	sectionPeer:      {"publickey": "PublicKey", "endpoint": "Endpoint", "allowedips": "AllowedIPs", "persistentkeepalive": "PersistentKeepalive"},
}

// otherKeys are keys wg-quick or wg take that a Config cannot hold, and
// their section.
var otherKeys = map[string]string{
	"listenport": sectionInterface, "fwmark": sectionInterface, "table": sectionInterface,
	"preup": sectionInterface, "postup": sectionInterface, "predown": sectionInterface,
	"postdown": sectionInterface, "saveconfig": sectionInterface, "presharedkey": sectionPeer,
}

// listKeys may stand on several lines; their items add up, as in wg-quick.
var listKeys = map[string]bool{"Address": true, "DNS": true, "AllowedIPs": true}

// Parse reads a wg-quick file with one [Interface] and one [Peer] as wg-quick
// and wg do: '#' starts a comment anywhere, blank lines and the spaces
// around keys, '=' and values do not count, section names and keys are
// case-insensitive, list values are separated by commas (and, in Address
// and DNS, by spaces too) and several lines of a list key add up. It is
// stricter than they are: a key outside its section, a key or section
// that a Config cannot hold, a repeated single-valued key, an empty value or
// list item, and any value that Validate refuses is an error that names the
// line (a *ParseError). AllowedIPs are masked. What Parse returns passes
// Validate.
func Parse(text string) (Config, error) {
	var (
		c       Config
		section string
		seen    = map[string]int{} // section or single-valued key -> its line
	)
	for i, raw := range strings.Split(text, "\n") {
		n := i + 1
		line, _, _ := strings.Cut(raw, "#")
		line = trimSpace(line)
		if line == "" {
			continue
		}
		if strings.HasPrefix(line, "[") {
			s, err := parseSection(line, seen)
			if err != nil {
				return Config{}, &ParseError{Line: n, Reason: err.Error()}
			}
			section, seen[s] = s, n
			continue
		}
		keyText, value, ok := strings.Cut(line, "=")
		if !ok {
			return Config{}, &ParseError{Line: n, Reason: "want KEY = VALUE or a [Section]"}
		}
		keyText, value = trimSpace(keyText), trimSpace(value)
		key, err := lookupKey(section, keyText)
		if err != nil {
			return Config{}, &ParseError{Line: n, Reason: err.Error()}
		}
		if value == "" {
			return Config{}, &ParseError{Line: n, Reason: key + " has no value"}
		}
		if !listKeys[key] {
			if first, dup := seen[key]; dup {
				return Config{}, &ParseError{Line: n, Reason: fmt.Sprintf("%s is set on line %d already", key, first)}
			}
			seen[key] = n
		}
		if err := c.set(key, value); err != nil {
			return Config{}, &ParseError{Line: n, Reason: key + ": " + err.Error()}
		}
	}
	if err := c.finish(seen); err != nil {
		return Config{}, err
	}
	if err := c.Validate(); err != nil {
		return Config{}, fmt.Errorf("parsing: %w", err) // a bug: set should have refused it
	}
	return c, nil
}

// parseSection reads a section header that was not seen yet.
func parseSection(line string, seen map[string]int) (string, error) {
	var s string
	switch {
	case strings.EqualFold(line, sectionInterface):
		s = sectionInterface
	case strings.EqualFold(line, sectionPeer):
		s = sectionPeer
	default:
		return "", fmt.Errorf("unknown section %s (want [Interface] or [Peer])", line)
	}
	if first, dup := seen[s]; dup {
		return "", fmt.Errorf("a second %s (the first is on line %d); a config holds one", s, first)
	}
	return s, nil
}

// lookupKey returns the canonical spelling of keyText in section.
func lookupKey(section, keyText string) (string, error) {
	lower := strings.ToLower(keyText)
	if key, ok := knownKeys[section][lower]; ok {
		return key, nil
	}
	for s, keys := range knownKeys {
		if key, ok := keys[lower]; ok {
			if section == "" {
				return "", fmt.Errorf("%s stands before any section (it belongs in %s)", key, s)
			}
			return "", fmt.Errorf("%s belongs in %s, not %s", key, s, section)
		}
	}
	if s, ok := otherKeys[lower]; ok {
		return "", fmt.Errorf("%s (in %s) is not supported in an access config", keyText, s)
	}
	if keyText == "" {
		return "", fmt.Errorf("missing key before '='")
	}
	return "", fmt.Errorf("unknown key %q", keyText)
}

// set stores the value of key, which is not empty.
func (c *Config) set(key, value string) error {
	var err error
	switch key {
	case "PrivateKey":
		err = spec.CheckKey(value)
		c.PrivateKey = value
	case "PublicKey":
		err = spec.CheckKey(value)
		c.PeerPublicKey = value
	case "Address":
		err = eachItem(value, true, func(item string) error {
			p, err := parseAddress(item, c.Addresses)
			c.Addresses = append(c.Addresses, p)
			return err
		})
	case "DNS":
		err = eachItem(value, true, func(item string) error {
			c.DNS = append(c.DNS, item)
			return checkDNS(item)
		})
	case "AllowedIPs":
		err = eachItem(value, false, func(item string) error {
			p, err := parseAllowedIP(item)
			c.AllowedIPs = append(c.AllowedIPs, p)
			return err
		})
	case "MTU":
		c.MTU, err = parseMTU(value, nil)
	case "Endpoint":
		c.Endpoint = value
		err = checkEndpoint(value)
	case "PersistentKeepalive":
		c.PersistentKeepalive, err = parseKeepalive(value)
	default:
		err = fmt.Errorf("no such key") // lookupKey returns only the keys above
	}
	return err
}

func eachItem(value string, spaces bool, f func(string) error) error {
	items, err := splitList(value, spaces)
	if err != nil {
		return err
	}
	for _, item := range items {
		if err := f(item); err != nil {
			return err
		}
	}
	return nil
}

// finish checks what spans lines: both sections there, a PublicKey in
// [Peer], an MTU that suits the addresses.
func (c *Config) finish(seen map[string]int) error {
	for _, s := range []string{sectionInterface, sectionPeer} {
		if _, ok := seen[s]; !ok {
			return &ParseError{Reason: fmt.Sprintf("no %s section", s)}
		}
	}
	if c.PeerPublicKey == "" {
		return &ParseError{Line: seen[sectionPeer], Reason: "[Peer] has no PublicKey"}
	}
	if c.MTU != 0 {
		if err := checkMTU(c.MTU, c.Addresses); err != nil {
			return &ParseError{Line: seen["MTU"], Reason: "MTU: " + err.Error()}
		}
	}
	return nil
}
