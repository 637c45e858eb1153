package main

import (
	"encoding/json"
	"fmt"
	"io"
	"net/netip"
	"strings"
	"text/tabwriter"
	"time"
)

// printJSON writes v as indented JSON and a newline.
func printJSON(w io.Writer, v any) error {
	b, err := json.MarshalIndent(v, "", "  ")
	if err != nil {
		return fmt.Errorf("encoding the answer: %w", err)
	}
	_, err = w.Write(append(b, '\n'))
	return err
}

// newTable returns a writer that aligns tab-separated columns, two spaces
// apart. Flush it when done.
func newTable(w io.Writer) *tabwriter.Writer {
	return tabwriter.NewWriter(w, 0, 0, 2, ' ', 0)
}

// dash returns s, or "-" when s is empty.
func dash(s string) string {
	if s == "" {
		return "-"
	}
	return s
}

// prefixText writes a prefix, or "-" for none.
func prefixText(p netip.Prefix) string {
	if !p.IsValid() {
		return "-"
	}
	return p.String()
}

// addrText writes an address, or "-" for none.
func addrText(a netip.Addr) string {
	if !a.IsValid() {
		return "-"
	}
	return a.String()
}

// joinValid joins the valid values of items with ", " ("-" for none).
func joinValid[T interface {
	IsValid() bool
	String() string
}](items ...T) string {
	var parts []string
	for _, it := range items {
		if it.IsValid() {
			parts = append(parts, it.String())
		}
	}
	return dash(strings.Join(parts, ", "))
}

// ageText says how long ago t was: "12s ago", "3m4s ago", "5h2m ago",
// "2d3h ago", or "never" for the zero time.
func ageText(now, t time.Time) string {
	if t.IsZero() {
		return "never"
	}
	d := now.Sub(t).Round(time.Second)
	if d < 0 {
		d = 0
	}
	switch {
	case d < time.Minute:
		return fmt.Sprintf("%ds ago", int(d.Seconds()))
	case d < time.Hour:
		return fmt.Sprintf("%dm%ds ago", int(d.Minutes()), int(d.Seconds())%60)
	case d < 48*time.Hour:
		return fmt.Sprintf("%dh%dm ago", int(d.Hours()), int(d.Minutes())%60)
	}
	return fmt.Sprintf("%dd%dh ago", int(d.Hours())/24, int(d.Hours())%24)
}

// bytesText writes a byte count in binary units: "812 B", "1.2 KiB".
func bytesText(n int64) string {
	const unit = 1024
	if n < unit {
		return fmt.Sprintf("%d B", n)
	}
	v, i := float64(n), -1
	for v >= unit && i < 4 {
		v /= unit
		i++
	}
	return fmt.Sprintf("%.1f %ciB", v, "KMGTP"[i])
}
