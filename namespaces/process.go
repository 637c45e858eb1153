package namespaces

import (
	"fmt"
	"os/exec"

	"github.com/vishvananda/netns"
)

// Start starts cmd with every thread of the new process in ns. The process is
// forked from a thread switched into ns, so it is there before its first
// instruction; nothing else of the caller changes namespace. The caller waits
// for cmd as usual.
func Start(cmd *exec.Cmd, ns netns.NsHandle) error {
	if err := Do(ns, cmd.Start); err != nil {
		return fmt.Errorf("starting %s in namespace: %w", cmd.Path, err)
	}
	return nil
}
