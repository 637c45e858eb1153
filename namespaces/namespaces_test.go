package namespaces

import (
	"os"
	"path/filepath"
	"strings"
	"sync"
	"testing"

	"github.com/stretchr/testify/assert"
	"github.com/stretchr/testify/require"
	"golang.org/x/sys/unix"

	"github.com/znet/znet/internal/testutil"
)

func TestNames(t *testing.T) {
	tests := []struct {
		name, got, want string
	}{
		{"Name", Name("node1", "shop"), "zn-node1.shop"},
		{"NodePrefix", NodePrefix("node1"), "zn-node1."},
		{"Path", Path("zn-node1.shop"), "/run/netns/zn-node1.shop"},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) { assert.Equal(t, tt.want, tt.got) })
	}
	assert.True(t, strings.HasPrefix(Name("node1", "shop"), NodePrefix("node1")))
}

func TestInvalidNames(t *testing.T) {
	tests := []struct{ name, ns string }{
		{"empty", ""},
		{"dot", "."},
		{"dotdot", ".."},
		{"slash", "zt-ns/x"},
		{"escape", "../etc"},
		{"nul", "zt-ns\x00x"},
		{"too long", strings.Repeat("z", 255)},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			require.ErrorIs(t, Create(tt.ns), os.ErrInvalid)
			require.ErrorIs(t, Delete(tt.ns), os.ErrInvalid)
			assert.False(t, Exists(tt.ns))
		})
	}
	assert.NoError(t, validName(strings.Repeat("z", 254)), "254 bytes is still fine")
}

func TestCreate(t *testing.T) {
	testutil.SkipUnlessRoot(t)
	testutil.GoroutineLeakCheck(t)
	name, id := createNS(t)

	t.Run("exists", func(t *testing.T) {
		assert.True(t, Exists(name))
		assert.True(t, IsNetNS(Path(name)))
		assert.Contains(t, ipNetnsList(t), name, "iproute2 sees it")
	})
	t.Run("not our own", func(t *testing.T) {
		own, err := Identify("/proc/self/ns/net")
		require.NoError(t, err)
		assert.NotEqual(t, own, id)
	})
	t.Run("idempotent", func(t *testing.T) {
		require.NoError(t, Create(name))
		again, err := Identify(name)
		require.NoError(t, err)
		assert.Equal(t, id, again, "the same namespace, not a new one")
		assert.Equal(t, 1, mountsAt(t, Path(name)))
	})
}

func TestCreateReusesLeftoverFile(t *testing.T) {
	testutil.SkipUnlessRoot(t)
	testutil.GoroutineLeakCheck(t)
	require.NoError(t, os.MkdirAll(Dir, 0o755))
	name := newName(t)
	// What an interrupted Create leaves behind: the empty mount point.
	require.NoError(t, os.WriteFile(Path(name), nil, 0o444))
	t.Cleanup(func() { assert.NoError(t, Delete(name)) })
	assert.False(t, Exists(name))

	require.NoError(t, Create(name))
	assert.True(t, Exists(name))
	id, err := Identify(name)
	require.NoError(t, err)
	t.Cleanup(func() { deleteAndWait(t, name, id) })
}

func TestCreateConcurrent(t *testing.T) {
	testutil.SkipUnlessRoot(t)
	testutil.GoroutineLeakCheck(t)
	name := newName(t)
	var wg sync.WaitGroup
	errs := make([]error, 20)
	for i := range errs {
		wg.Go(func() { errs[i] = Create(name) })
	}
	wg.Wait()
	id, err := Identify(name)
	require.NoError(t, err)
	t.Cleanup(func() { deleteAndWait(t, name, id) })
	for i, err := range errs {
		assert.NoError(t, err, "Create %d", i)
	}
	assert.Equal(t, 1, mountsAt(t, Path(name)), "one bind mount, not one per call")
}

func TestOpen(t *testing.T) {
	testutil.SkipUnlessRoot(t)
	testutil.GoroutineLeakCheck(t)
	name, id := createNS(t)
	dir := t.TempDir()
	file := filepath.Join(dir, "file")
	require.NoError(t, os.WriteFile(file, []byte("x"), 0o644))
	fifo := filepath.Join(dir, "fifo")
	require.NoError(t, unix.Mkfifo(fifo, 0o644))

	tests := []struct {
		name    string
		path    string
		wantErr error // nil: opens
	}{
		{"name", name, nil},
		{"path", Path(name), nil},
		{"own namespace", "/proc/self/ns/net", nil},
		{"missing name", newName(t), os.ErrNotExist},
		{"missing path", filepath.Join(dir, "missing"), os.ErrNotExist},
		{"regular file", file, ErrNotNetNS},
		{"directory", dir, ErrNotNetNS},
		{"fifo, without blocking", fifo, ErrNotNetNS},
		{"other namespace type", "/proc/self/ns/uts", ErrNotNetNS},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			h, err := Open(tt.path)
			assert.Equal(t, tt.wantErr == nil, IsNetNS(resolve(tt.path)), "IsNetNS")
			if tt.wantErr != nil {
				require.ErrorIs(t, err, tt.wantErr)
				assert.False(t, h.IsOpen())
				assert.ErrorIs(t, DoPath(tt.path, func() error { return nil }), tt.wantErr)
				_, err := ID(tt.path)
				assert.ErrorIs(t, err, tt.wantErr)
				return
			}
			require.NoError(t, err)
			defer func() { _ = h.Close() }()
			var st unix.Stat_t
			require.NoError(t, unix.Fstat(int(h), &st))
			if tt.path != "/proc/self/ns/net" {
				assert.Equal(t, id.Ino, st.Ino)
			}
		})
	}
}

func TestDelete(t *testing.T) {
	testutil.SkipUnlessRoot(t)
	testutil.GoroutineLeakCheck(t)
	name, id := createNS(t)

	require.NoError(t, Delete(name))
	assert.False(t, Exists(name))
	assert.NoFileExists(t, Path(name))
	assert.NotContains(t, ipNetnsList(t), name)
	assert.Zero(t, mountsAt(t, Path(name)))
	assert.NoError(t, Delete(name), "deleting twice")
	assert.NoError(t, Delete(newName(t)), "deleting what never was")

	// Create after Delete makes a fresh namespace under the old name.
	require.NoError(t, Create(name))
	fresh, err := Identify(name)
	require.NoError(t, err)
	t.Cleanup(func() { deleteAndWait(t, name, fresh) })
	assert.NotEqual(t, id, fresh)
}

func TestList(t *testing.T) {
	testutil.SkipUnlessRoot(t)
	testutil.GoroutineLeakCheck(t)
	prefix := newName(t) + "-"
	for _, suffix := range []string{"b", "a", "c"} {
		name := prefix + suffix
		require.NoError(t, Create(name))
		id, err := Identify(name)
		require.NoError(t, err)
		t.Cleanup(func() { deleteAndWait(t, name, id) })
	}

	tests := []struct {
		name   string
		prefix string
		want   []string
	}{
		{"prefix", prefix, []string{prefix + "a", prefix + "b", prefix + "c"}},
		{"narrower", prefix + "b", []string{prefix + "b"}},
		{"nothing", newName(t), nil},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			got, err := List(tt.prefix)
			require.NoError(t, err)
			assert.Equal(t, tt.want, got)
		})
	}
}
