package bench

import (
	"context"
	"fmt"
	"log/slog"
	"math"
	"slices"
	"strings"
)

// run is one segment of a round: an iperf3 run of secs seconds over c,
// then a ping run.
type run struct {
	c    contender
	secs int
}

// pairSegments is how many iperf3 segments each of the pair gets in a
// round. On this machine a segment's throughput against the other
// contender's beside it moved with a standard deviation of 0.06-0.10,
// whatever the segments' length (1 s or 3 s, 20 pairs each, measured on
// 2026-12-05 with nothing else running): the spread comes from each run's
// own state (where the scheduler happens to put the threads of that run),
// not from load that a longer run would average out. Pinning iperf3's
// client and server to CPUs did not narrow it. So a round's precision
// grows with the number of its segments, not with their length.
const pairSegments = 10

// roundPlan is the segments of round r, each contender getting about secs
// seconds of iperf3 in all. znet and the bare library come first, each in
// pairSegments segments of secs/pairSegments seconds, in blocks of four
// ordered ABBA, BAAB, ABBA... (A is znet in even rounds, the bare library
// in odd ones): load that rises or falls steadily over a block weighs on
// both alike, and a burst of load that hits one segment is diluted by the
// other segments of its contender. Then the references, one run each.
func roundPlan(all []contender, r, secs int) []run {
	var a, b run
	var rest []run
	seg := max(1, secs/pairSegments)
	for _, c := range all {
		switch c.name {
		case "znet":
			a = run{c, seg}
		case bareName:
			b = run{c, seg}
		default:
			rest = append(rest, run{c, secs})
		}
	}
	if r%2 == 1 {
		a, b = b, a
	}
	var plan []run
	for k := range pairSegments / 2 {
		if k%2 == 0 {
			plan = append(plan, a, b, b, a)
		} else {
			plan = append(plan, b, a, a, b)
		}
	}
	return append(plan, rest...)
}

// tally is what one contender's segments of one round carried and cost.
type tally struct {
	bytes, secs, cpu float64
	procCPU          float64 // the part of cpu the contender's own processes used
	rtts             []rtt
	floods           []float64 // each segment's average RTT under a ping flood
	failed           int       // segments whose iperf3 or CPU reading failed
	// segs are the bytes and seconds of each segment, in order, for the
	// split (noise floor).
	segs []segment
}

// segment is what one iperf3 run carried.
type segment struct{ bytes, secs float64 }

// split is the throughput of the first half of t's segments over that of
// the second half: one contender against itself in the same round, whose
// spread around 1 is the noise a ratio of the pair has to be read
// against (each half has half the pair's segments, so its spread is
// somewhat larger than the pair's would be from noise alone).
func (t *tally) split() float64 {
	if t == nil || t.failed > 0 || len(t.segs) < 2 {
		return math.NaN()
	}
	h := len(t.segs) / 2
	return rate(t.segs[:h]) / rate(t.segs[h:2*h])
}

// rate is the bytes of segments ss over their seconds.
func rate(ss []segment) float64 {
	var b, s float64
	for _, x := range ss {
		b, s = b+x.bytes, s+x.secs
	}
	return b / s
}

// blockRatios is z's throughput over b's in each block of four segments
// of a round (roundPlan: two of each, side by side), from the sums of
// their two segments; none when either had a failed segment or their
// segments do not pair up.
func blockRatios(z, b *tally) []float64 {
	if z == nil || b == nil || z.failed > 0 || b.failed > 0 || len(z.segs) != len(b.segs) {
		return nil
	}
	var out []float64
	for i := 0; i+2 <= len(z.segs); i += 2 {
		out = append(out, rate(z.segs[i:i+2])/rate(b.segs[i:i+2]))
	}
	return out
}

// gbps is the round's throughput: all bytes over all seconds, so that a
// long and a short segment weigh as their lengths.
func (t *tally) gbps() float64 {
	if t == nil || t.failed > 0 || t.secs <= 0 {
		return math.NaN()
	}
	return t.bytes * 8 / t.secs / 1e9
}

// cpuPerGB is the CPU seconds the round's segments cost per GB received.
func (t *tally) cpuPerGB() float64 {
	if t == nil || t.failed > 0 || t.bytes <= 0 {
		return math.NaN()
	}
	return t.cpu / (t.bytes / 1e9)
}

