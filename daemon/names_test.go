package daemon

import (
	"context"
	"net/http"
	"testing"

	"github.com/stretchr/testify/assert"
	"github.com/stretchr/testify/require"

	"github.com/znet/znet/api"
	"github.com/znet/znet/internal/testutil"
)

// TestBadInputAnswers checks that the daemon, the one place names, listen
// ports and access peers' keys are checked (the HTTP server only parses),
// answers bad ones with the field and the message of the one check of
// each (api.CheckName, spec.CheckListenPort, spec.CheckKey), and stores
// nothing.
func TestBadInputAnswers(t *testing.T) {
	testutil.GoroutineLeakCheck(t)
	u := newUnit(t, "node1")
	ctx := context.Background()
	addAccess := func(key string) func() error {
		return func() error {
			_, err := u.d.AddAccess(ctx, "shop", api.AccessRequest{Name: "alice", PublicKey: key})
			return err
		}
	}
	tests := []struct {
		name  string
		call  func() error
		field string
		want  string
	}{
		{"reserve: name", func() error { _, err := u.d.Reserve(ctx, "Shop"); return err }, "name",
			`"Shop" is not a valid name: bad character 'S' at position 0 (allowed: a-z, 0-9, '-')`},
		{"status: name", func() error { _, err := u.d.Status(ctx, "a_b"); return err }, "name",
			`"a_b" is not a valid name: bad character '_' at position 1 (allowed: a-z, 0-9, '-')`},
		{"workload: name", func() error { _, err := u.d.Workload(ctx, "shop", "Vm1"); return err }, "workload",
			`"Vm1" is not a valid name: bad character 'V' at position 0 (allowed: a-z, 0-9, '-')`},
		{"remove access: name", func() error { return u.d.RemoveAccess(ctx, "shop", "-al") }, "peer",
			`"-al" is not a valid name: must not start or end with '-'`},
		{"reserve: port 0", func() error { _, err := u.d.ReservePort(ctx, "shop", 0); return err }, "listen_port",
			"0 is not a UDP port (1-65535)"},
		{"reserve: port 65536", func() error { _, err := u.d.ReservePort(ctx, "shop", 65536); return err }, "listen_port",
			"65536 is not a UDP port (1-65535)"},
		{"add access: short key", addAccess("c2VjcmV0"), "public_key",
			"is not a base64 WireGuard key of 32 bytes (it decodes to 6 bytes, want 32)"},
		// wg refuses a key whose padding bits are set: so does the daemon.
		{"add access: key not canonical", addAccess("AAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAB="), "public_key",
			"is not in canonical base64 (wg refuses it)"},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			status, body := api.StatusOf(tt.call())
			assert.Equal(t, http.StatusBadRequest, status)
			assert.Equal(t, tt.field, body.Field)
			assert.Equal(t, tt.want, body.Message)
		})
	}
	list, err := u.d.Networks(ctx)
	require.NoError(t, err)
	assert.Empty(t, list, "nothing was reserved")
}
