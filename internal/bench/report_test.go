package bench

import (
	"encoding/json"
	"math"
	"strings"
	"testing"
	"time"

	"github.com/stretchr/testify/assert"
	"github.com/stretchr/testify/require"
)

func TestParsePing(t *testing.T) {
	tests := []struct {
		name string
		out  string
		want rtt
		ok   bool
	}{
		{"replies and summary", "PING 10.99.17.2 (10.99.17.2) 56(84) bytes of data.\n" +
			"64 bytes from 10.99.17.2: icmp_seq=1 ttl=62 time=0.301 ms\n" +
			"64 bytes from 10.99.17.2: icmp_seq=2 ttl=62 time=1.204 ms\n" +
			"64 bytes from 10.99.17.2: icmp_seq=3 ttl=62 time=0.35 ms\n\n" +
			"--- 10.99.17.2 ping statistics ---\n3 packets transmitted, 3 received, 0% packet loss, time 20ms\n" +
			"rtt min/avg/max/mdev = 0.301/0.618/1.204/0.088 ms\n", rtt{min: 0.301, med: 0.35, avg: 0.618}, true},
		{"summary without replies", "200 packets transmitted, 200 received, 0% packet loss, time 2390ms\nrtt min/avg/max/mdev = 0.301/0.479/1.204/0.088 ms\n", rtt{}, false},
		{"no reply", "5 packets transmitted, 0 received, 100% packet loss, time 40ms\n", rtt{}, false},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			got, err := parsePing(tt.out)
			if !tt.ok {
				require.Error(t, err)
				return
			}
			require.NoError(t, err)
			assert.Equal(t, tt.want, got)
		})
	}
}

func TestParseIperf(t *testing.T) {
	tests := []struct {
		name string
		out  string
		want iperfRun
		err  string
	}{
		{"received", `{"end":{"sum_received":{"bytes":2.5e9,"seconds":8,"bits_per_second":2.5e9},` +
			`"cpu_utilization_percent":{"host_total":50,"remote_total":25}}}`, iperfRun{bytes: 2.5e9, secs: 8, cpu: 6}, ""},
		{"error", `{"error":"unable to connect to server"}`, iperfRun{}, "unable to connect"},
		{"nothing", `{"end":{}}`, iperfRun{}, "received nothing"},
		{"not json", `iperf3: error`, iperfRun{}, "reading iperf3 output"},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			got, err := parseIperf(tt.out)
			if tt.err != "" {
				require.ErrorContains(t, err, tt.err)
				return
			}
			require.NoError(t, err)
			assert.Equal(t, tt.want, got)
			assert.InDelta(t, 2.5, got.gbps(), 1e-9)
		})
	}
}

func TestMedianAndPercentile(t *testing.T) {
	assert.InDelta(t, 2.0, median([]float64{3, 1, 2}), 1e-9)
	assert.InDelta(t, 2.5, median([]float64{4, 1, 2, 3}), 1e-9)
	assert.True(t, math.IsNaN(median(nil)))
	var ds []time.Duration
	for i := 1; i <= 100; i++ {
		ds = append(ds, time.Duration(101-i)*time.Millisecond)
	}
	assert.InDelta(t, 50.0, percentile(ds, 50), 1e-9)
	assert.InDelta(t, 99.0, percentile(ds, 99), 1e-9)
	assert.InDelta(t, 100.0, percentile(ds, 100), 1e-9)
}

func TestReportOutput(t *testing.T) {
	rep := &Report{Rows: []Row{
		{Part: "control", Figure: "network apply p50", Value: 28.16, Unit: "ms", Goal: "≤ 50 ms", Verdict: verdict(true)},
		notMeasured("dns", "resolver qps", "≥ 80,000 qps", "not built"),
	}}
	var b strings.Builder
	require.NoError(t, rep.WriteTable(&b))
	assert.Contains(t, b.String(), "28.2 ms")
	assert.Contains(t, b.String(), "not measured")
	js, err := json.Marshal(rep.Rows)
	require.NoError(t, err)
	var back []map[string]any
	require.NoError(t, json.Unmarshal(js, &back))
	assert.InDelta(t, 28.16, back[0]["value"], 1e-9)
	assert.Nil(t, back[1]["value"])
	assert.Equal(t, "not measured", back[1]["verdict"])
}
