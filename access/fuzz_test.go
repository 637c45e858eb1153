package access

import (
	"encoding/base64"
	"math/rand/v2"
	"net/netip"
	"strconv"
	"strings"
	"testing"

	"github.com/stretchr/testify/assert"
	"github.com/stretchr/testify/require"
)

// FuzzRender checks the round trip Parse(Render(c)) == c for random valid
// configs, drawn from a generator seeded by the fuzz input.
func FuzzRender(f *testing.F) {
	f.Add(uint64(0), uint64(0))           // the first draw
	f.Add(uint64(1), uint64(2))           // another
	f.Add(uint64(1<<63), uint64(1<<62))   // high seeds
	f.Add(uint64(0xdead), uint64(0xbeef)) // and one more
	f.Fuzz(func(t *testing.T, s1, s2 uint64) {
		checkRoundTrip(t, randomConfig(rand.New(rand.NewPCG(s1, s2))))
	})
}

// TestRoundTripRandom runs the FuzzRender property over many draws in every
// plain test run.
func TestRoundTripRandom(t *testing.T) {
	r := rand.New(rand.NewPCG(42, 1))
	for range 3000 {
		checkRoundTrip(t, randomConfig(r))
		if t.Failed() {
			return
		}
	}
}

func checkRoundTrip(t *testing.T, c Config) {
	t.Helper()
	require.NoError(t, c.Validate(), "the generator made an invalid config:\n%s", c.Render())
	text := c.Render()
	got, err := Parse(text)
	require.NoError(t, err, text)
	assert.Equal(t, c, got, text)
}

// FuzzParse checks that Parse never panics, that it refuses only with
// ErrInvalid, and that whatever it accepts is valid and renders to text that
// parses back to the same config.
func FuzzParse(f *testing.F) {
	seeds := []string{
		// The DESIGN.md example and its variant without a private key.
		designConfig().Render(),
		func() string { c := designConfig(); c.PrivateKey = ""; return c.Render() }(),
		// Odd spelling that wg-quick accepts: case, comments, lists over lines.
		"[interface] #x\naddress = 10.0.0.1 fd00::1/64\naddress=10.0.0.2/24\ndns=1.1.1.1 a.b\n[PEER]\npublickey=" + nodeKey +
			"\nallowedips = 10.9.9.9/8,::/0\npersistentkeepalive=off\nendpoint=h:1\n",
		// CRLF, tabs, a trailing comment only.
		"[Interface]\r\n\tMTU = 1280\r\n[Peer]\r\nPublicKey = " + nodeKey + "\r\n#",
		// Refusals: duplicate sections and keys, unknown keys, bad values.
		"[Interface]\n[Interface]\n[Peer]\n",
		"[Interface]\nMTU = 1\nMTU = 2\n",
		"[Interface]\nListenPort = 51820\n[Peer]\nPublicKey = " + nodeKey + "\n",
		"[Peer]\nEndpoint = [::1\n",
		"=\n[\n]\n#\n\x00",
	}
	for _, s := range seeds {
		f.Add(s)
	}
	f.Fuzz(func(t *testing.T, text string) {
		c, err := Parse(text)
		if err != nil {
			require.ErrorIs(t, err, ErrInvalid)
			return
		}
		require.NoError(t, c.Validate())
		again, err := Parse(c.Render())
		require.NoError(t, err, c.Render())
		assert.Equal(t, c, again)
	})
}

// randomConfig draws a valid config: every field set or left out at
// random, lists of 0 to 3 items.
func randomConfig(r *rand.Rand) Config {
	var c Config
	if r.IntN(2) == 0 {
		c.PrivateKey = randomKey(r)
	}
	for range r.IntN(4) {
		for {
			a := randomAddr(r)
			p := netip.PrefixFrom(a, r.IntN(a.BitLen()+1))
			if checkAddress(p, c.Addresses) == nil {
				c.Addresses = append(c.Addresses, p)
				break
			}
		}
	}
	for range r.IntN(4) {
		var d string
		switch r.IntN(3) {
		case 0, 1:
			d = randomAddr(r).String()
		default:
			d = randomName(r)
		}
		if checkDNS(d) == nil {
			c.DNS = append(c.DNS, d)
		}
	}
	if r.IntN(3) > 0 {
		low := minMTU
		for _, p := range c.Addresses {
			if p.Addr().Is6() {
				low = minMTUIPv6
			}
		}
		c.MTU = low + r.IntN(maxUint16-low+1)
	}
	c.PeerPublicKey = randomKey(r)
	port := strconv.Itoa(1 + r.IntN(maxUint16))
	switch r.IntN(4) {
	case 1:
		c.Endpoint = netip.AddrFrom4(randomBytes4(r)).String() + ":" + port
	case 2:
		c.Endpoint = "[" + netip.AddrFrom16(randomBytes16(r)).String() + "]:" + port
	case 3:
		c.Endpoint = randomName(r) + ":" + port
	}
	for range r.IntN(4) {
		a := randomAddr(r)
		p := netip.PrefixFrom(a, r.IntN(a.BitLen()+1)).Masked()
		if checkAllowedIP(p) == nil {
			c.AllowedIPs = append(c.AllowedIPs, p)
		}
	}
	if r.IntN(2) == 0 {
		c.PersistentKeepalive = r.IntN(maxUint16 + 1)
	}
	return c
}

func randomKey(r *rand.Rand) string {
	var b [32]byte
	for i := range b {
		b[i] = byte(r.Uint32())
	}
	return base64.StdEncoding.EncodeToString(b[:])
}

// randomAddr is an IPv4 or IPv6 address, never IPv4-mapped.
func randomAddr(r *rand.Rand) netip.Addr {
	if r.IntN(2) == 0 {
		return netip.AddrFrom4(randomBytes4(r))
	}
	return netip.AddrFrom16(randomBytes16(r)).Unmap()
}

func randomBytes4(r *rand.Rand) [4]byte {
	v := r.Uint32()
	return [4]byte{byte(v >> 24), byte(v >> 16), byte(v >> 8), byte(v)}
}

func randomBytes16(r *rand.Rand) [16]byte {
	var b [16]byte
	for i := range b {
		// Mostly zero bytes, so that "::" compression and short groups show up.
		if r.IntN(3) == 0 {
			b[i] = byte(r.Uint32())
		}
	}
	return b
}

// randomName is a host name of 1 to 3 labels whose last label starts with a
// letter (so it is neither an address nor taken for one).
func randomName(r *rand.Rand) string {
	const first, inner = "abcdefghijklmnopqrstuvwxyzABCDEFGHIJKLMNOPQRSTUVWXYZ", "abcdefghijklmnopqrstuvwxyz0123456789-"
	labels := make([]string, 1+r.IntN(3))
	for i := range labels {
		n := 1 + r.IntN(12)
		var b strings.Builder
		b.WriteByte(first[r.IntN(len(first))])
		for j := 1; j < n; j++ {
			c := inner[r.IntN(len(inner))]
			if j == n-1 && c == '-' {
				c = 'z'
			}
			b.WriteByte(c)
		}
		labels[i] = b.String()
	}
	return strings.Join(labels, ".")
}
