package overlay

import (
	"fmt"
	"os"
	"path/filepath"

	"golang.org/x/sys/unix"
)

// DataplaneBinary is the name of the dedicated data-plane program
// (cmd/znetd-dataplane). The userspace backend runs it when it lies next to
// the running executable: it links only the data plane's packages, so each
// of the many data-plane processes maps a third less program text than a
// copy of znetd would. Without it, the running executable itself is run as
// `<exe> dataplane ...`. The name carries "znetd" so that tools looking for
// znetd's processes by command line find the data planes too.
const DataplaneBinary = "znetd-dataplane"

// dataplaneExe returns the program to run as data plane when Options.Exe
// is empty: DataplaneBinary next to the running executable if it is there,
// else the running executable.
func dataplaneExe() (string, error) {
	self, err := os.Executable()
	if err != nil {
		return "", fmt.Errorf("finding data-plane binary: %w", err)
	}
	return dataplaneExeNextTo(self), nil
}

// dataplaneExeNextTo returns DataplaneBinary in the directory of self if it
// is a regular file this process may execute, else self.
func dataplaneExeNextTo(self string) string {
	candidate := filepath.Join(filepath.Dir(self), DataplaneBinary)
	st, err := os.Stat(candidate)
	if err != nil || !st.Mode().IsRegular() || unix.Access(candidate, unix.X_OK) != nil {
		return self
	}
	return candidate
}
