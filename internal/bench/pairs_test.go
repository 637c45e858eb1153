package bench

import (
	"fmt"
	"log/slog"
	"math"
	"strings"
	"testing"

	"github.com/stretchr/testify/assert"
	"github.com/stretchr/testify/require"
)

// TestRoundPlanABBA checks a round's order: the pair in pairSegments
// segments each, in blocks ABBA, BAAB, ABBA..., the first of the pair
// alternating between rounds, then each reference once at full length.
func TestRoundPlanABBA(t *testing.T) {
	all := []contender{{name: "znet"}, {name: "raw veth"}, {name: bareName}, {name: "Debian wireguard-go"}}
	names := func(rs []run) string {
		var out []string
		for _, r := range rs {
			out = append(out, fmt.Sprintf("%s:%d", strings.Fields(r.c.name)[0], r.secs))
		}
		return strings.Join(out, " ")
	}
	require.Equal(t, 10, pairSegments, "the plans below are written for 10")
	assert.Equal(t, "znet:1 bare:1 bare:1 znet:1 bare:1 znet:1 znet:1 bare:1 znet:1 bare:1 bare:1 znet:1 "+
		"bare:1 znet:1 znet:1 bare:1 znet:1 bare:1 bare:1 znet:1 raw:10 Debian:10", names(roundPlan(all, 0, 10)))
	assert.Equal(t, "bare:2 znet:2 znet:2 bare:2 znet:2 bare:2 bare:2 znet:2 bare:2 znet:2 znet:2 bare:2 "+
		"znet:2 bare:2 bare:2 znet:2 bare:2 znet:2 znet:2 bare:2 raw:25 Debian:25", names(roundPlan(all, 1, 25)))
	assert.True(t, strings.HasPrefix(names(roundPlan(all, 2, 3)), "znet:1 bare:1 bare:1 znet:1 "), "at least a second each")
}

// inDeltaSlice checks that got has want's length and each value within
// 1e-9 of want's: testify's InDeltaSlice compares only as many values as
// got has, so an empty got passed it.
func inDeltaSlice(t *testing.T, want, got []float64) {
	t.Helper()
	require.Len(t, got, len(want))
	for i := range want {
		assert.InDelta(t, want[i], got[i], 1e-9, "value %d", i)
	}
}

// pairRow returns the row of the pair's rows after rounds rounds whose
// figure contains part.
func pairRow(t *testing.T, m measurements, rounds int, part string) Row {
	t.Helper()
	for _, x := range dataplaneRows(Config{Seconds: 10, PairRounds: rounds}, []contender{{name: "znet"}, {name: bareName}}, m) {
		if strings.Contains(x.Figure, part) {
			return x
		}
	}
	t.Fatalf("no row with %q", part)
	return Row{}
}

// addSegment adds one segment of gbps for secs seconds costing cpu seconds
// (half of them its own processes') to name's tally of the round.
func (m *measurements) addSegment(name string, gbps, secs, cpu float64, r rtt) {
	t := m.tallyOf(name)
	t.bytes += gbps * 1e9 / 8 * secs
	t.secs += secs
	t.segs = append(t.segs, segment{gbps * 1e9 / 8 * secs, secs})
	t.cpu += cpu
	t.procCPU += cpu / 2
	t.rtts = append(t.rtts, r)
}

// TestRoundRatioOfSums checks that a round's ratio is that of the sums of
// the pair's segments: a burst of load that halves one bare segment moves
// the ratio by a quarter, not a half, and the CPU per GB is the sum of CPU
// over the sum of bytes.
func TestRoundRatioOfSums(t *testing.T) {
	m := newMeasurements()
	r := rtt{min: 0.2, med: 0.25, avg: 0.3}
	m.addSegment("znet", 2, 5, 2, r)
	m.addSegment(bareName, 2, 5, 1, r)
	m.addSegment(bareName, 1, 5, 1, r) // the burst
	m.addSegment("znet", 2, 5, 2, r)
	m.closeRound(slog.New(slog.DiscardHandler), 0)
	require.Len(t, m.ratio, 1)
	assert.InDelta(t, 2/1.5, m.ratio[0], 1e-9)
	// znet: 4 s of CPU for 2.5 GB; bare: 2 s for 1.875 GB.
	assert.InDelta(t, 1.6, m.cpuGB["znet"][0], 1e-9)
	assert.InDelta(t, 0.8, m.procGB["znet"][0], 1e-9)
	assert.InDelta(t, (4/2.5)/(2/1.875), m.cpuRatio[0], 1e-9)
	assert.Nil(t, m.round, "the round's tallies are not reset")
}

