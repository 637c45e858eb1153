package spec

import (
	"testing"

	"github.com/stretchr/testify/require"
)

// FuzzCheckKey checks that CheckKey answers as checkKeySlowly does.
func FuzzCheckKey(f *testing.F) {
	f.Add("AAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAA=")     // canonical
	f.Add("AAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAB=")     // padding bits set
	f.Add("AAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAA")     // no padding
	f.Add("AAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAA\n=")    // a newline, which the decoder skips
	f.Add("AAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAA=") // 34 bytes
	f.Fuzz(func(t *testing.T, key string) {
		want := checkKeySlowly(key)
		got := CheckKey(key)
		if want == nil {
			require.NoError(t, got)
			return
		}
		require.EqualError(t, got, want.Error())
	})
}
