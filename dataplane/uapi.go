package dataplane

import (
	"bufio"
	"errors"
	"io"
	"log/slog"
	"net"
	"strconv"
	"sync"

	"golang.zx2c4.com/wireguard/device"
	"golang.zx2c4.com/wireguard/ipc"
)

// uapiDevice is what a UAPI connection needs of a *device.Device.
type uapiDevice interface {
	IpcGetOperation(w io.Writer) error
	IpcSetOperation(r io.Reader) error
}

// uapiBuffers holds the buffered reader and writer of UAPI connections
// for reuse. device.IpcHandle makes 8 KiB of them per connection, and
// znetd opens one per read (every status): on an idle data plane, whose
// collector is held until there is garbage (idlemem), that was 8 KiB of
// fresh pages made resident per read.
var uapiBuffers = sync.Pool{New: func() any {
	return bufio.NewReadWriter(bufio.NewReaderSize(nil, 4096), bufio.NewWriterSize(nil, 4096))
}}

// handleUAPI serves the UAPI connection c of dev as device.IpcHandle does
// (get=1 and set=1 until c ends, each answered with its errno), but with
// reused buffers, and logs a failed operation to log.
func handleUAPI(log *slog.Logger, dev uapiDevice, c net.Conn) {
	defer func() { _ = c.Close() }()
	rw := uapiBuffers.Get().(*bufio.ReadWriter)
	rw.Reader.Reset(c)
	rw.Writer.Reset(c)
	defer func() {
		rw.Reader.Reset(nil) // drops c
		rw.Writer.Reset(nil)
		uapiBuffers.Put(rw)
	}()
	for {
		op, err := rw.ReadString('\n')
		if err != nil {
			return
		}
		switch op {
		case "set=1\n":
			err = dev.IpcSetOperation(rw.Reader)
		case "get=1\n":
			var next byte
			if next, err = rw.ReadByte(); err != nil {
				return
			}
			if next != '\n' {
				err = errUAPITrailing
				break
			}
			err = dev.IpcGetOperation(rw.Writer)
		default:
			log.Error("invalid UAPI operation", "op", op)
			return
		}
		if err != nil {
			log.Error("UAPI operation failed", "op", op[:len(op)-1], "err", err)
		}
		_, _ = rw.WriteString("errno=")
		_, _ = rw.WriteString(strconv.FormatInt(uapiErrno(err), 10))
		_, _ = rw.WriteString("\n\n")
		if rw.Flush() != nil {
			return
		}
	}
}

// errUAPITrailing is a get=1 not followed by its empty line.
var errUAPITrailing = errors.New("trailing character in UAPI get")

// uapiErrno returns the errno answered for err, as device.IpcHandle does:
// 0 for none, the code of a *device.IPCError, EINVAL for a malformed get,
// and the protocol's "unknown" code for anything else.
func uapiErrno(err error) int64 {
	var status *device.IPCError
	switch {
	case err == nil:
		return 0
	case errors.As(err, &status):
		return status.ErrorCode()
	case errors.Is(err, errUAPITrailing):
		return ipc.IpcErrorInvalid
	default:
		return ipc.IpcErrorUnknown
	}
}
