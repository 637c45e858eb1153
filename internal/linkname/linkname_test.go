package linkname

import (
	"strings"
	"testing"

	"github.com/stretchr/testify/assert"
)

func TestCheck(t *testing.T) {
	for _, name := range []string{"znet0", "eth-1.2", "vw0123456789", strings.Repeat("a", MaxLen), "a_b@c"} {
		assert.NoError(t, Check(name), name)
	}
	for name, want := range map[string]string{
		"":                      "is empty",
		strings.Repeat("a", 16): "is longer than 15 bytes",
		".":                     `is "." or ".."`,
		"..":                    `is "." or ".."`,
		"a/b":                   "forbidden character",
		"a:b":                   "forbidden character",
		"a b":                   "forbidden character",
		"a\tb":                  "forbidden character",
		"a\x00b":                "forbidden character",
		"a\rb":                  "forbidden character",
	} {
		err := Check(name)
		if assert.Error(t, err, "%q", name) {
			assert.Contains(t, err.Error(), want, "%q", name)
		}
	}
}
