package firewall

import (
	"encoding/binary"
	"fmt"
	"net"
	"net/netip"
	"strings"

	"github.com/google/nftables/binaryutil"
	"github.com/google/nftables/expr"
	"golang.org/x/sys/unix"
)

// match is one condition of a rule: its text and the expressions that test
// it. Each match loads into register 1 and compares, so matches compose by
// concatenation (every match must hold).
type match struct {
	text  string
	exprs []expr.Any
}

// reg is the register every match loads into.
const reg = 1

// EtherTypes of the frames the bridge table looks at.
const (
	etherTypeIPv4 = unix.ETH_P_IP
	etherTypeARP  = unix.ETH_P_ARP
	etherTypeIPv6 = unix.ETH_P_IPV6
)

// ICMPv6 types that only routers send, and neighbour advertisements.
const (
	icmpv6RouterAdvert   = 134
	icmpv6NeighborAdvert = 136
	icmpv6Redirect       = 137
)

// linkLocal is fe80::/10, the IPv6 link-local prefix.
var linkLocal = netip.MustParsePrefix("fe80::/10")

// ifName pads name with NULs to IFNAMSIZ, as the kernel stores it.
func ifName(name string) []byte {
	b := make([]byte, ifNameSize)
	copy(b, name)
	return b
}

// metaEq matches a meta key equal to data.
func metaEq(key expr.MetaKey, data []byte, text string) match {
	return match{text: text, exprs: []expr.Any{
		&expr.Meta{Key: key, Register: reg},
		&expr.Cmp{Op: expr.CmpOpEq, Register: reg, Data: data},
	}}
}

// iifname matches packets that came in on interface name.
func iifname(name string) match {
	return metaEq(expr.MetaKeyIIFNAME, ifName(name), fmt.Sprintf("iifname %q", name))
}

// oifname matches packets that go out on interface name.
func oifname(name string) match {
	return metaEq(expr.MetaKeyOIFNAME, ifName(name), fmt.Sprintf("oifname %q", name))
}

// l4proto matches the transport protocol (after IPv6 extension headers).
func l4proto(proto byte, name string) match {
	return metaEq(expr.MetaKeyL4PROTO, []byte{proto}, "meta l4proto "+name)
}

// nfproto matches packets of one IP family in an inet table (ipv4 or ipv6),
// which must come before matching an address of that family.
func nfproto(family byte, name string) match {
	return metaEq(expr.MetaKeyNFPROTO, []byte{family}, "meta nfproto "+name)
}

// daddrIn matches packets (inet family) sent into p.
func daddrIn(p netip.Prefix) match { return inetAddr("daddr", p, false) }

// saddr matches IPv4 or IPv6 packets (inet family) sent from a.
func saddr(a netip.Addr) match { return inetAddr("saddr", single(a), false) }

// saddrIsNot matches packets (inet family) of a's family not sent from a.
func saddrIsNot(a netip.Addr) match { return inetAddr("saddr", single(a), true) }

// inetAddr matches IPv4 or IPv6 packets (inet family), by p's family,
// whose address dir ("saddr" or "daddr") is in p, or with neq is not.
func inetAddr(dir string, p netip.Prefix, neq bool) match {
	m, text, off := nfproto(unix.NFPROTO_IPV4, "ipv4"), "ip "+dir, uint32(12)
	if dir == "daddr" {
		off = 16
	}
	if p.Addr().Is6() {
		m, text, off = nfproto(unix.NFPROTO_IPV6, "ipv6"), "ip6 "+dir, 8
		if dir == "daddr" {
			off = 24
		}
	}
	d := field(text, expr.PayloadBaseNetworkHeader, off, p, neq)
	return match{text: m.text + " " + d.text, exprs: append(m.exprs, d.exprs...)}
}

// daddrLocal matches packets addressed to this namespace itself (the
// gateway), by a route lookup: in prerouting, before the kernel's own.
func daddrLocal() match {
	return match{text: "fib daddr type local", exprs: []expr.Any{
		&expr.Fib{Register: reg, FlagDADDR: true, ResultADDRTYPE: true},
		&expr.Cmp{Op: expr.CmpOpEq, Register: reg, Data: binaryutil.NativeEndian.PutUint32(unix.RTN_LOCAL)},
	}}
}

// daddrVia matches packets whose route (looked up in prerouting, before
// the kernel's own) leaves through interface name.
func daddrVia(name string) match {
	return match{text: fmt.Sprintf("fib daddr oifname %q", name), exprs: []expr.Any{
		&expr.Fib{Register: reg, FlagDADDR: true, ResultOIFNAME: true},
		&expr.Cmp{Op: expr.CmpOpEq, Register: reg, Data: ifName(name)},
	}}
}

