package daemon

import (
	"context"
	"fmt"
	"net/http"
	"testing"

	"github.com/stretchr/testify/assert"
	"github.com/stretchr/testify/require"

	"github.com/znet/znet/api"
	"github.com/znet/znet/internal/testutil"
)

// TestBadNamesAnswer checks that the daemon, the one place names are
// checked (the HTTP server only parses), answers a bad name in a path
// with the field and the message clients have always had.
func TestBadNamesAnswer(t *testing.T) {
	testutil.GoroutineLeakCheck(t)
	u := newUnit(t, "node1")
	ctx := context.Background()
	tests := []struct {
		name  string
		call  func() error
		field string
		want  string
	}{
		{"reserve", func() error { _, err := u.d.Reserve(ctx, "Shop"); return err }, "name",
			`"Shop" is not a valid name: bad character 'S' at position 0 (allowed: a-z, 0-9, '-')`},
		{"status", func() error { _, err := u.d.Status(ctx, "a_b"); return err }, "name",
			`"a_b" is not a valid name: bad character '_' at position 1 (allowed: a-z, 0-9, '-')`},
		{"workload", func() error { _, err := u.d.Workload(ctx, "shop", "Vm1"); return err }, "workload",
			`"Vm1" is not a valid name: bad character 'V' at position 0 (allowed: a-z, 0-9, '-')`},
		{"remove access", func() error { return u.d.RemoveAccess(ctx, "shop", "-al") }, "peer",
			`"-al" is not a valid name: must not start or end with '-'`},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			status, body := api.StatusOf(tt.call())
			assert.Equal(t, http.StatusBadRequest, status)
			assert.Equal(t, tt.field, body.Field)
			assert.Equal(t, tt.want, body.Message)
		})
	}
}

// TestReservePortNoUDPPort checks that the daemon refuses a listen port
// that is no UDP port with spec's one check, and stores nothing.
func TestReservePortNoUDPPort(t *testing.T) {
	testutil.GoroutineLeakCheck(t)
	u := newUnit(t, "node1")
	ctx := context.Background()
	for _, port := range []int{0, 65536} {
		status, body := api.StatusOf(func() error { _, err := u.d.ReservePort(ctx, "shop", port); return err }())
		assert.Equal(t, http.StatusBadRequest, status)
		assert.Equal(t, "listen_port", body.Field)
		assert.Equal(t, fmt.Sprintf("%d is not a UDP port (1-65535)", port), body.Message)
	}
	list, err := u.d.Networks(ctx)
	require.NoError(t, err)
	assert.Empty(t, list)
}

// TestAddAccessKeyChecked checks that the daemon holds an access peer's
// key to the one key check: a key wg would refuse is refused here too.
func TestAddAccessKeyChecked(t *testing.T) {
	testutil.GoroutineLeakCheck(t)
	u := newUnit(t, "node1")
	ctx := context.Background()
	for key, want := range map[string]string{
		"c2VjcmV0": "is not a base64 WireGuard key of 32 bytes (it decodes to 6 bytes, want 32)",
		"AAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAB=": "is not in canonical base64 (wg refuses it)",
	} {
		_, err := u.d.AddAccess(ctx, "shop", api.AccessRequest{Name: "alice", PublicKey: key})
		status, body := api.StatusOf(err)
		assert.Equal(t, http.StatusBadRequest, status)
		assert.Equal(t, "public_key", body.Field)
		assert.Equal(t, want, body.Message)
	}
}
