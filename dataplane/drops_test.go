package dataplane

import (
	"errors"
	"net"
	"os"
	"path/filepath"
	"testing"
	"time"

	"github.com/stretchr/testify/assert"
	"github.com/stretchr/testify/require"
	"golang.org/x/sys/unix"
	"golang.zx2c4.com/wireguard/conn"
)

// failingBind is a conn.Bind whose Send fails with err.
type failingBind struct {
	conn.Bind
	err error
}

func (b failingBind) Send([][]byte, conn.Endpoint) error { return b.err }

// TestCountingBind counts the packets of every batch the kernel refuses
// as too big, as wireguard-go's StdNetBind reports it, and nothing else.
func TestCountingBind(t *testing.T) {
	path := filepath.Join(t.TempDir(), "zn0.drops")
	drops, err := openDropCounter(path)
	require.NoError(t, err)
	defer func() { assert.NoError(t, drops.close()) }()

	got, err := ReadDrops(path)
	require.NoError(t, err)
	assert.Equal(t, SendDrops{}, got, "a new file counts nothing")

	tooBig := &net.OpError{Op: "write", Net: "udp", Err: os.NewSyscallError("sendmmsg", unix.EMSGSIZE)}
	before := time.Now()
	b := &countingBind{Bind: failingBind{err: tooBig}, drops: drops}
	require.ErrorIs(t, b.Send(make([][]byte, 3), nil), unix.EMSGSIZE, "the error goes back to wireguard-go")
	require.Error(t, b.Send(make([][]byte, 2), nil))

	other := &countingBind{Bind: failingBind{err: errors.New("network is unreachable")}, drops: drops}
	require.Error(t, other.Send(make([][]byte, 5), nil))
	fine := &countingBind{Bind: failingBind{}, drops: drops}
	require.NoError(t, fine.Send(make([][]byte, 7), nil))

	got, err = ReadDrops(path)
	require.NoError(t, err)
	assert.Equal(t, uint64(5), got.TooBig, "3 + 2 packets of the refused batches")
	assert.False(t, got.LastTooBig.Before(before.Truncate(time.Nanosecond)), "last %v, test began %v", got.LastTooBig, before)
	assert.WithinDuration(t, time.Now(), got.LastTooBig, time.Minute)

	// A restarted data plane maps the same file and counts on.
	again, err := openDropCounter(path)
	require.NoError(t, err)
	again.addTooBig(1)
	require.NoError(t, again.close())
	got, err = ReadDrops(path)
	require.NoError(t, err)
	assert.Equal(t, uint64(6), got.TooBig)
}

func TestReadDropsMissingOrShort(t *testing.T) {
	dir := t.TempDir()
	got, err := ReadDrops(filepath.Join(dir, "none.drops"))
	require.NoError(t, err, "a data plane older than the file counts nothing")
	assert.Equal(t, SendDrops{}, got)

	short := filepath.Join(dir, "short.drops")
	require.NoError(t, os.WriteFile(short, []byte{1, 2, 3}, 0o600))
	_, err = ReadDrops(short)
	require.Error(t, err)
}
