package dataplane

import (
	"golang.zx2c4.com/wireguard/conn"

	"github.com/znet/znet/internal/idlemem"
)

// busyBind is a conn.Bind that counts every batch of packets it sends or
// receives in procs, so that the data plane runs on one P until it
// carries traffic (idlemem.OneProc). The bind sees both directions: what
// the device reads from its TUN leaves through Send, what it writes there
// came through a receive function.
type busyBind struct {
	conn.Bind
	procs *idlemem.Procs
}

// Open opens the wrapped Bind and counts what its receive functions
// return.
func (b *busyBind) Open(port uint16) ([]conn.ReceiveFunc, uint16, error) {
	fns, actual, err := b.Bind.Open(port)
	if err != nil {
		// As is: wireguard-go may compare it (ErrBindAlreadyOpen).
		return fns, actual, err
	}
	counted := make([]conn.ReceiveFunc, len(fns))
	for i, fn := range fns {
		counted[i] = b.counting(fn)
	}
	return counted, actual, nil
}

// counting returns fn counting each batch it returns.
func (b *busyBind) counting(fn conn.ReceiveFunc) conn.ReceiveFunc {
	return func(packets [][]byte, sizes []int, eps []conn.Endpoint) (int, error) {
		n, err := fn(packets, sizes, eps)
		if n > 0 {
			b.procs.Batch()
		}
		return n, err
	}
}

// Send counts bufs as one batch and sends it.
func (b *busyBind) Send(bufs [][]byte, ep conn.Endpoint) error {
	b.procs.Batch()
	return b.Bind.Send(bufs, ep)
}