// notrack exempts the packet from connection tracking. It is a statement:
// the packet goes on to the next rule.
var notrack = match{text: "notrack", exprs: []expr.Any{&expr.Notrack{}}}

// ctState matches packets whose conntrack state is any of bits; names are
// the states' names in the same order.
func ctState(bits uint32, names ...string) match {
	return match{text: "ct state " + strings.Join(names, ","), exprs: []expr.Any{
		&expr.Ct{Key: expr.CtKeySTATE, Register: reg},
		&expr.Bitwise{
			SourceRegister: reg, DestRegister: reg, Len: 4,
			Mask: binaryutil.NativeEndian.PutUint32(bits),
			Xor:  binaryutil.NativeEndian.PutUint32(0),
		},
		&expr.Cmp{Op: expr.CmpOpNeq, Register: reg, Data: binaryutil.NativeEndian.PutUint32(0)},
	}}
}

// dport matches a UDP or TCP destination port.
func dport(proto byte, name string, port uint16) match {
	m := l4proto(proto, name)
	m.text = fmt.Sprintf("%s dport %d", name, port)
	m.exprs = append(m.exprs,
		&expr.Payload{DestRegister: reg, Base: expr.PayloadBaseTransportHeader, Offset: 2, Len: 2},
		&expr.Cmp{Op: expr.CmpOpEq, Register: reg, Data: binary.BigEndian.AppendUint16(nil, port)},
	)
	return m
}

// etherType matches frames of one EtherType (bridge family). The link
// header is read as sent, so a VLAN-tagged frame has EtherType 0x8100 and
// matches none of the types the port chains accept.
func etherType(t uint16, name string) match {
	return match{text: "ether type " + name, exprs: []expr.Any{
		&expr.Payload{DestRegister: reg, Base: expr.PayloadBaseLLHeader, Offset: 12, Len: 2},
		&expr.Cmp{Op: expr.CmpOpEq, Register: reg, Data: binary.BigEndian.AppendUint16(nil, t)},
	}}
}

// field matches a header field of the packet against a prefix: equal to it
// (or, with neq, different from it). A full-length prefix compares the
// whole field; a shorter one masks the field first.
func field(text string, base expr.PayloadBase, offset uint32, p netip.Prefix, neq bool) match {
	addr := p.Addr().AsSlice()
	op, rel := expr.CmpOpEq, ""
	if neq {
		op, rel = expr.CmpOpNeq, "!= "
	}
	shown := p.String()
	if p.IsSingleIP() {
		shown = p.Addr().String()
	}
	m := match{text: text + " " + rel + shown, exprs: []expr.Any{
		&expr.Payload{DestRegister: reg, Base: base, Offset: offset, Len: uint32(len(addr))},
	}}
	if !p.IsSingleIP() {
		m.exprs = append(m.exprs, &expr.Bitwise{
			SourceRegister: reg, DestRegister: reg, Len: uint32(len(addr)),
			Mask: prefixMask(p), Xor: make([]byte, len(addr)),
		})
	}
	m.exprs = append(m.exprs, &expr.Cmp{Op: op, Register: reg, Data: addr})
	return m
}

// prefixMask returns the network mask of p as bytes.
func prefixMask(p netip.Prefix) []byte {
	mask := make([]byte, p.Addr().BitLen()/8)
	for i := range p.Bits() {
		mask[i/8] |= 0x80 >> (i % 8)
	}
	return mask
}

// single returns the one-address prefix of a.
func single(a netip.Addr) netip.Prefix { return netip.PrefixFrom(a, a.BitLen()) }

// ipSaddr matches IPv4 packets from a (the caller matches the EtherType).
func ipSaddr(a netip.Addr) match {
	return field("ip saddr", expr.PayloadBaseNetworkHeader, 12, single(a), false)
}

// ip6Saddr matches IPv6 packets from p (the caller matches the EtherType).
func ip6Saddr(p netip.Prefix) match {
	return field("ip6 saddr", expr.PayloadBaseNetworkHeader, 8, p, false)
}

// arpSaddr matches ARP packets whose sender IP is a. The offset assumes
// Ethernet and IPv4 (6- and 4-byte addresses); the kernel drops ARP with
// other lengths on an Ethernet device.
func arpSaddr(a netip.Addr) match {
	return field("arp saddr ip", expr.PayloadBaseNetworkHeader, 14, single(a), false)
}

