package dataplane

import (
	"golang.zx2c4.com/wireguard/tun"

	"github.com/znet/znet/internal/idlemem"
)

// busyTUN is a tun.Device that counts every batch of packets the data
// plane reads from or writes to its TUN in procs, so that the data plane
// runs on one P until it carries traffic (idlemem.OneProc). The TUN sees
// both directions of the network's traffic: what leaves for a peer is
// read from it, what a peer sent is written to it once WireGuard has
// authenticated it. Counted at the UDP sockets instead (the first
// design), any datagram to the public port counted, WireGuard or not:
// ~512 junk datagrams in a second from anyone on the underlay took an
// idle data plane to all CPUs and ended its memory bound
// (TestDataplaneJunkStaysOnOneProc).
type busyTUN struct {
	tun.Device
	procs *idlemem.Procs
}

// Read reads a batch from the TUN and counts it.
func (t *busyTUN) Read(bufs [][]byte, sizes []int, offset int) (int, error) {
	n, err := t.Device.Read(bufs, sizes, offset)
	if n > 0 {
		t.procs.Batch()
	}
	return n, err
}

// Write counts bufs as one batch and writes it to the TUN.
func (t *busyTUN) Write(bufs [][]byte, offset int) (int, error) {
	t.procs.Batch()
	return t.Device.Write(bufs, offset)
}
