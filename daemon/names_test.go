package daemon

import (
	"context"
	"net/http"
	"testing"

	"github.com/stretchr/testify/assert"

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