// rtt is the mean of the segments' median and average RTTs and the least
// of their minima.
func (t *tally) rtt() rtt {
	if t == nil || len(t.rtts) == 0 {
		return rtt{math.NaN(), math.NaN(), math.NaN()}
	}
	out := rtt{min: math.Inf(1)}
	n := float64(len(t.rtts))
	for _, r := range t.rtts {
		out.min = min(out.min, r.min)
		out.med += r.med / n
		out.avg += r.avg / n
	}
	return out
}

// flood is the mean of the segments' average RTTs under a ping flood.
func (t *tally) flood() float64 {
	if t == nil || len(t.floods) == 0 {
		return math.NaN()
	}
	var sum float64
	for _, f := range t.floods {
		sum += f
	}
	return sum / float64(len(t.floods))
}

// measurements are the figures of the data-plane rounds so far.
type measurements struct {
	// contender -> one value per round in which all its segments ran
	gbps, rtt, cpuGB map[string][]float64
	procGB           map[string][]float64 // the contender's processes' part of cpuGB
	// ratio, cpuRatio, extra, extraAvg and extraMin are znet ÷ bare
	// throughput, znet ÷ bare CPU per GB, znet − bare median, average and
	// minimum RTT of each round in which both ran; load the load average
	// after each round.
	ratio, cpuRatio, extra, extraAvg, extraMin []float64
	// extraFlood is znet − bare average RTT under a ping flood, per round.
	extraFlood []float64
	// blocks is znet ÷ bare throughput of every block (blockRatios), by
	// round.
	blocks [][]float64
	// split is each round's tally.split of znet and of the bare library.
	split map[string][]float64
	load  []string
	// sched says whether the pair got the same scheduling.
	sched string
	round map[string]*tally // this round's
}

func newMeasurements() measurements {
	return measurements{gbps: map[string][]float64{}, rtt: map[string][]float64{}, cpuGB: map[string][]float64{}, procGB: map[string][]float64{},
		split: map[string][]float64{}}
}

// pingsPerSegment is how many pings follow each segment (10 ms apart):
// 400 a round for each of the pair.
const pingsPerSegment = 400 / pairSegments

// floodPerSegment is how many pings of a flood (ping -f: each sent as
// the previous reply arrives) follow them, ~0.2 s at these RTTs: 8,000 a
// round for each of the pair.
const floodPerSegment = 8000 / pairSegments

// measure runs one segment; a failed run is logged and leaves its
// contender's round out (the rows' notes count the rounds that made it).
func (m *measurements) measure(ctx context.Context, log *slog.Logger, s run, r, nice int) {
	t := m.tallyOf(s.c.name)
	before, cpuErr := cpuOf(s.c.pids)
	res, err := iperf(ctx, s.c, s.secs, nice)
	after, cpuErr2 := cpuOf(s.c.pids)
	switch {
	case err != nil:
		log.Warn("iperf3 failed", "contender", s.c.name, "round", r+1, "err", err)
		t.failed++
	case cpuErr != nil || cpuErr2 != nil:
		log.Warn("reading the contender's CPU time failed", "contender", s.c.name, "round", r+1, "err", cmpOr(cpuErr, cpuErr2))
		t.failed++
	default:
		t.bytes, t.secs, t.cpu = t.bytes+res.bytes, t.secs+res.secs, t.cpu+res.cpu+after-before
		t.segs = append(t.segs, segment{res.bytes, res.secs})
		t.procCPU += after - before
	}
	ms, err := pingRTT(ctx, s.c, pingsPerSegment, nice)
	if err != nil {
		log.Warn("ping failed", "contender", s.c.name, "round", r+1, "err", err)
	} else {
		t.rtts = append(t.rtts, ms)
	}
	flood, err := floodRTT(ctx, s.c, floodPerSegment, nice)
	if err != nil {
		log.Warn("ping flood failed", "contender", s.c.name, "round", r+1, "err", err)
	} else {
		t.floods = append(t.floods, flood)
	}
	log.Info("data plane", "round", r+1, "contender", s.c.name, "gbit/s", fmt.Sprintf("%.2f", res.gbps()),
		"cpu-s-procs", fmt.Sprintf("%.2f", after-before), "cpu-s-iperf3", fmt.Sprintf("%.2f", res.cpu), "rtt-ms", ms.med, "rtt-avg-ms", ms.avg, "rtt-min-ms", ms.min, "rtt-flood-ms", flood, "load", loadAvg())
}

