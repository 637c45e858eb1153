package bench

import (
	"context"
	"fmt"
	"math"
	"regexp"
	"slices"
	"strconv"
	"strings"
)

// perfResult is what one dnsperf run measured.
type perfResult struct {
	qps      float64
	lost     int
	p50, p99 float64 // ms, from the per-query lines (-v); NaN without them
}

// dnsperf runs dnsperf from namespace ns against server for secs seconds,
// paced at qps queries per second (0: as fast as it can, and without
// per-query output).
func dnsperf(ctx context.Context, ns, server, queries string, secs, qps int) (perfResult, error) {
	args := []string{"dnsperf", "-s", server, "-d", queries, "-l", strconv.Itoa(secs), "-c", "2", "-q", "100", "-t", "2"}
	if qps > 0 {
		args = append(args, "-Q", strconv.Itoa(qps), "-v")
	}
	out, err := inNS(ctx, ns, args...)
	if err != nil {
		return perfResult{}, err
	}
	return parseDnsperf(out)
}

var (
	perfQPS  = regexp.MustCompile(`Queries per second:\s+([0-9.]+)`)
	perfLost = regexp.MustCompile(`Queries lost:\s+([0-9]+)`)
)

// parseDnsperf reads dnsperf's summary and, when present, its per-query
// lines ("> NOERROR name A 0.000123", latency in seconds).
func parseDnsperf(out string) (perfResult, error) {
	q := perfQPS.FindStringSubmatch(out)
	l := perfLost.FindStringSubmatch(out)
	if q == nil || l == nil {
		return perfResult{}, fmt.Errorf("no summary in dnsperf output %q", tail(out, 500))
	}
	var r perfResult
	r.qps, _ = strconv.ParseFloat(q[1], 64)
	r.lost, _ = strconv.Atoi(l[1])
	var lat []float64
	for line := range strings.Lines(out) {
		if !strings.HasPrefix(line, "> ") {
			continue
		}
		f := strings.Fields(line)
		if v, err := strconv.ParseFloat(f[len(f)-1], 64); err == nil {
			lat = append(lat, v*1000)
		}
	}
	r.p50, r.p99 = rank(lat, 50), rank(lat, 99)
	return r, nil
}

// rank returns the p-th percentile (nearest rank) of xs, NaN when empty.
func rank(xs []float64, p int) float64 {
	if len(xs) == 0 {
		return math.NaN()
	}
	s := slices.Clone(xs)
	slices.Sort(s)
	i := max(0, min((len(s)*p+99)/100-1, len(s)-1))
	return s[i]
}

func tail(s string, n int) string {
	if len(s) > n {
		return s[len(s)-n:]
	}
	return s
}
