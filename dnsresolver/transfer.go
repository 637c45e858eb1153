package dnsresolver

import (
	"errors"
	"fmt"
	"net/netip"
	"strings"

	"github.com/miekg/dns"
)

// maxMemberRecords caps the workload names taken from one member.
const maxMemberRecords = 1 << 16

// maxNameAddrs caps the addresses of one name in a member's zone: a
// workload has one of each family, and without a cap a member could send
// a /64's worth for one name (each kept sorted, so also quadratic time).
const maxNameAddrs = 8

// errBadTransfer is returned (wrapped) by transferReader.add for a transfer
// that breaks the protocol.
var errBadTransfer = errors.New("bad transfer")

// transferReader collects the records of a member's transfer zone from the
// answer sections of a transfer's messages: the zone's SOA, then A and AAAA
// records of <workload>.<zone>, then the SOA again. Records of other names,
// types or classes are skipped, and so are addresses the member does not
// own (Member.owns), which are counted.
type transferReader struct {
	cfg     Config
	member  Member
	zone    string // canonical
	started bool   // the first SOA was read
	done    bool   // the closing SOA was read
	serial  uint32
	records map[string]addrs
	foreign int // addresses skipped because m does not own them
}

// newTransferReader returns a reader for the transfer zone of member m of
// the network of cfg.
func newTransferReader(cfg Config, m Member) *transferReader {
	zone := dns.CanonicalName(cfg.localZone(m.ID))
	return &transferReader{cfg: cfg, member: m, zone: zone, records: map[string]addrs{}}
}

// add takes the records of one message.
func (t *transferReader) add(rrs []dns.RR) error {
	for _, rr := range rrs {
		if t.done {
			return wrapBad("records after the closing SOA")
		}
		h := rr.Header()
		owner := dns.CanonicalName(h.Name)
		if soa, ok := rr.(*dns.SOA); ok && owner == t.zone {
			switch {
			case !t.started:
				t.started, t.serial = true, soa.Serial
			case soa.Serial != t.serial:
				return wrapBad("serial changed during the transfer")
			default:
				t.done = true
			}
			continue
		}
		if !t.started {
			return wrapBad("transfer does not start with the SOA of " + t.zone)
		}
		name, ok := strings.CutSuffix(owner, "."+t.zone)
		if !ok || !isLabel(name) || h.Class != dns.ClassINET {
			continue
		}
		var x netip.Addr
		switch rr := rr.(type) {
		case *dns.A:
			x, _ = netip.AddrFromSlice(rr.A)
			x = x.Unmap()
			if !x.Is4() {
				continue
			}
		case *dns.AAAA:
			x, _ = netip.AddrFromSlice(rr.AAAA)
			if !x.Is6() || x.Is4In6() {
				continue
			}
		default:
			continue
		}
		if !t.member.owns(t.cfg, x) {
			t.foreign++
			continue
		}
		a, ok := t.records[name]
		if !ok && len(t.records) >= maxMemberRecords {
			return wrapBad("too many names")
		}
		if len(a.v4)+len(a.v6) >= maxNameAddrs {
			return wrapBad("too many addresses for " + name)
		}
		a.add(x)
		t.records[name] = a
	}
	return nil
}

// wrapBad returns an error wrapping errBadTransfer.
func wrapBad(msg string) error { return fmt.Errorf("%s: %w", msg, errBadTransfer) }