// cmpOr returns the first non-nil error.
func cmpOr(errs ...error) error {
	for _, e := range errs {
		if e != nil {
			return e
		}
	}
	return nil
}

func (m *measurements) tallyOf(name string) *tally {
	if m.round == nil {
		m.round = map[string]*tally{}
	}
	if m.round[name] == nil {
		m.round[name] = &tally{}
	}
	return m.round[name]
}

// closeRound takes round r's figures, its pair figures and its load
// average.
func (m *measurements) closeRound(log *slog.Logger, r int) {
	load := loadAvg()
	m.load = append(m.load, load)
	for name, t := range m.round {
		if g := t.gbps(); !math.IsNaN(g) {
			m.gbps[name] = append(m.gbps[name], g)
			m.cpuGB[name] = append(m.cpuGB[name], t.cpuPerGB())
			m.procGB[name] = append(m.procGB[name], t.procCPU/(t.bytes/1e9))
		}
		if rt := t.rtt(); !math.IsNaN(rt.med) {
			m.rtt[name] = append(m.rtt[name], rt.med)
		}
	}
	z, b := m.round["znet"], m.round[bareName]
	for name, t := range map[string]*tally{"znet": z, bareName: b} {
		m.split[name] = append(m.split[name], t.split())
	}
	ratio, cpuRatio := z.gbps()/b.gbps(), z.cpuPerGB()/b.cpuPerGB()
	if !math.IsNaN(ratio) {
		m.ratio = append(m.ratio, ratio)
		m.cpuRatio = append(m.cpuRatio, cpuRatio)
	}
	if bs := blockRatios(z, b); len(bs) > 0 {
		m.blocks = append(m.blocks, bs)
	}
	zr, br := z.rtt(), b.rtt()
	if !math.IsNaN(zr.med) && !math.IsNaN(br.med) {
		m.extra = append(m.extra, zr.med-br.med)
		m.extraAvg = append(m.extraAvg, zr.avg-br.avg)
		m.extraMin = append(m.extraMin, zr.min-br.min)
	}
	if zf, bf := z.flood(), b.flood(); !math.IsNaN(zf) && !math.IsNaN(bf) {
		m.extraFlood = append(m.extraFlood, zf-bf)
	}
	log.Info("data plane pair", "round", r+1, "znet÷bare", fmt.Sprintf("%.3f", ratio), "cpu-per-GB-znet÷bare", fmt.Sprintf("%.3f", cpuRatio),
		"rtt-extra-ms", fmt.Sprintf("%.3f", zr.med-br.med), "rtt-avg-extra-ms", fmt.Sprintf("%.3f", zr.avg-br.avg), "rtt-min-extra-ms", fmt.Sprintf("%.3f", zr.min-br.min), "rtt-flood-extra-ms", fmt.Sprintf("%.3f", z.flood()-b.flood()),
		"znet-split", fmt.Sprintf("%.3f", z.split()), "bare-split", fmt.Sprintf("%.3f", b.split()), "load", load)
	m.round = nil
}

// noteScheduling keeps a round's scheduling check (sameScheduling) for
// the rows: the latest, until one found a difference, which is kept.
func (m *measurements) noteScheduling(s string) {
	if m.sched == "" || strings.HasPrefix(m.sched, "the same") {
		m.sched = s
	}
}

// sameScheduling compares the scheduling of znet's data planes with the
// bare library's processes and says whether it is the same.
func sameScheduling(all []contender) string {
	var z, b []string
	for _, c := range all {
		for _, pid := range c.pids {
			s, err := scheduling(pid)
			if err != nil {
				s = "unknown: " + err.Error()
			}
			switch c.name {
			case "znet":
				z = append(z, s)
			case bareName:
				b = append(b, s)
			}
		}
	}
	return compareScheduling(z, b)
}

