// Package linkname holds the one rule for a Linux interface name that the
// daemon (a workload's interface), the overlay (a WireGuard device, whose
// name is also part of file names) and the firewall (the links its rules
// match) all check: what the kernel's dev_valid_name accepts, and no NUL.
package linkname

import (
	"errors"
	"fmt"
	"strings"
)

// MaxLen is the longest interface name: IFNAMSIZ (16) less the NUL.
const MaxLen = 15

// Check returns nil for a valid interface name, else an error saying what
// is wrong, to follow the name in a message ("is empty", ...).
func Check(name string) error {
	switch {
	case name == "":
		return errors.New("is empty")
	case len(name) > MaxLen:
		return fmt.Errorf("is longer than %d bytes", MaxLen)
	case name == "." || name == "..":
		return errors.New(`is "." or ".."`)
	case strings.ContainsAny(name, "/:\x00 \t\n\v\f\r"):
		return errors.New("has a forbidden character ('/', ':', NUL or white space)")
	}
	return nil
}
