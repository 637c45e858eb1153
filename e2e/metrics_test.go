package e2e

import (
	"bufio"
	"context"
	"encoding/json"
	"fmt"
	"io"
	"net"
	"net/http"
	"net/url"
	"os"
	"os/exec"
	"path/filepath"
	"strconv"
	"strings"
	"syscall"
	"testing"
	"time"

	"github.com/stretchr/testify/assert"
	"github.com/stretchr/testify/require"

	"github.com/znet/znet/lab"
	"github.com/znet/znet/namespaces"
)

// metricsPort is where the lab's znetd serve metrics, on each node's
// underlay address inside its namespace.
const metricsPort = 9464

// httpIn returns an HTTP client whose connections are made inside the
// named namespace (where the lab's addresses are).
func httpIn(ns string) *http.Client {
	return &http.Client{Timeout: 10 * time.Second, Transport: &http.Transport{
		DisableKeepAlives: true,
		DialContext: func(ctx context.Context, network, addr string) (net.Conn, error) {
			var c net.Conn
			err := namespaces.DoPath(ns, func() error {
				var d net.Dialer
				var err error
				c, err = d.DialContext(ctx, network, addr)
				return err
			})
			return c, err
		},
	}}
}

// series maps a series ("name{labels}", as exposed) to its value.
type series map[string]float64

// scrape fetches node's /metrics (text format) and returns its series, the
// raw text and how long the answer took.
func scrape(t *testing.T, node lab.Node) (series, string, time.Duration) {
	t.Helper()
	start := time.Now()
	resp, err := httpIn(node.NetNS).Get("http://" + node.Metrics + "/metrics")
	require.NoError(t, err)
	defer func() { _ = resp.Body.Close() }()
	body, err := io.ReadAll(resp.Body)
	took := time.Since(start)
	require.NoError(t, err)
	require.Equal(t, http.StatusOK, resp.StatusCode, string(body))
	s := series{}
	sc := bufio.NewScanner(strings.NewReader(string(body)))
	for sc.Scan() {
		line := sc.Text()
		if line == "" || strings.HasPrefix(line, "#") {
			continue
		}
		i := strings.LastIndexByte(line, ' ')
		require.Positive(t, i, "line %q", line)
		v, err := strconv.ParseFloat(line[i+1:], 64)
		require.NoError(t, err, "line %q", line)
		s[line[:i]] = v
	}
	return s, string(body), took
}

// count returns how many series are named name.
func (s series) count(name string) int {
	n := 0
	for k := range s {
		if k == name || strings.HasPrefix(k, name+"{") {
			n++
		}
	}
	return n
}

// digStatus asks the resolver of workload namespace ns for name, once,
// and returns the answer's status.
func digStatus(t *testing.T, ns, name string) string {
	t.Helper()
	out, err := inNS(ns, "dig", "+time=1", "+tries=1", "+nosearch", name)
	require.NoError(t, err, out)
	for _, line := range strings.Split(out, "\n") {
		if i := strings.Index(line, "status: "); i >= 0 {
			return strings.TrimRight(strings.Fields(line[i+len("status: "):])[0], ",")
		}
	}
	t.Fatalf("no status in %q", out)
	return ""
}

