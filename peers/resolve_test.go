package peers

import (
	"context"
	"errors"
	"net"
	"testing"

	"github.com/stretchr/testify/assert"
	"github.com/stretchr/testify/require"
)

// offlineResolver never reaches a DNS server: only the hosts file answers.
func offlineResolver() *net.Resolver {
	return &net.Resolver{
		PreferGo: true,
		Dial: func(context.Context, string, string) (net.Conn, error) {
			return nil, errors.New("no DNS in tests")
		},
	}
}

func TestNetResolver(t *testing.T) {
	resolve := NetResolver(offlineResolver())

	addr, err := resolve(context.Background(), "localhost")
	require.NoError(t, err)
	assert.True(t, addr.IsLoopback(), "localhost resolved to %s", addr)
	assert.False(t, addr.Is4In6())

	_, err = resolve(context.Background(), "no-such-host.invalid")
	require.Error(t, err)
	assert.ErrorContains(t, err, "looking up no-such-host.invalid")
}
