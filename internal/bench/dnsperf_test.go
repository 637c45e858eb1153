package bench

import (
	"fmt"
	"math"
	"strings"
	"testing"

	"github.com/stretchr/testify/assert"
	"github.com/stretchr/testify/require"
)

const perfSummary = `Statistics:

  Queries sent:         541350
  Queries completed:    541340 (100.00%%)
  Queries lost:         %d (0.00%%)

  Response codes:       NOERROR 541340 (100.00%%)
  Average packet size:  request 38, response 54
  Run time (s):         10.000105
  Queries per second:   54133.4

  Average Latency (s):  0.001803 (min 0.000034, max 0.012028)
  Latency StdDev (s):   0.000640
`

func TestParseDnsperf(t *testing.T) {
	var perQuery strings.Builder
	for i := 1; i <= 100; i++ { // 0.1 ms .. 10 ms
		fmt.Fprintf(&perQuery, "> NOERROR app%d.dns.internal A %d.%06d\n", i, 0, i*100)
	}
	tests := []struct {
		name     string
		out      string
		qps      float64
		lost     int
		p50, p99 float64
		ok       bool
	}{
		{"unpaced summary", fmt.Sprintf(perfSummary, 10), 54133.4, 10, math.NaN(), math.NaN(), true},
		{"per-query lines", perQuery.String() + fmt.Sprintf(perfSummary, 0), 54133.4, 0, 5, 9.9, true},
		{"no summary", "Error: could not open queries.txt\n", 0, 0, 0, 0, false},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			got, err := parseDnsperf(tt.out)
			if !tt.ok {
				require.Error(t, err)
				return
			}
			require.NoError(t, err)
			assert.InDelta(t, tt.qps, got.qps, 1e-9)
			assert.Equal(t, tt.lost, got.lost)
			for _, c := range []struct{ want, got float64 }{{tt.p50, got.p50}, {tt.p99, got.p99}} {
				if math.IsNaN(c.want) {
					assert.True(t, math.IsNaN(c.got), "want NaN, got %v", c.got)
				} else {
					assert.InDelta(t, c.want, c.got, 1e-9)
				}
			}
		})
	}
}

func TestDNSRowsVerdicts(t *testing.T) {
	cfg := Config{Rounds: 3}
	rows := dnsRows(cfg,
		map[string][]float64{"znet resolver": {90000, 85000, 95000}, "NSD": {100000, 100000, 100000}},
		map[string]int{},
		map[string][]float64{"znet resolver": {0.1, 0.1, 0.1}},
		map[string][]float64{"znet resolver": {0.5, 2, 0.7}},
		[]float64{50, 60, 70})
	byFigure := map[string]Row{}
	for _, r := range rows {
		byFigure[r.Figure] = r
	}
	assert.Equal(t, "met", byFigure["resolver qps, 1000 names"].Verdict)
	assert.InDelta(t, 0.9, byFigure["resolver ÷ NSD qps"].Value, 1e-9)
	assert.Equal(t, "met", byFigure["resolver ÷ NSD qps"].Verdict)
	assert.Equal(t, "met", byFigure["resolver latency p99 at 10000 qps"].Verdict)
	assert.InDelta(t, 60, byFigure[fmt.Sprintf("new name propagated to %d nodes", dnsNodes)].Value, 1e-9)

	lost := dnsRows(cfg, map[string][]float64{"znet resolver": {90000}, "NSD": {90000}}, map[string]int{"znet resolver": 3},
		nil, nil, nil)
	assert.Equal(t, "missed", lost[0].Verdict, "queries lost: not a no-loss figure")
}
