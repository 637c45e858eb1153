package access

import (
	"bufio"
	"fmt"
	"io"

	qrcode "github.com/skip2/go-qrcode"
)

// QR terminal drawing, as `qrencode -t ansiutf8` does it: each character
// cell holds two rows of modules with the upper and lower half-block
// characters; the glyphs draw the light modules in bright white on a black
// background set with ANSI colours, so the code reads the same on dark and
// light terminal themes.
const (
	qrColours = "\x1b[40;37;1m"
	qrReset   = "\x1b[0m"
	qrBoth    = "█" // both modules light
	qrUpper   = "▀" // upper light, lower dark
	qrLower   = "▄" // upper dark, lower light
	qrNone    = " " // both dark
)

// QR writes text to w as a QR code for a terminal, with the standard quiet
// zone of 4 light modules on every side, for the WireGuard phone apps to
// scan. It uses error correction level L, the smallest code: a config with a
// private key fits an 80-column terminal. Its error says when text is too
// long for a QR code.
func QR(w io.Writer, text string) error {
	q, err := qrcode.New(text, qrcode.Low)
	if err != nil {
		return fmt.Errorf("making a QR code: %w", err)
	}
	dark := q.Bitmap() // includes the quiet zone
	bw := bufio.NewWriter(w)
	for y := 0; y < len(dark); y += 2 {
		_, _ = bw.WriteString(qrColours)
		for x := range dark[y] {
			upper := !dark[y][x]
			lower := y+1 >= len(dark) || !dark[y+1][x] // below the last row: light
			switch {
			case upper && lower:
				_, _ = bw.WriteString(qrBoth)
			case upper:
				_, _ = bw.WriteString(qrUpper)
			case lower:
				_, _ = bw.WriteString(qrLower)
			default:
				_, _ = bw.WriteString(qrNone)
			}
		}
		_, _ = bw.WriteString(qrReset + "\n")
	}
	if err := bw.Flush(); err != nil {
		return fmt.Errorf("writing the QR code: %w", err)
	}
	return nil
}