// bytesNot matches a header field that differs from data.
func bytesNot(text string, base expr.PayloadBase, offset uint32, data []byte) match {
	return match{text: text, exprs: []expr.Any{
		&expr.Payload{DestRegister: reg, Base: base, Offset: offset, Len: uint32(len(data))},
		&expr.Cmp{Op: expr.CmpOpNeq, Register: reg, Data: data},
	}}
}

// etherSaddrNot matches frames whose source MAC is not mac.
func etherSaddrNot(mac net.HardwareAddr) match {
	return bytesNot("ether saddr != "+mac.String(), expr.PayloadBaseLLHeader, 6, mac)
}

// arpShaNot matches ARP packets whose sender hardware address is not mac
// (Ethernet and IPv4 lengths assumed, as in arpSaddr).
func arpShaNot(mac net.HardwareAddr) match {
	return bytesNot("arp saddr ether != "+mac.String(), expr.PayloadBaseNetworkHeader, 8, mac)
}

// eui64LinkLocal returns the IPv6 link-local address the kernel gives an
// interface with MAC mac (addr_gen_mode eui64, the default): fe80:: with
// the MAC split by ff:fe and its universal/local bit flipped.
func eui64LinkLocal(mac net.HardwareAddr) netip.Addr {
	var a [16]byte
	a[0], a[1] = 0xfe, 0x80
	a[8], a[9], a[10] = mac[0]^0x02, mac[1], mac[2]
	a[11], a[12] = 0xff, 0xfe
	a[13], a[14], a[15] = mac[3], mac[4], mac[5]
	return netip.AddrFrom16(a)
}

// icmpv6Type matches ICMPv6 messages of type typ.
func icmpv6Type(typ byte, name string) match {
	m := l4proto(unix.IPPROTO_ICMPV6, "ipv6-icmp")
	m.text = "icmpv6 type " + name
	m.exprs = append(m.exprs,
		&expr.Payload{DestRegister: reg, Base: expr.PayloadBaseTransportHeader, Offset: 0, Len: 1},
		&expr.Cmp{Op: expr.CmpOpEq, Register: reg, Data: []byte{typ}},
	)
	return m
}

// ndTargetNot matches neighbour discovery messages (NS, NA) whose target
// address is not in p; the target follows 4 reserved bytes.
func ndTargetNot(p netip.Prefix) match {
	return field("icmpv6 target", expr.PayloadBaseTransportHeader, 8, p, true)
}

// tcpFlagSYN is the SYN bit of the TCP flags byte (transport offset 13).
const tcpFlagSYN = 0x02

// clampMSS lowers the MSS option of TCP SYNs (and SYN-ACKs) to what the
// path carries: the kernel's "rt mtu" is the smaller MTU of the route to
// the packet's destination and the route back to its source, less the IP
// and TCP headers, and it only ever lowers the option. It is a statement, not a verdict: the
// packet goes on to the next rule.
func clampMSS() match {
	return match{text: "tcp flags syn tcp option maxseg size set rt mtu", exprs: []expr.Any{
		&expr.Meta{Key: expr.MetaKeyL4PROTO, Register: reg},
		&expr.Cmp{Op: expr.CmpOpEq, Register: reg, Data: []byte{unix.IPPROTO_TCP}},
		&expr.Payload{DestRegister: reg, Base: expr.PayloadBaseTransportHeader, Offset: 13, Len: 1},
		&expr.Bitwise{SourceRegister: reg, DestRegister: reg, Len: 1, Mask: []byte{tcpFlagSYN}, Xor: []byte{0}},
		&expr.Cmp{Op: expr.CmpOpNeq, Register: reg, Data: []byte{0}},
		&expr.Rt{Register: reg, Key: expr.RtTCPMSS},
		&expr.Byteorder{SourceRegister: reg, DestRegister: reg, Op: expr.ByteorderHton, Len: 2, Size: 2},
		// Option kind 2 (maximum segment size), its 2-byte value at
		// offset 2 of the option.
		&expr.Exthdr{Op: expr.ExthdrOpTcpopt, Type: 2, Offset: 2, Len: 2, SourceRegister: reg},
	}}
}

// verdict returns the expression and text of a terminal verdict.
func verdict(kind expr.VerdictKind, chain string) match {
	v := &expr.Verdict{Kind: kind, Chain: chain}
	var text string
	switch kind {
	case expr.VerdictAccept:
		text = "accept"
	case expr.VerdictDrop:
		text = "drop"
	case expr.VerdictJump:
		text = "jump " + chain
	case expr.VerdictReturn:
		text = "return"
	default:
		panic(fmt.Sprintf("firewall: verdict %d not used", kind))
	}
	return match{text: text, exprs: []expr.Any{v}}
}