// compareScheduling says whether every process of the pair, znet's (z) and
// the bare library's (b), is scheduled alike.
func compareScheduling(z, b []string) string {
	both := append(slices.Clone(z), b...)
	if len(z) == 0 || len(b) == 0 {
		return "NOT CHECKED (a contender's processes are unknown)"
	}
	for _, s := range both {
		if s != both[0] {
			return fmt.Sprintf("DIFFERS: znet %s; bare %s", strings.Join(z, " / "), strings.Join(b, " / "))
		}
	}
	return "the same for both (" + both[0] + ")"
}

func dataplaneRows(cfg Config, all []contender, m measurements) []Row {
	var rows []Row
	for _, c := range all {
		note := fmt.Sprintf("iperf3, one TCP stream, %d s per round, median of %d/%d rounds", cfg.Seconds, len(m.gbps[c.name]), cfg.PairRounds)
		rows = append(rows, Row{Part: "dataplane", Figure: "throughput, " + c.name, Value: median(m.gbps[c.name]), Unit: "Gbit/s", Note: note})
	}
	perRound := func(vs []float64, unit string) string {
		parts := make([]string, len(vs))
		for i, v := range vs {
			parts[i] = fmt.Sprintf("%.3f%s (load %s)", v, unit, m.load[min(i, len(m.load)-1)])
		}
		return strings.Join(parts, ", ")
	}
	worst := math.NaN()
	if len(m.ratio) > 0 {
		worst = slices.Min(m.ratio)
	}
	rows = append(rows,
		Row{Part: "dataplane", Figure: "znet ÷ " + bareName + " (throughput, per round)", Value: median(m.ratio), Unit: "×", Goal: "≥ 0.95× per round",
			Verdict: verdictOf(worst, worst >= 0.95), Note: fmt.Sprintf("%d segments of each in blocks ABBA, BAAB..., ratio of sums; median of %d rounds, lowest %.3f×; by round: %s; scheduling %s",
				pairSegments, len(m.ratio), worst, perRound(m.ratio, "×"), m.sched)},
		overallRow(m.ratio, m.blocks),
		splitRow("znet", m.split["znet"], perRound),
		splitRow(bareName, m.split[bareName], perRound),
		Row{Part: "dataplane", Figure: "CPU per GB znet ÷ " + bareName + " (per round)", Value: median(m.cpuRatio), Unit: "×",
			Note: fmt.Sprintf("data planes and iperf3, same segments; median of %d rounds; by round: %s", len(m.cpuRatio), perRound(m.cpuRatio, "×"))})
	for _, c := range all {
		rows = append(rows, Row{Part: "dataplane", Figure: "CPU per GB, " + c.name, Value: median(m.cpuGB[c.name]), Unit: "s/GB",
			Note: fmt.Sprintf("user+system of its processes (%d: %.2f s/GB of it) and of iperf3's client and server, per GB received; median of %d rounds",
				len(c.pids), median(m.procGB[c.name]), len(m.cpuGB[c.name]))})
	}
	zt := median(m.gbps["znet"])
	for _, other := range []string{"Debian wireguard-go", "raw veth"} {
		rows = append(rows, Row{Part: "dataplane", Figure: "znet ÷ " + other + " (throughput)", Value: zt / median(m.gbps[other]), Unit: "×",
			Note: "medians over all rounds (references, not in the pairs)"})
	}
	for _, c := range all {
		pnote := fmt.Sprintf("ping -i 0.01 -c %d after each segment, median reply, median of %d/%d rounds", pingsPerSegment, len(m.rtt[c.name]), cfg.PairRounds)
		rows = append(rows, Row{Part: "dataplane", Figure: "RTT, " + c.name, Value: median(m.rtt[c.name]), Unit: "ms", Note: pnote})
	}
	extra := median(m.extra)
	rows = append(rows, Row{Part: "dataplane", Figure: "RTT znet − " + bareName + " (per round)", Value: extra, Unit: "ms",
		Goal: "≤ 0.05 ms", Verdict: verdictOf(extra, extra <= 0.05),
		Note: fmt.Sprintf("of the median replies; median of %d rounds; by round: %s", len(m.extra), perRound(m.extra, " ms"))},
		Row{Part: "dataplane", Figure: "RTT average znet − " + bareName + " (per round)", Value: median(m.extraAvg), Unit: "ms",
			Note: fmt.Sprintf("with the replies delayed by other work; median of %d rounds; by round: %s", len(m.extraAvg), perRound(m.extraAvg, " ms"))},
		Row{Part: "dataplane", Figure: "RTT minimum znet − " + bareName + " (per round)", Value: median(m.extraMin), Unit: "ms",
			Note: fmt.Sprintf("the luckiest reply, least touched by load (still a wake-up or more per hop); median of %d rounds; by round: %s", len(m.extraMin), perRound(m.extraMin, " ms"))},
		Row{Part: "dataplane", Figure: "RTT under a ping flood znet − " + bareName + " (per round)", Value: median(m.extraFlood), Unit: "ms",
			Note: fmt.Sprintf("ping -f -c %d after each segment's pings, average: back to back, so the data planes' threads are awake; what the paths and the processing cost; median of %d rounds; by round: %s",
				floodPerSegment, len(m.extraFlood), perRound(m.extraFlood, " ms"))})
	return rows
}

