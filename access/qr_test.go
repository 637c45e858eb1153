package access

import (
	"bytes"
	"image"
	"image/color"
	"image/png"
	"os"
	"os/exec"
	"path/filepath"
	"strings"
	"testing"
	"unicode/utf8"

	"github.com/stretchr/testify/assert"
	"github.com/stretchr/testify/require"
)

// readQR turns QR's terminal output back into modules (true = dark), two
// rows per line, and checks the line framing on the way.
func readQR(t *testing.T, out string) [][]bool {
	t.Helper()
	lines := strings.SplitAfter(out, "\n")
	require.Equal(t, "", lines[len(lines)-1], "the output ends with a newline")
	var rows [][]bool
	for i, line := range lines[:len(lines)-1] {
		body, ok := strings.CutPrefix(line, qrColours)
		require.True(t, ok, "line %d starts with the colours", i)
		body, ok = strings.CutSuffix(body, qrReset+"\n")
		require.True(t, ok, "line %d ends with a reset", i)
		var upper, lower []bool
		for _, r := range body {
			var u, l bool // light?
			switch string(r) {
			case qrBoth:
				u, l = true, true
			case qrUpper:
				u = true
			case qrLower:
				l = true
			case qrNone:
			default:
				t.Fatalf("line %d: unexpected character %q", i, r)
			}
			upper, lower = append(upper, !u), append(lower, !l)
		}
		rows = append(rows, upper, lower)
	}
	return rows
}

// configText is a realistic config to encode: the DESIGN.md example with a
// long host name, so its text is at the long end of what znet prints.
func configText() string {
	c := designConfig()
	c.Endpoint = "node1.eu-west.zero-os.example.com:40001"
	return c.Render()
}

func TestQRShape(t *testing.T) {
	var out bytes.Buffer
	require.NoError(t, QR(&out, configText()))
	rows := readQR(t, out.String())
	width := len(rows[0])
	for i, r := range rows {
		require.Len(t, r, width, "row %d", i)
	}
	// The last text line may carry one padding row below the symbol.
	size := width - 8
	assert.Equal(t, 0, (size-17)%4, "a QR symbol is 17+4v modules wide, got %d", size)
	require.Contains(t, []int{width, width + 1}, len(rows))
	assert.LessOrEqual(t, width, 80, "a config with a private key fits an 80-column terminal")

	// Quiet zone: 4 light modules on every side (and on the padding row).
	for y, r := range rows {
		for x, dark := range r {
			if y < 4 || y >= 4+size || x < 4 || x >= 4+size {
				require.False(t, dark, "quiet zone module (%d,%d) is dark", x, y)
			}
		}
	}
	// Finder patterns in three corners: a dark 7x7 ring, a light ring, a
	// dark 3x3 centre.
	for _, corner := range [][2]int{{4, 4}, {4 + size - 7, 4}, {4, 4 + size - 7}} {
		for dy := range 7 {
			for dx := range 7 {
				ring := max(abs(dx-3), abs(dy-3))
				want := ring != 2
				assert.Equal(t, want, rows[corner[1]+dy][corner[0]+dx], "finder at %v, module (%d,%d)", corner, dx, dy)
			}
		}
	}
}

func abs(n int) int { return max(n, -n) }

func TestQRDiffers(t *testing.T) {
	texts := []string{configText(), strings.Replace(configText(), "40001", "40002", 1), "a", "b"}
	seen := map[string]string{}
	for _, text := range texts {
		var out bytes.Buffer
		require.NoError(t, QR(&out, text))
		require.NotContains(t, seen, out.String(), "%q and %q give the same code", text, seen[out.String()])
		seen[out.String()] = text
		var again bytes.Buffer
		require.NoError(t, QR(&again, text))
		assert.Equal(t, out.String(), again.String(), "the same text gives the same code")
	}
}

func TestQRTooLong(t *testing.T) {
	var out bytes.Buffer
	err := QR(&out, strings.Repeat("x", 8000))
	require.Error(t, err)
	assert.Contains(t, err.Error(), "making a QR code")
	assert.Empty(t, out.String())
}

// TestQRDecodes draws the terminal output as an image and has zbarimg read
// it back (Debian's zbar-tools).
func TestQRDecodes(t *testing.T) {
	zbarimg, err := exec.LookPath("zbarimg")
	if err != nil {
		t.Skip("zbarimg is not installed (Debian: apt-get install zbar-tools)")
	}
	for name, text := range map[string]string{
		"config":           configText(),
		"without key":      func() string { c := designConfig(); c.PrivateKey = ""; return c.Render() }(),
		"one character":    "z",
		"multi-byte utf-8": "café ✓",
	} {
		t.Run(name, func(t *testing.T) {
			var out bytes.Buffer
			require.NoError(t, QR(&out, text))
			file := filepath.Join(t.TempDir(), "qr.png")
			require.NoError(t, writePNG(file, readQR(t, out.String())))
			got, err := exec.Command(zbarimg, "--raw", "-q", file).Output()
			require.NoError(t, err, "zbarimg could not read the code")
			require.True(t, utf8.Valid(got))
			assert.Equal(t, text, strings.TrimSuffix(string(got), "\n"))
		})
	}
}

// writePNG draws modules 4 pixels to a side, black on white.
func writePNG(file string, rows [][]bool) error {
	const scale = 4
	img := image.NewGray(image.Rect(0, 0, len(rows[0])*scale, len(rows)*scale))
	for y := range img.Bounds().Dy() {
		for x := range img.Bounds().Dx() {
			c := color.Gray{Y: 255}
			if rows[y/scale][x/scale] {
				c = color.Gray{}
			}
			img.SetGray(x, y, c)
		}
	}
	f, err := os.Create(file)
	if err != nil {
		return err
	}
	if err := png.Encode(f, img); err != nil {
		_ = f.Close()
		return err
	}
	return f.Close()
}
