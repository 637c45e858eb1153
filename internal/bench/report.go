package bench

import (
	"encoding/json"
	"fmt"
	"io"
	"math"
	"os"
	"slices"
	"strings"
	"text/tabwriter"
	"time"
)

// Row is one figure of the report.
type Row struct {
	// Part is "dataplane", "control", "dns", "scale" or "lab100".
	Part string `json:"part"`
	// Figure says what was measured.
	Figure string `json:"figure"`
	// Value is the figure in Unit; NaN (null in JSON) when not measured.
	Value float64 `json:"-"`
	Unit  string  `json:"unit"`
	// Goal is the goal in words ("" when the figure is a reference only).
	Goal string `json:"goal,omitempty"`
	// Verdict is "met", "missed", "not measured" or "" (no goal).
	Verdict string `json:"verdict,omitempty"`
	// Note says how the figure was taken or why it is missing.
	Note string `json:"note,omitempty"`
}

// MarshalJSON writes Value as null when it was not measured.
func (r Row) MarshalJSON() ([]byte, error) {
	type plain Row
	var v *float64
	if !math.IsNaN(r.Value) {
		x := r.Value
		v = &x
	}
	return json.Marshal(struct {
		plain
		Value *float64 `json:"value"`
	}{plain(r), v})
}

// Report is every row of one run.
type Report struct {
	Date  time.Time `json:"date"`
	Host  string    `json:"host"`
	Parts []string  `json:"parts"`
	// LoadAvg is /proc/loadavg at the start and at the end of the run:
	// other work on the machine skews the figures.
	LoadAvg  []string `json:"loadavg"`
	Rows     []Row    `json:"rows"`
	Duration string   `json:"duration"`
}

// notMeasured returns a row for a figure this run does not take.
func notMeasured(part, figure, goal, why string) Row {
	return Row{Part: part, Figure: figure, Value: math.NaN(), Goal: goal, Verdict: "not measured", Note: why}
}

// verdict returns "met" when ok, else "missed".
func verdict(ok bool) string {
	if ok {
		return "met"
	}
	return "missed"
}

// verdictOf is verdict(ok) for a figure v, or "not measured" when v is NaN.
func verdictOf(v float64, ok bool) string {
	if math.IsNaN(v) {
		return "not measured"
	}
	return verdict(ok)
}

// WriteTable prints the report as an aligned table.
func (r *Report) WriteTable(w io.Writer) error {
	tw := tabwriter.NewWriter(w, 0, 0, 2, ' ', 0)
	_, _ = fmt.Fprintln(tw, "PART\tFIGURE\tVALUE\tGOAL\tVERDICT\tNOTE")
	for _, row := range r.Rows {
		val := "—"
		if !math.IsNaN(row.Value) {
			val = formatValue(row.Value) + " " + row.Unit
		}
		_, _ = fmt.Fprintf(tw, "%s\t%s\t%s\t%s\t%s\t%s\n", row.Part, row.Figure, strings.TrimSpace(val), dash(row.Goal), dash(row.Verdict), row.Note)
	}
	return tw.Flush()
}

// WriteMarkdown prints the report as a Markdown table.
func (r *Report) WriteMarkdown(w io.Writer) {
	_, _ = fmt.Fprintln(w, "| Part | Figure | Value | Goal | Verdict |")
	_, _ = fmt.Fprintln(w, "|---|---|---|---|---|")
	for _, row := range r.Rows {
		val := "—"
		if !math.IsNaN(row.Value) {
			val = formatValue(row.Value) + " " + row.Unit
		}
		_, _ = fmt.Fprintf(w, "| %s | %s | %s | %s | %s |\n", row.Part, row.Figure, strings.TrimSpace(val), dash(row.Goal), dash(row.Verdict))
	}
}

// WriteJSON writes the report to path.
func (r *Report) WriteJSON(path string) error {
	b, err := json.MarshalIndent(r, "", "  ")
	if err != nil {
		return err
	}
	return os.WriteFile(path, append(b, '\n'), 0o644)
}

func dash(s string) string {
	if s == "" {
		return "—"
	}
	return s
}

func formatValue(v float64) string {
	switch a := math.Abs(v); {
	case a >= 100:
		return fmt.Sprintf("%.0f", v)
	case a >= 10:
		return fmt.Sprintf("%.1f", v)
	default:
		return fmt.Sprintf("%.3g", v)
	}
}

// median returns the median of xs (NaN when empty).
func median(xs []float64) float64 {
	if len(xs) == 0 {
		return math.NaN()
	}
	s := slices.Clone(xs)
	slices.Sort(s)
	if len(s)%2 == 1 {
		return s[len(s)/2]
	}
	return (s[len(s)/2-1] + s[len(s)/2]) / 2
}

// percentile returns the p-th percentile (0..100, nearest rank) of ds in
// milliseconds.
func percentile(ds []time.Duration, p int) float64 {
	if len(ds) == 0 {
		return math.NaN()
	}
	s := slices.Clone(ds)
	slices.Sort(s)
	i := (len(s)*p+99)/100 - 1
	i = max(0, min(i, len(s)-1))
	return float64(s[i].Microseconds()) / 1000
}
