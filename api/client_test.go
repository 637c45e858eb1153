package api_test

import (
	"context"
	"errors"
	"fmt"
	"net"
	"path/filepath"
	"testing"
	"time"

	"github.com/stretchr/testify/assert"
	"github.com/stretchr/testify/require"

	"github.com/znet/znet/api"
	"github.com/znet/znet/spec"
)

// TestServiceErrors checks that the service's errors cross the wire with
// their status, kind, field and message.
func TestServiceErrors(t *testing.T) {
	tests := []struct {
		name        string
		method      string
		err         error
		call        func(ctx context.Context, c *api.Client) error
		wantKind    error
		wantField   string
		wantMessage string
	}{
		{
			name: "not found", method: "Network",
			err:      api.NotFound("name", "no network shop on node node1"),
			call:     func(ctx context.Context, c *api.Client) error { _, err := c.Network(ctx, "shop"); return err },
			wantKind: api.ErrNotFound, wantField: "name", wantMessage: "no network shop on node node1",
		},
		{
			name: "conflict", method: "Apply",
			err: api.Conflict("generation", "2 is older than the applied generation 3"),
			call: func(ctx context.Context, c *api.Client) error {
				_, err := c.ApplyRaw(ctx, []byte(`{"name":"shop","generation":2,"ip_range":"10.20.0.0/16","nodes":[{"id":"node1","subnet":"10.20.1.0/24"}]}`))
				return err
			},
			wantKind: api.ErrConflict, wantField: "generation", wantMessage: "2 is older than the applied generation 3",
		},
		{
			name: "spec field error", method: "Attach",
			err: &spec.FieldError{Field: "ipv4", Reason: "10.9.9.9 is outside 10.20.1.0/24"},
			call: func(ctx context.Context, c *api.Client) error {
				_, err := c.Attach(ctx, "shop", api.AttachRequest{Name: "web", NetNS: "/run/netns/web"})
				return err
			},
			wantKind: api.ErrInvalid, wantField: "ipv4", wantMessage: "10.9.9.9 is outside 10.20.1.0/24",
		},
		{
			name: "wrapped error keeps its context", method: "Detach",
			err:      fmt.Errorf("detaching: %w", api.NotFound("workload", "no workload web in shop")),
			call:     func(ctx context.Context, c *api.Client) error { return c.Detach(ctx, "shop", "web") },
			wantKind: api.ErrNotFound, wantField: "workload", wantMessage: "detaching: workload: no workload web in shop",
		},
		{
			name: "bare sentinel", method: "DeleteNetwork",
			err:      fmt.Errorf("network shop has workloads: %w", api.ErrConflict),
			call:     func(ctx context.Context, c *api.Client) error { return c.DeleteNetwork(ctx, "shop", false) },
			wantKind: api.ErrConflict, wantMessage: "network shop has workloads: conflict",
		},
		{
			name: "internal error", method: "Status",
			err:      errors.New("reading the device: permission denied"),
			call:     func(ctx context.Context, c *api.Client) error { _, err := c.Status(ctx, ""); return err },
			wantKind: nil, wantMessage: "reading the device: permission denied",
		},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			fake, client, _ := newFixture(t)
			fake.SetErr(tt.method, tt.err)
			err := tt.call(t.Context(), client)
			require.Error(t, err)
			var ae *api.Error
			require.ErrorAs(t, err, &ae)
			assert.Equal(t, tt.wantField, ae.Field)
			assert.Equal(t, tt.wantMessage, ae.Message)
			if tt.wantKind != nil {
				assert.ErrorIs(t, err, tt.wantKind)
			}
			for _, other := range []error{api.ErrInvalid, api.ErrNotFound, api.ErrConflict} {
				if other != tt.wantKind {
					assert.NotErrorIs(t, err, other)
				}
			}
			assert.Len(t, fake.Calls(), 1)
		})
	}
}

func TestClientWithoutDaemon(t *testing.T) {
	dir := t.TempDir()
	stale := filepath.Join(dir, "stale.sock")
	l, err := net.Listen("unix", stale)
	require.NoError(t, err)
	l.(*net.UnixListener).SetUnlinkOnClose(false)
	require.NoError(t, l.Close())

	for _, socket := range []string{filepath.Join(dir, "missing.sock"), stale} {
		t.Run(filepath.Base(socket), func(t *testing.T) {
			_, err := api.NewClient(socket).Networks(t.Context())
			require.Error(t, err)
			assert.Contains(t, err.Error(), socket)
			assert.Contains(t, err.Error(), "is znetd running?")
			var ae *api.Error
			assert.False(t, errors.As(err, &ae), "not an API answer")
		})
	}
}

func TestClientDeadline(t *testing.T) {
	checkGoroutines(t)
	// A listener that accepts but never answers.
	dir := t.TempDir()
	l, err := net.Listen("unix", filepath.Join(dir, "mute.sock"))
	require.NoError(t, err)
	defer func() { _ = l.Close() }()
	ctx, cancel := context.WithTimeout(t.Context(), 50*time.Millisecond)
	defer cancel()
	_, err = api.NewClient(filepath.Join(dir, "mute.sock")).Networks(ctx)
	require.ErrorIs(t, err, context.DeadlineExceeded)
}
