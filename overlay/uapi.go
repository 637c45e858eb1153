package overlay

import (
	"bufio"
	"context"
	"errors"
	"fmt"
	"net"
	"os"
	"strings"
	"syscall"
	"time"

	"github.com/znet/znet/dataplane"
)

// uapiTimeout bounds one question to a data plane's UAPI socket.
const uapiTimeout = 2 * time.Second

// socketPath returns the UAPI socket of ifname.
func socketPath(ifname string) string { return dataplane.UAPISocket(ifname) }

// uapiAnswers sends the UAPI socket of ifname an empty set ("set=1") and
// returns the pid of the process serving it (from SO_PEERCRED) if it
// answers with errno=0 within uapiTimeout (or ctx).
func uapiAnswers(ctx context.Context, ifname string) (int, error) {
	ctx, cancel := context.WithTimeout(ctx, uapiTimeout)
	defer cancel()
	var d net.Dialer
	c, err := d.DialContext(ctx, "unix", socketPath(ifname))
	if err != nil {
		return 0, fmt.Errorf("asking %s: %w", ifname, err)
	}
	defer func() { _ = c.Close() }()
	pid, err := dataplane.PeerPID(c)
	if err != nil {
		return 0, fmt.Errorf("asking %s: %w", ifname, err)
	}
	if dl, ok := ctx.Deadline(); ok {
		if err := c.SetDeadline(dl); err != nil {
			return 0, fmt.Errorf("asking %s: %w", ifname, err)
		}
	}
	// An empty set: the device answers errno=0 after taking its
	// configuration lock, without dumping every peer as get=1 would (3 ms
	// at a thousand peers, at every apply).
	if _, err := c.Write([]byte("set=1\n\n")); err != nil {
		return 0, fmt.Errorf("asking %s: %w", ifname, err)
	}
	sc := bufio.NewScanner(c)
	sc.Buffer(make([]byte, 4096), 1<<20)
	for sc.Scan() {
		if v, ok := strings.CutPrefix(sc.Text(), "errno="); ok {
			if v != "0" {
				return 0, fmt.Errorf("asking %s: errno %s", ifname, v)
			}
			return pid, nil
		}
	}
	if err := sc.Err(); err != nil {
		return 0, fmt.Errorf("asking %s: %w", ifname, err)
	}
	return 0, fmt.Errorf("asking %s: no answer", ifname)
}

// wgctrlErr wraps an error of wgctrl about ifname, turning a missing device
// or a socket nobody listens on into ErrNotFound.
func wgctrlErr(doing, ifname string, err error) error {
	if errors.Is(err, os.ErrNotExist) || errors.Is(err, syscall.ECONNREFUSED) ||
		errors.Is(err, syscall.ENOENT) || errors.Is(err, syscall.ENODEV) {
		return fmt.Errorf("%s %s: %w: %v", doing, ifname, ErrNotFound, err)
	}
	return fmt.Errorf("%s %s: %w", doing, ifname, err)
}