// TestRoundWithFailedSegmentLeftOut checks that a round in which one of
// the pair's segments failed gives no ratio: the rest of its segments no
// longer cancel the load's drift.
func TestRoundWithFailedSegmentLeftOut(t *testing.T) {
	m := newMeasurements()
	m.addSegment("znet", 2, 5, 1, rtt{min: 0.2, med: 0.25, avg: 0.3})
	m.addSegment(bareName, 2, 5, 1, rtt{min: 0.2, med: 0.25, avg: 0.3})
	m.tallyOf(bareName).failed++
	m.closeRound(slog.New(slog.DiscardHandler), 0)
	assert.Empty(t, m.ratio)
	assert.Empty(t, m.gbps[bareName])
	assert.Len(t, m.gbps["znet"], 1)
	assert.Len(t, m.extra, 1, "the RTTs of the round still count")
}

// TestDataplanePairRows checks the per-round pair figures: throughput
// ratio, median (the goal's), average and minimum RTT differences, each
// from the same round,
// and that the notes carry the rounds' figures and the scheduling.
func TestDataplanePairRows(t *testing.T) {
	m := newMeasurements()
	m.sched = compareScheduling([]string{"x"}, []string{"x"})
	log := slog.New(slog.DiscardHandler)
	for r, round := range []struct{ znet, bare []rtt }{
		{[]rtt{{min: 0.20, med: 0.30, avg: 0.50}, {min: 0.25, med: 0.34, avg: 0.70}}, []rtt{{min: 0.15, med: 0.28, avg: 0.30}, {min: 0.16, med: 0.30, avg: 0.50}}},
		{[]rtt{{min: 0.30, med: 0.35, avg: 0.40}}, []rtt{{min: 0.28, med: 0.36, avg: 0.45}}},
	} {
		for _, z := range round.znet {
			m.addSegment("znet", 2, 5, 1, z)
		}
		for _, b := range round.bare {
			m.addSegment(bareName, 2.5, 5, 1, b)
		}
		m.closeRound(log, r)
	}
	inDeltaSlice(t, []float64{0.05, 0.02}, m.extraMin)
	inDeltaSlice(t, []float64{0.03, -0.01}, m.extra)
	inDeltaSlice(t, []float64{0.2, -0.05}, m.extraAvg)
	inDeltaSlice(t, []float64{0.8, 0.8}, m.ratio)
	rows := dataplaneRows(Config{Seconds: 10, PairRounds: 2}, []contender{{name: "znet"}, {name: bareName}}, m)
	byFigure := map[string]Row{}
	for _, r := range rows {
		byFigure[r.Figure] = r
	}
	minRow := byFigure["RTT minimum znet − "+bareName+" (per round)"]
	assert.InDelta(t, 0.035, minRow.Value, 1e-9)
	assert.Contains(t, minRow.Note, "0.050 ms")
	rttRow := byFigure["RTT znet − "+bareName+" (per round)"]
	assert.InDelta(t, 0.01, rttRow.Value, 1e-9)
	assert.Equal(t, "met", rttRow.Verdict)
	assert.InDelta(t, 0.075, byFigure["RTT average znet − "+bareName+" (per round)"].Value, 1e-9)
	ratioRow := byFigure["znet ÷ "+bareName+" (throughput, per round)"]
	assert.Equal(t, "missed", ratioRow.Verdict)
	assert.Contains(t, ratioRow.Note, "0.800× (load ")
	assert.Contains(t, ratioRow.Note, "scheduling the same for both (x)")
	assert.InDelta(t, 1.25, byFigure["CPU per GB znet ÷ "+bareName+" (per round)"].Value, 1e-9)
}

// TestCompareScheduling checks that any difference between the pair's
// processes is reported, naming both sides.
func TestCompareScheduling(t *testing.T) {
	own := "own session, autogroup nice 0, cpu cgroup /, cpus 0-1, nice 0, policy 0"
	shared := "in a session of another process, no autogroup, cpu cgroup /, cpus 0-1, nice 0, policy 0"
	assert.Equal(t, "the same for both ("+own+")", compareScheduling([]string{own, own}, []string{own, own}))
	got := compareScheduling([]string{own, own}, []string{own, shared})
	assert.True(t, strings.HasPrefix(got, "DIFFERS: "), got)
	assert.Contains(t, got, shared)
	assert.Contains(t, compareScheduling(nil, []string{own}), "NOT CHECKED")
	// Over the rounds (a lab each), a difference found once is what the
	// rows show.
	m := newMeasurements()
	m.noteScheduling(compareScheduling([]string{own}, []string{own}))
	m.noteScheduling(got)
	m.noteScheduling(compareScheduling([]string{own}, []string{own}))
	assert.Equal(t, got, m.sched)
}

// TestBlockRatios checks the ratio of each block: the sums of the two
// segments of each of the pair in it, and none for a round whose
// segments do not pair up.
func TestBlockRatios(t *testing.T) {
	z := &tally{segs: []segment{{100, 1}, {300, 1}, {200, 1}, {200, 2}}}
	b := &tally{segs: []segment{{200, 1}, {200, 1}, {100, 1}, {100, 1}}}
	inDeltaSlice(t, []float64{1, (400.0 / 3) / 100}, blockRatios(z, b))
	assert.Empty(t, blockRatios(z, &tally{segs: b.segs[:3]}), "a segment missing")
	assert.Empty(t, blockRatios(z, &tally{segs: b.segs, failed: 1}))
	assert.Empty(t, blockRatios(z, nil))
}