// overallRow is the estimate of znet ÷ the bare library over all rounds:
// the mean of the rounds' ratios with its 90 % interval. The rounds, each
// on a lab of its own, are independent; the blocks of one round are not
// (they share its data planes).
func overallRow(ratios []float64, blocks [][]float64) Row {
	mean, half := meanInterval(ratios)
	sd, n := withinSD(blocks)
	return Row{Part: "dataplane", Figure: "znet ÷ " + bareName + " (throughput, over all rounds)", Value: mean, Unit: "×",
		Note: fmt.Sprintf("mean of %d rounds, each on a lab of its own; 90%% interval %.3f–%.3f (Student's t over the rounds: for the minutes of this run; runs minutes apart have differed by more, see doc.go); within a round one block (two segments of each, side by side) moved with a standard deviation of %.3f (%d blocks)",
			len(ratios), mean-half, mean+half, sd, n)}
}

// t90 is the 0.95 quantile of Student's t with 1, 2, ... 10 degrees of
// freedom: the half width of a two-sided 90 % interval, in standard
// errors.
var t90 = []float64{6.314, 2.920, 2.353, 2.132, 2.015, 1.943, 1.895, 1.860, 1.833, 1.812}

// meanInterval returns the mean of xs and the half width of its 90 %
// interval (Student's t; with more than 11 values, that of 10 degrees of
// freedom, slightly wide); NaN for fewer than two.
func meanInterval(xs []float64) (mean, half float64) {
	n := len(xs)
	if n < 2 {
		return math.NaN(), math.NaN()
	}
	for _, x := range xs {
		mean += x / float64(n)
	}
	var ss float64
	for _, x := range xs {
		ss += (x - mean) * (x - mean)
	}
	sd := math.Sqrt(ss / float64(n-1))
	return mean, t90[min(n-1, len(t90))-1] * sd / math.Sqrt(float64(n))
}

// withinSD is the standard deviation of the blocks' ratios around their
// own round's mean, pooled over the rounds, and the number of blocks.
func withinSD(rounds [][]float64) (float64, int) {
	var ss float64
	var n, df int
	for _, bs := range rounds {
		if len(bs) < 2 {
			continue
		}
		var mean float64
		for _, x := range bs {
			mean += x / float64(len(bs))
		}
		for _, x := range bs {
			ss += (x - mean) * (x - mean)
		}
		n += len(bs)
		df += len(bs) - 1
	}
	if df == 0 {
		return math.NaN(), n
	}
	return math.Sqrt(ss / float64(df)), n
}

// splitRow is the row of one contender's split (tally.split) by round:
// the noise floor of the pair's ratio.
func splitRow(name string, splits []float64, perRound func([]float64, string) string) Row {
	lo, hi := math.NaN(), math.NaN()
	if len(splits) > 0 {
		lo, hi = slices.Min(splits), slices.Max(splits)
	}
	return Row{Part: "dataplane", Figure: name + " ÷ itself (first half ÷ second half of its segments, per round)", Value: median(splits), Unit: "×",
		Note: fmt.Sprintf("the noise floor: one contender against itself in the same rounds, %.3f–%.3f; by round: %s", lo, hi, perRound(splits, "×"))}
}
