package apitest

import (
	"context"
	"os"
	"path/filepath"
	"testing"
	"time"

	"github.com/znet/znet/api"
)

// NodeID is the node id Fake validates specs for.
const NodeID = "node1"

// Serve runs an api.Server for svc on a Unix socket in a
// fresh temporary directory and returns the socket's path. The server is
// shut down and the directory removed when the test ends. The directory is
// short on purpose: a socket path must fit in 108 bytes.
func Serve(t testing.TB, svc api.Service) string {
	t.Helper()
	dir, err := os.MkdirTemp("", "znet-api")
	if err != nil {
		t.Fatalf("making a socket directory: %v", err)
	}
	t.Cleanup(func() { _ = os.RemoveAll(dir) })
	path := filepath.Join(dir, "api.sock")
	l, err := api.ListenUnix(path)
	if err != nil {
		t.Fatalf("listening: %v", err)
	}
	srv := api.NewServer(svc, api.ServerOptions{})
	done := make(chan error, 1)
	go func() { done <- srv.Serve(l) }()
	t.Cleanup(func() {
		ctx, cancel := context.WithTimeout(context.Background(), 5*time.Second)
		defer cancel()
		if err := srv.Shutdown(ctx); err != nil {
			t.Errorf("shutting the server down: %v", err)
		}
		if err := <-done; err != nil {
			t.Errorf("serving: %v", err)
		}
	})
	return path
}