// TestMetrics covers issue 16's metrics on a 2-node lab whose znetd serve
// --metrics (with --metrics-peers) and log JSON.
func TestMetrics(t *testing.T) {
	l := newLabWith(t, lab.Config{Nodes: 2, MetricsPort: metricsPort, Args: []string{"--metrics-peers", "--log-format", "json"}})
	n1, n2 := l.Nodes[0], l.Nodes[1]

	s, _, _ := scrape(t, n1)
	assert.Zero(t, s.count("znet_network_info"), "no network yet")
	assert.Equal(t, 0.0, s["znet_scrape_errors_total"])

	deploy(t, l, deployment(t, "shop", "10.70.0.0/16", l.Nodes))
	deploy(t, l, deployment(t, "blog", "10.71.0.0/16", l.Nodes))
	st := networkStatus(t, n1, "shop")

	t.Run("values follow a deploy", func(t *testing.T) {
		s, _, _ := scrape(t, n1)
		assert.Equal(t, 2, s.count("znet_network_info"))
		assert.Equal(t, 1.0, s[fmt.Sprintf(`znet_network_info{backend=%q,generation="%d",network="shop"}`, st.Backend, st.Generation)])
		assert.Equal(t, 1.0, s[`znet_network_peers{network="shop"}`])
		assert.Equal(t, 1.0, s[`znet_network_peers_up{network="shop"}`], "deploy waited for the mesh")
		assert.Equal(t, 0.0, s[`znet_network_workloads{network="shop"}`])
		assert.Positive(t, s[`znet_peer_last_handshake_timestamp_seconds{network="shop",peer="`+n2.ID+`"}`])
		assert.Positive(t, s[`znet_network_tx_bytes_total{network="shop"}`])
		assert.GreaterOrEqual(t, s["znet_apply_duration_seconds_count"], 2.0, "one apply per network")
		assert.Positive(t, s[`znet_api_requests_total{code="200",method="post"}`])
		if st.PID != 0 {
			assert.Greater(t, s[`znet_dataplane_resident_bytes{network="shop"}`], float64(1<<20))
		}
	})

	web1 := attach(t, n1, "shop", "web1")
	attach(t, n2, "shop", "web2")

	t.Run("values follow an attach", func(t *testing.T) {
		s, _, _ := scrape(t, n1)
		assert.Equal(t, 1.0, s[`znet_network_workloads{network="shop"}`])
		assert.Equal(t, 0.0, s[`znet_network_workloads{network="blog"}`])
		ok, _ := within(5*time.Second, func() bool {
			s, _, _ := scrape(t, n1)
			return s[`znet_dns_records{network="shop"}`] == 2
		})
		assert.True(t, ok, "node 1's resolver holds web1 and web2")
	})

	t.Run("DNS answers are counted by rcode", func(t *testing.T) {
		before, _, _ := scrape(t, n1)
		for name, want := range map[string]string{"web2.shop.internal.": "NOERROR", "nope.shop.internal.": "NXDOMAIN", "example.com.": "REFUSED"} {
			require.Equal(t, want, digStatus(t, web1.ns, name))
		}
		require.Equal(t, "NXDOMAIN", digStatus(t, web1.ns, "nope2.shop.internal."))
		after, _, _ := scrape(t, n1)
		delta := func(rcode string) float64 {
			k := `znet_dns_queries_total{network="shop",rcode="` + rcode + `"}`
			return after[k] - before[k]
		}
		assert.Equal(t, 2.0, delta("NXDOMAIN"))
		assert.Equal(t, 1.0, delta("REFUSED"))
		// The other member's serial checks are answered NOERROR too.
		assert.GreaterOrEqual(t, delta("NOERROR"), 1.0)
	})

	t.Run("promtool finds no problem", func(t *testing.T) {
		if _, err := exec.LookPath("promtool"); err != nil {
			t.Skip("promtool is not installed (Debian package prometheus)")
		}
		_, raw, _ := scrape(t, n1)
		cmd := exec.Command("promtool", "check", "metrics")
		cmd.Stdin = strings.NewReader(raw)
		out, err := cmd.CombinedOutput()
		assert.NoError(t, err, string(out))
		assert.Empty(t, strings.TrimSpace(string(out)))
	})

	t.Run("a Prometheus server scrapes both nodes", func(t *testing.T) {
		testPrometheus(t, l)
	})

	t.Run("logs are JSON and name the network", func(t *testing.T) {
		checkJSONLog(t, n1)
	})

	t.Run("a stopped data plane does not hold a scrape", func(t *testing.T) {
		if st.PID == 0 {
			t.Skip("the kernel backend has no data-plane process to stop")
		}
		before, _, _ := scrape(t, n1) // the values to fall back on
		require.NoError(t, syscall.Kill(st.PID, syscall.SIGSTOP))
		t.Cleanup(func() { _ = syscall.Kill(st.PID, syscall.SIGCONT) })
		for range 2 {
			s, _, took := scrape(t, n1)
			t.Logf("scrape with shop's data plane stopped took %s", took.Round(time.Millisecond))
			assert.Less(t, took, time.Second)
			assert.Equal(t, 1.0, s[`znet_network_peers{network="shop"}`], "the last known value")
			assert.Greater(t, s["znet_scrape_errors_total"], before["znet_scrape_errors_total"])
			before = s
		}
		require.NoError(t, syscall.Kill(st.PID, syscall.SIGCONT))
		ok, _ := within(10*time.Second, func() bool {
			a, _, _ := scrape(t, n1)
			b, _, _ := scrape(t, n1)
			return a["znet_scrape_errors_total"] == b["znet_scrape_errors_total"]
		})
		assert.True(t, ok, "scrapes are fresh again once the data plane runs")
	})

	t.Run("a killed data plane counts a restart", func(t *testing.T) {
		pid := networkStatus(t, n1, "shop").PID
		if pid == 0 {
			t.Skip("the kernel backend has no data-plane process to kill")
		}
		s, _, _ := scrape(t, n1)
		restarts, watched := s[`znet_dataplane_restarts_total{network="shop"}`]
		require.True(t, watched, "a watched data plane has the series")
		require.Equal(t, 0.0, restarts)
		require.NoError(t, syscall.Kill(pid, syscall.SIGKILL))
		ok, took := within(10*time.Second, func() bool {
			s, _, _ := scrape(t, n1)
			return s[`znet_dataplane_restarts_total{network="shop"}`] == 1
		})
		require.True(t, ok, "no restart counted")
		t.Logf("restart counted %s after the kill", took.Round(time.Millisecond))
		s, _, _ = scrape(t, n1)
		assert.Equal(t, 0.0, s[`znet_dataplane_restarts_total{network="blog"}`])
	})
}

