package namespaces

import (
	"fmt"
	"os/exec"

	"github.com/vishvananda/netns"
)

// Start starts cmd with every thread of the new process in ns. The process is
// forked from a thread switched into ns, so it is there before its first
// instruction; nothing else of the caller changes namespace.
func Start(cmd *exec.Cmd, ns netns.NsHandle) error {
	err := Do(ns, cmd.Start)
	if err != nil {
		return fmt.Errorf("starting %s in namespace: %w", cmd.Path, err)
	}
	return nil
}