// TestOverallRow checks the estimate over all rounds: the mean of the
// rounds' ratios with its Student's t interval, and the blocks' spread
// within their own rounds (a round that sits lower as a whole adds
// nothing to it).
func TestOverallRow(t *testing.T) {
	m := newMeasurements()
	log := slog.New(slog.DiscardHandler)
	r := rtt{min: 0.2, med: 0.25, avg: 0.3}
	// Rounds of two blocks each: ratios 0.9, 1.0 (round 0.95) and 0.8,
	// 0.9 (round 0.85).
	for i, zs := range [][]float64{{0.9, 1.0}, {0.8, 0.9}} {
		for _, z := range zs {
			for range 2 {
				m.addSegment("znet", z, 1, 1, r)
				m.addSegment(bareName, 1, 1, 1, r)
			}
		}
		m.closeRound(log, i)
	}
	require.Len(t, m.blocks, 2)
	inDeltaSlice(t, []float64{0.9, 1.0}, m.blocks[0])
	inDeltaSlice(t, []float64{0.8, 0.9}, m.blocks[1])
	row := pairRow(t, m, 2, "over all rounds")
	assert.InDelta(t, 0.9, row.Value, 1e-9)
	// Two rounds 0.1 apart: sd 0.0707, standard error 0.05, t(1) 6.314.
	assert.Contains(t, row.Note, "mean of 2 rounds")
	assert.Contains(t, row.Note, fmt.Sprintf("90%% interval %.3f–%.3f", 0.9-6.314*0.05, 0.9+6.314*0.05))
	// Within rounds each block is 0.05 off its round's mean: ss 0.01 over
	// 2 degrees of freedom.
	assert.Contains(t, row.Note, fmt.Sprintf("standard deviation of %.3f (4 blocks)", math.Sqrt(0.005)))
	mean, h := meanInterval([]float64{1})
	assert.True(t, math.IsNaN(mean) && math.IsNaN(h), "no interval from one round")
	_, h = meanInterval(make([]float64, 30))
	assert.Zero(t, h, "more rounds than the t table: no panic")
}

// TestTallySplit checks the noise-floor figure: the first half of a
// contender's segments against the second, by bytes over seconds, and
// nothing for a round with a failed or a single segment.
func TestTallySplit(t *testing.T) {
	tl := &tally{segs: []segment{{100, 1}, {300, 1}, {100, 2}, {300, 2}}}
	assert.InDelta(t, 2.0, tl.split(), 1e-9, "(400/2) / (400/4)")
	assert.True(t, math.IsNaN((&tally{segs: []segment{{1, 1}}}).split()))
	assert.True(t, math.IsNaN((&tally{segs: tl.segs, failed: 1}).split()))
	assert.True(t, math.IsNaN((*tally)(nil).split()))
}

// TestFloodExtraPerRound checks the flood figure: each contender's round
// is the mean of its segments' flood averages, the pair's the difference
// in the same round; a round in which one of the pair has no flood gives
// none, and the row is the median of the rounds.
func TestFloodExtraPerRound(t *testing.T) {
	m := newMeasurements()
	log := slog.New(slog.DiscardHandler)
	r := rtt{min: 0.2, med: 0.25, avg: 0.3}
	for i, round := range []struct{ znet, bare []float64 }{
		{[]float64{0.20, 0.22}, []float64{0.17, 0.17}}, // +0.04
		{[]float64{0.19}, nil},                         // bare's flood failed
		{[]float64{0.18, 0.18}, []float64{0.16, 0.18}}, // +0.01
		{[]float64{0.30, 0.10}, []float64{0.19, 0.19}}, // +0.01
	} {
		m.addSegment("znet", 2, 5, 1, r)
		m.addSegment(bareName, 2, 5, 1, r)
		m.tallyOf("znet").floods = round.znet
		m.tallyOf(bareName).floods = round.bare
		m.closeRound(log, i)
	}
	inDeltaSlice(t, []float64{0.04, 0.01, 0.01}, m.extraFlood)
	row := pairRow(t, m, 4, "RTT under a ping flood")
	assert.InDelta(t, 0.01, row.Value, 1e-9)
	assert.Contains(t, row.Note, "median of 3 rounds")
}

// TestParseFlood reads the average of a ping flood's summary (ping -f -q
// prints no reply lines, and adds ipg/ewma after the RTTs).
func TestParseFlood(t *testing.T) {
	got, err := parseFlood("--- 10.40.1.2 ping statistics ---\n2000 packets transmitted, 2000 received, 0% packet loss, time 401ms\n" +
		"rtt min/avg/max/mdev = 0.151/0.190/1.204/0.041 ms, ipg/ewma 0.200/0.187 ms\n")
	require.NoError(t, err)
	assert.InDelta(t, 0.190, got, 1e-9)
	_, err = parseFlood("2000 packets transmitted, 0 received, 100% packet loss, time 2s\n")
	require.Error(t, err)
}
