package dataplane

import (
	"fmt"
	"os"
	"path/filepath"

	"golang.org/x/sys/unix"
)

// Binary is the name of the dedicated data-plane program
// (cmd/znetd-dataplane). The userspace backend runs it when it lies next to
// the running executable: it links only the data plane's packages, so each
// of the many data-plane processes maps a third less program text than a
// copy of znetd would. Without it, the running executable itself is run as
// `<exe> dataplane ...`. The name carries "znetd" so that tools looking for
// znetd's processes by command line find the data planes too.
const Binary = "znetd-dataplane"

// Exe returns the program to run as data plane when Options.Exe
// is empty: Binary next to the running executable if it is there,
// else the running executable.
func Exe() (string, error) {
	self, err := os.Executable()
	if err != nil {
		return "", fmt.Errorf("finding data-plane binary: %w", err)
	}
	return exeNextTo(self), nil
}

// exeNextTo returns Binary in the directory of self if it
// is a regular file this process may execute, else self.
func exeNextTo(self string) string {
	candidate := filepath.Join(filepath.Dir(self), Binary)
	st, err := os.Stat(candidate)
	if err != nil || !st.Mode().IsRegular() || unix.Access(candidate, unix.X_OK) != nil {
		return self
	}
	return candidate
}
