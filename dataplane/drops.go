package dataplane

import (
	"encoding/binary"
	"errors"
	"fmt"
	"io"
	"os"
	"path/filepath"
	"sync/atomic"
	"time"
	"unsafe"

	"golang.org/x/sys/unix"
	"golang.zx2c4.com/wireguard/conn"
)

// SendDrops is what a data plane could not send on the underlay.
type SendDrops struct {
	// TooBig counts the packets the underlay refused as too big (EMSGSIZE):
	// the overlay MTU is above what the route to a peer carries. Every
	// packet of a refused batch counts, since the kernel does not say which
	// one was too big.
	TooBig uint64
	// LastTooBig is when the last refusal happened; zero if never.
	LastTooBig time.Time
}

// dropsSize is the size of a drops file: two native-endian uint64s, the
// TooBig count and LastTooBig in Unix nanoseconds.
const dropsSize = 16

// DropsFile returns where the data plane of ifname counts its drops, in
// the run directory runDir.
func DropsFile(runDir, ifname string) string {
	return filepath.Join(runDir, ifname+".drops")
}

// ReadDrops reads a drops file without talking to the data plane that
// writes it; a missing file is zero.
func ReadDrops(path string) (SendDrops, error) {
	f, err := os.Open(path)
	if errors.Is(err, os.ErrNotExist) {
		return SendDrops{}, nil
	}
	if err != nil {
		return SendDrops{}, err
	}
	defer func() { _ = f.Close() }()
	var buf [dropsSize]byte
	if _, err := io.ReadFull(f, buf[:]); err != nil {
		return SendDrops{}, fmt.Errorf("reading %s: %w", path, err)
	}
	out := SendDrops{TooBig: binary.NativeEndian.Uint64(buf[0:8])}
	if ns := int64(binary.NativeEndian.Uint64(buf[8:16])); ns > 0 {
		out.LastTooBig = time.Unix(0, ns)
	}
	return out, nil
}

// dropCounter counts a data plane's drops in a shared mapping of its drops
// file: an atomic add per refused batch, no system call, and the daemon
// reads the file whenever it likes. The file is kept across restarts of
// the data plane (counts go on), never truncated: truncating a mapped
// file under a reader would fault it.
type dropCounter struct {
	mem    []byte
	tooBig *uint64
	last   *int64
}

// openDropCounter maps path (mode 0600, created if missing).
func openDropCounter(path string) (*dropCounter, error) {
	f, err := os.OpenFile(path, os.O_RDWR|os.O_CREATE, 0o600)
	if err != nil {
		return nil, err
	}
	defer func() { _ = f.Close() }() // the mapping outlives the fd
	st, err := f.Stat()
	if err != nil {
		return nil, err
	}
	if st.Size() < dropsSize {
		if err := f.Truncate(dropsSize); err != nil {
			return nil, err
		}
	}
	mem, err := unix.Mmap(int(f.Fd()), 0, dropsSize, unix.PROT_READ|unix.PROT_WRITE, unix.MAP_SHARED)
	if err != nil {
		return nil, fmt.Errorf("mapping %s: %w", path, err)
	}
	// A mapping is page aligned, so both words are 8-byte aligned as the
	// atomic operations need.
	return &dropCounter{
		mem:    mem,
		tooBig: (*uint64)(unsafe.Pointer(&mem[0])),
		last:   (*int64)(unsafe.Pointer(&mem[8])),
	}, nil
}

// addTooBig counts n packets refused as too big.
func (c *dropCounter) addTooBig(n int) {
	atomic.AddUint64(c.tooBig, uint64(n))
	atomic.StoreInt64(c.last, time.Now().UnixNano())
}

// close unmaps the counter; it must not be used afterwards.
func (c *dropCounter) close() error { return unix.Munmap(c.mem) }

// countingBind is a conn.Bind that counts the packets the underlay refuses
// as too big; wireguard-go only logs a failed send, and not every one.
type countingBind struct {
	conn.Bind
	drops *dropCounter
}

// Send sends bufs and counts them when the kernel refused them as too big.
func (b *countingBind) Send(bufs [][]byte, ep conn.Endpoint) error {
	err := b.Bind.Send(bufs, ep)
	if err != nil && errors.Is(err, unix.EMSGSIZE) {
		b.drops.addTooBig(len(bufs))
	}
	return err
}
