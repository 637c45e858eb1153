package dnsresolver

import (
	"net/netip"
	"strconv"
	"strings"
)

// splitName returns the labels of the presentation-format domain name s
// (as miekg/dns writes names: \DDD and \X escapes), unescaped and with ASCII
// letters in lower case, from left to right. The root is no labels. ok is
// false for a name that no wire message can carry: an empty label, a bad
// escape, a label over 63 bytes.
func splitName(s string) (labels []string, ok bool) {
	if s == "" {
		return nil, false
	}
	if s == "." {
		return nil, true
	}
	var b []byte
	for i := 0; i < len(s); i++ {
		c := s[i]
		switch c {
		case '\\':
			if i+1 >= len(s) {
				return nil, false
			}
			if isDigit(s[i+1]) {
				if i+3 >= len(s) || !isDigit(s[i+2]) || !isDigit(s[i+3]) {
					return nil, false
				}
				v := int(s[i+1]-'0')*100 + int(s[i+2]-'0')*10 + int(s[i+3]-'0')
				if v > 255 {
					return nil, false
				}
				c = byte(v)
				i += 3
			} else {
				c = s[i+1]
				i++
			}
		case '.':
			if len(b) == 0 {
				return nil, false
			}
			labels = append(labels, string(b))
			b = b[:0]
			continue
		}
		if len(b) == 63 {
			return nil, false
		}
		if c >= 'A' && c <= 'Z' {
			c += 'a' - 'A'
		}
		b = append(b, c)
	}
	if len(b) > 0 { // a name without the final dot
		labels = append(labels, string(b))
	}
	return labels, true
}

func isDigit(c byte) bool { return c >= '0' && c <= '9' }

// parseReverse reads labels (from splitName) as a name under in-addr.arpa
// or ip6.arpa. p is the prefix named by the longest run of valid octets
// (nibbles) right below in-addr.arpa (ip6.arpa), at most a whole address;
// extra reports labels left of that run that are not part of it (a name
// below a full address, or a label that is not an octet or nibble). ok is
// false when the name is not under in-addr.arpa or ip6.arpa.
func parseReverse(labels []string) (p netip.Prefix, extra, ok bool) {
	n := len(labels)
	if n < 2 || labels[n-1] != "arpa" {
		return netip.Prefix{}, false, false
	}
	var v6 bool
	switch labels[n-2] {
	case "in-addr":
	case "ip6":
		v6 = true
	default:
		return netip.Prefix{}, false, false
	}
	rest := labels[:n-2]
	var b [16]byte
	bits, i := 0, len(rest)-1
	if v6 {
		for ; i >= 0 && bits < 128; i-- {
			v, ok := parseNibble(rest[i])
			if !ok {
				break
			}
			k := bits / 4
			if k%2 == 0 {
				b[k/2] = v << 4
			} else {
				b[k/2] |= v
			}
			bits += 4
		}
		return netip.PrefixFrom(netip.AddrFrom16(b), bits), i >= 0, true
	}
	for ; i >= 0 && bits < 32; i-- {
		v, ok := parseOctet(rest[i])
		if !ok {
			break
		}
		b[bits/8] = v
		bits += 8
	}
	return netip.PrefixFrom(netip.AddrFrom4([4]byte(b[:4])), bits), i >= 0, true
}

// parseOctet parses a decimal octet label without leading zeros.
func parseOctet(s string) (byte, bool) {
	if s == "" || len(s) > 3 || (len(s) > 1 && s[0] == '0') {
		return 0, false
	}
	v, err := strconv.ParseUint(s, 10, 8)
	if err != nil || !isDigit(s[0]) {
		return 0, false
	}
	return byte(v), true
}

// parseNibble parses a one-digit lower-case hexadecimal label.
func parseNibble(s string) (byte, bool) {
	if len(s) != 1 {
		return 0, false
	}
	switch c := s[0]; {
	case c >= '0' && c <= '9':
		return c - '0', true
	case c >= 'a' && c <= 'f':
		return c - 'a' + 10, true
	}
	return 0, false
}

// reverseName returns the in-addr.arpa or ip6.arpa name of prefix p, whose
// length is a multiple of 8 (IPv4) or 4 (IPv6) bits.
func reverseName(p netip.Prefix) string {
	var sb strings.Builder
	a := p.Addr()
	if a.Is4() {
		b := a.As4()
		for i := p.Bits()/8 - 1; i >= 0; i-- {
			sb.WriteString(strconv.Itoa(int(b[i])))
			sb.WriteByte('.')
		}
		sb.WriteString("in-addr.arpa.")
		return sb.String()
	}
	const hex = "0123456789abcdef"
	b := a.As16()
	for k := p.Bits()/4 - 1; k >= 0; k-- {
		v := b[k/2]
		if k%2 == 0 {
			v >>= 4
		}
		sb.WriteByte(hex[v&0xf])
		sb.WriteByte('.')
	}
	sb.WriteString("ip6.arpa.")
	return sb.String()
}

// apexBits returns the length of the reverse zones that cover range r: its
// length rounded up to whole octets (IPv4) or nibbles (IPv6).
func apexBits(r netip.Prefix) int {
	unit := 8
	if r.Addr().Is6() {
		unit = 4
	}
	return (r.Bits() + unit - 1) / unit * unit
}