// testPrometheus runs a Prometheus server in node 1's namespace that
// scrapes every node, and asks it through its HTTP API how many networks
// there are.
func testPrometheus(t *testing.T, l *lab.Lab) {
	if _, err := os.Stat("/usr/bin/prometheus"); err != nil {
		t.Skip("/usr/bin/prometheus is not installed (Debian package prometheus)")
	}
	dir := t.TempDir()
	var targets []string
	for _, n := range l.Nodes {
		targets = append(targets, strconv.Quote(n.Metrics))
	}
	cfg := fmt.Sprintf("global:\n  scrape_interval: 1s\n  evaluation_interval: 1s\nscrape_configs:\n"+
		"  - job_name: znet\n    static_configs:\n      - targets: [%s]\n", strings.Join(targets, ", "))
	require.NoError(t, os.WriteFile(filepath.Join(dir, "prometheus.yml"), []byte(cfg), 0o600))
	n1 := l.Nodes[0]
	web := net.JoinHostPort(n1.Underlay.String(), "9090")
	// `ip netns exec` execs prometheus itself: the pid is the server's.
	cmd := exec.Command("ip", "netns", "exec", n1.NetNS, "/usr/bin/prometheus",
		"--config.file", filepath.Join(dir, "prometheus.yml"), "--storage.tsdb.path", filepath.Join(dir, "data"),
		"--web.listen-address", web, "--log.level", "warn")
	logf, err := os.Create(filepath.Join(dir, "prometheus.log"))
	require.NoError(t, err)
	defer func() { _ = logf.Close() }()
	cmd.Stdout, cmd.Stderr = logf, logf
	require.NoError(t, cmd.Start())
	defer func() {
		_ = cmd.Process.Kill()
		_ = cmd.Wait()
	}()

	var got string
	ok, took := within(90*time.Second, func() bool {
		status, values := promQuery(n1.NetNS, web, "count(count by (network) (znet_network_info))")
		if status != "success" || len(values) != 1 {
			return false
		}
		got = values[0]
		return got == "2"
	})
	if !ok {
		b, _ := os.ReadFile(filepath.Join(dir, "prometheus.log"))
		t.Logf("prometheus log:\n%s", tail(string(b), 30))
	}
	require.True(t, ok, "Prometheus counted %q networks, want 2", got)
	// The README's example queries are valid PromQL over these series.
	for _, q := range []string{
		"znet_network_peers - znet_network_peers_up > 0",
		"increase(znet_dataplane_restarts_total[1h]) > 0",
		`sum by (network) (rate(znet_dns_queries_total{rcode!="NOERROR"}[5m])) / sum by (network) (rate(znet_dns_queries_total[5m]))`,
	} {
		status, _ := promQuery(n1.NetNS, web, q)
		assert.Equal(t, "success", status, q)
	}
	t.Logf("Prometheus answered 2 networks after %s", took.Round(time.Millisecond))
}

// promQuery asks the Prometheus server at web (inside namespace ns) for
// query's instant vector and returns the answer's status and the values.
func promQuery(ns, web, query string) (status string, values []string) {
	q := url.Values{"query": {query}}
	resp, err := httpIn(ns).Get("http://" + web + "/api/v1/query?" + q.Encode())
	if err != nil {
		return err.Error(), nil
	}
	defer func() { _ = resp.Body.Close() }()
	var r struct {
		Status string `json:"status"`
		Error  string `json:"error"`
		Data   struct {
			Result []struct {
				Value [2]any `json:"value"`
			} `json:"result"`
		} `json:"data"`
	}
	if err := json.NewDecoder(resp.Body).Decode(&r); err != nil {
		return err.Error(), nil
	}
	for _, v := range r.Data.Result {
		s, _ := v.Value[1].(string)
		values = append(values, s)
	}
	if r.Status != "success" {
		return r.Status + ": " + r.Error, nil
	}
	return r.Status, values
}

// checkJSONLog checks that every line node's znetd logged is a JSON object,
// and that the lines about a network, a workload or a data plane name it.
func checkJSONLog(t *testing.T, node lab.Node) {
	b, err := os.ReadFile(node.Log)
	require.NoError(t, err)
	seen := map[string]bool{}
	for _, line := range strings.Split(strings.TrimSpace(string(b)), "\n") {
		var rec map[string]any
		require.NoError(t, json.Unmarshal([]byte(line), &rec), "not JSON: %q", line)
		msg, _ := rec["msg"].(string)
		seen[msg] = true
		switch msg {
		case "attached":
			assert.NotEmpty(t, rec["workload"], line)
			fallthrough
		case "applied", "reserved", "started data plane":
			assert.NotEmpty(t, rec["network"], line)
		}
		if _, ok := rec["ifname"]; ok {
			assert.NotEmpty(t, rec["network"], "a line about a device names its network: %s", line)
		}
	}
	for _, msg := range []string{"applied", "attached", "started data plane", "serving metrics"} {
		assert.True(t, seen[msg], "no %q line", msg)
	}
}
