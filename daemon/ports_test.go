package daemon

import (
	"net"
	"os"
	"path/filepath"
	"testing"

	"github.com/stretchr/testify/assert"
	"github.com/stretchr/testify/require"

	"github.com/znet/znet/internal/testutil"
	"github.com/znet/znet/internal/testutil/nstest"
	"github.com/znet/znet/namespaces"
)

func TestReservePortRange(t *testing.T) {
	for _, tc := range []struct {
		name, before, after string
	}{
		{"empty", "\n", "51820-53819\n"},
		{"others kept", "22,8000-8080\n", "22,8000-8080,51820-53819\n"},
		{"reserved already", "51820-53819\n", "51820-53819\n"},
		{"inside a wider entry", "50000-60000\n", "50000-60000\n"},
		{"covered by two entries", "51820-52000,52001-53819\n", "51820-52000,52001-53819\n"},
		{"partly reserved", "51820-52819\n", "51820-52819,51820-53819\n"},
	} {
		t.Run(tc.name, func(t *testing.T) {
			path := filepath.Join(t.TempDir(), "ip_local_reserved_ports")
			require.NoError(t, os.WriteFile(path, []byte(tc.before), 0o644))
			require.NoError(t, ReservePortRange(path, 51820, 53819))
			b, err := os.ReadFile(path)
			require.NoError(t, err)
			assert.Equal(t, tc.after, string(b))
		})
	}
	t.Run("garbage is an error and changes nothing", func(t *testing.T) {
		path := filepath.Join(t.TempDir(), "ip_local_reserved_ports")
		require.NoError(t, os.WriteFile(path, []byte("x-y\n"), 0o644))
		require.Error(t, ReservePortRange(path, 51820, 53819))
		b, err := os.ReadFile(path)
		require.NoError(t, err)
		assert.Equal(t, "x-y\n", string(b))
	})
}

// TestReservedPortsAreNotEphemeral shows what the reservation is for, in a
// throwaway namespace whose ephemeral range is narrowed to 11 ports of
// which 10 are reserved: every ephemeral UDP socket gets the eleventh.
func TestReservedPortsAreNotEphemeral(t *testing.T) {
	testutil.SkipUnlessRoot(t)
	ns := nstest.CreateNS(t, "zt-ports-"+testutil.RandomHex(t, 3))
	err := namespaces.Do(ns, func() error {
		if err := os.WriteFile("/proc/sys/net/ipv4/ip_local_port_range", []byte("51820 51830"), 0o644); err != nil {
			return err
		}
		if err := ReservePortRange(ReservedPortsSysctl, 51820, 51829); err != nil {
			return err
		}
		for range 5 {
			c, err := net.ListenUDP("udp", &net.UDPAddr{})
			if err != nil {
				return err
			}
			port := c.LocalAddr().(*net.UDPAddr).Port
			_ = c.Close()
			assert.Equal(t, 51830, port, "an ephemeral socket took a reserved port")
		}
		// Bound by number, a reserved port is still there for a data plane.
		c, err := net.ListenUDP("udp", &net.UDPAddr{Port: 51825})
		if err != nil {
			return err
		}
		return c.Close()
	})
	require.NoError(t, err)
}
