package main

import (
	"bytes"
	"net"
	"net/netip"
	"os"
	"path/filepath"
	"strings"
	"testing"

	"github.com/stretchr/testify/assert"
	"github.com/stretchr/testify/require"

	"github.com/znet/znet/api"
	"github.com/znet/znet/api/apitest"
)

func TestGlobalFlagsBeforeOrAfter(t *testing.T) {
	fake, socket := newFake(t)
	fake.Summaries = []api.NetworkSummary{{Name: "shop", Generation: 3, State: "applied"}}
	tests := []struct {
		name string
		args []string
	}{
		{"before", []string{"--socket", socket, "--json", "network", "list"}},
		{"after", []string{"network", "list", "--json", "--socket", socket}},
		{"between the words", []string{"network", "--json", "list", "--socket=" + socket}},
		{"mixed, single dash", []string{"-json", "network", "-socket", socket, "list", "--timeout", "5s"}},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			r := cli(t, "", tt.args...)
			require.Equal(t, 0, r.code, r.stderr)
			assert.JSONEq(t, `[{"name":"shop","generation":3,"state":"applied","nodes":0,"workloads":0}]`, r.stdout)
			assert.Empty(t, r.stderr)
		})
	}
	assert.Len(t, fake.Calls(), len(tests))
}

func TestSocketFromEnvironment(t *testing.T) {
	fake, socket := newFake(t)
	t.Setenv("ZNET_SOCKET", socket)
	var stdout, stderr bytes.Buffer
	code := run([]string{"network", "list", "--json"}, &stdout, &stderr)
	require.Equal(t, 0, code, stderr.String())
	assert.Equal(t, "[]\n", stdout.String())
	assert.Equal(t, []string{"Networks()"}, fake.Calls())
}

// TestJSONShapes checks the objects `--json` prints against DESIGN.md.
func TestJSONShapes(t *testing.T) {
	fake, socket := newFake(t)
	fake.Reservation = api.Reservation{NodeID: "node1", PublicKey: apitest.Key(1), ListenPort: 51820}
	fake.Summaries = []api.NetworkSummary{{Name: "shop", Generation: 3, State: "applied"}, {Name: "zoo", State: "reserved"}}
	fake.Attachment = sampleAttachment()
	fake.WorkloadsOf = sampleWorkloads()
	fake.Statuses = []api.NetworkStatus{sampleStatus()}
	fake.Detail = api.NetworkDetail{Status: sampleStatus()}
	tests := []struct {
		args     []string
		wantKeys []string // keys every object must have
		array    bool
	}{
		{[]string{"network", "reserve", "shop"}, []string{"node_id", "public_key", "listen_port"}, false},
		{[]string{"network", "list"}, []string{"name", "generation"}, true},
		{[]string{"network", "show", "shop"}, []string{"spec", "status"}, false},
		{[]string{"workload", "attach", "shop", "web", "--netns", "/run/netns/web"}, []string{"ipv4", "ipv6", "gateway", "dns", "interface"}, false},
		{[]string{"workload", "list", "shop"}, []string{"name", "ipv4", "ipv6", "netns", "state"}, true},
		{[]string{"status"}, []string{"name", "generation", "interface", "backend", "peers"}, true},
		{[]string{"status", "shop"}, []string{"name", "generation", "interface", "backend", "peers"}, true},
	}
	for _, tt := range tests {
		t.Run(strings.Join(tt.args, " "), func(t *testing.T) {
			r := cli(t, "", append(tt.args, "--json", "--socket", socket)...)
			require.Equal(t, 0, r.code, r.stderr)
			var objs []map[string]any
			if tt.array {
				require.NoError(t, jsonDecode(r.stdout, &objs), r.stdout)
				require.NotEmpty(t, objs)
			} else {
				var obj map[string]any
				require.NoError(t, jsonDecode(r.stdout, &obj), r.stdout)
				objs = append(objs, obj)
			}
			for _, obj := range objs {
				for _, k := range tt.wantKeys {
					assert.Contains(t, obj, k)
				}
			}
		})
	}
}

func TestJSONValues(t *testing.T) {
	fake, socket := newFake(t)
	fake.Attachment = sampleAttachment()
	fake.WorkloadsOf = sampleWorkloads()

	r := cli(t, "", "--socket", socket, "--json", "workload", "attach", "shop", "web", "--netns", "/run/netns/web")
	require.Equal(t, 0, r.code, r.stderr)
	assert.JSONEq(t, `{
		"ipv4": "10.20.1.2", "ipv6": "fd3c:9a1e:77b2:1::2",
		"gateway": "10.20.1.1", "gateway6": "fd3c:9a1e:77b2:1::1",
		"dns": ["10.20.1.1", "fd3c:9a1e:77b2:1::1"], "interface": "znet0"}`, r.stdout)

	r = cli(t, "", "--socket", socket, "--json", "workload", "list", "shop")
	require.Equal(t, 0, r.code, r.stderr)
	var got []api.Workload
	require.NoError(t, jsonDecode(r.stdout, &got))
	assert.Equal(t, sampleWorkloads(), got)
}

func TestCommandsReachTheService(t *testing.T) {
	tests := []struct {
		args       []string
		wantCalls  []string
		wantStdout string
	}{
		{[]string{"network", "delete", "shop"}, []string{"DeleteNetwork(shop, false)"}, "network shop deleted\n"},
		{[]string{"network", "delete", "--force", "shop"}, []string{"DeleteNetwork(shop, true)"}, "network shop deleted\n"},
		{[]string{"network", "delete", "shop", "--force=true"}, []string{"DeleteNetwork(shop, true)"}, "network shop deleted\n"},
		{[]string{"workload", "detach", "shop", "web"}, []string{"Detach(shop, web)"}, "workload web detached from shop\n"},
		{[]string{"workload", "detach", "shop", "web", "--json"}, []string{"Detach(shop, web)"}, ""},
		{[]string{"status", "shop"}, []string{"Status(shop)"}, "no networks\n"},
		{[]string{"status", "--", "shop"}, []string{"Status(shop)"}, "no networks\n"},
	}
	for _, tt := range tests {
		t.Run(strings.Join(tt.args, " "), func(t *testing.T) {
			fake, socket := newFake(t)
			r := cli(t, "", append([]string{"--socket", socket}, tt.args...)...)
			require.Equal(t, 0, r.code, r.stderr)
			assert.Equal(t, tt.wantCalls, fake.Calls())
			assert.Equal(t, tt.wantStdout, r.stdout)
		})
	}
}

func TestAttachSendsTheFlags(t *testing.T) {
	tests := []struct {
		name string
		args []string
		want api.AttachRequest
	}{
		{
			name: "all flags after the arguments",
			args: []string{"workload", "attach", "shop", "web", "--netns", "/run/netns/web", "--ipv4", "10.20.1.9", "--ifname", "eth1"},
			want: api.AttachRequest{Name: "web", NetNS: "/run/netns/web", IPv4: netip.MustParseAddr("10.20.1.9"), IfName: "eth1"},
		},
		{
			name: "flags between the arguments",
			args: []string{"workload", "attach", "--netns=/proc/42/ns/net", "shop", "-ifname", "eth2", "web"},
			want: api.AttachRequest{Name: "web", NetNS: "/proc/42/ns/net", IfName: "eth2"},
		},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			fake, socket := newFake(t)
			fake.Attachment = sampleAttachment()
			r := cli(t, "", append(tt.args, "--socket", socket)...)
			require.Equal(t, 0, r.code, r.stderr)
			assert.Equal(t, []string{"Attach(shop, web)"}, fake.Calls())
			assert.Equal(t, tt.want, fake.LastAttach())
			assert.Equal(t, `workload   web in shop
interface  znet0
ipv4       10.20.1.2
ipv6       fd3c:9a1e:77b2:1::2
gateway    10.20.1.1, fd3c:9a1e:77b2:1::1
dns        10.20.1.1, fd3c:9a1e:77b2:1::1
`, r.stdout)
		})
	}
}

func TestApplyReadsTheSpec(t *testing.T) {
	doc := apitest.SpecDoc("shop", 3)
	file := filepath.Join(t.TempDir(), "shop.json")
	require.NoError(t, os.WriteFile(file, doc, 0o644))
	tests := []struct {
		name  string
		stdin string
		args  []string
	}{
		{"from stdin", string(doc), []string{"network", "apply", "-f", "-"}},
		{"from a file", "", []string{"network", "apply", "-f", file}},
		{"flag after global flags", string(doc), []string{"network", "apply", "--json=false", "-f=-"}},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			fake, socket := newFake(t)
			fake.ApplyResult = api.ApplyResult{Name: "shop", Generation: 3, Changed: true}
			r := cli(t, tt.stdin, append(tt.args, "--socket", socket)...)
			require.Equal(t, 0, r.code, r.stderr)
			assert.Equal(t, "network shop: generation 3 applied\n", r.stdout)
			assert.Equal(t, []string{"Apply(shop, 3)"}, fake.Calls())
			require.NotNil(t, fake.LastSpec())
			assert.Equal(t, "198.18.0.2:40007", fake.LastSpec().Nodes[1].Endpoint)
		})
	}
}

func TestApplyUnchanged(t *testing.T) {
	fake, socket := newFake(t)
	fake.ApplyResult = api.ApplyResult{Name: "shop", Generation: 3}
	r := cli(t, string(apitest.SpecDoc("shop", 3)), "network", "apply", "-f", "-", "--socket", socket)
	require.Equal(t, 0, r.code, r.stderr)
	assert.Equal(t, "network shop: generation 3 was applied already; nothing changed\n", r.stdout)
	r = cli(t, string(apitest.SpecDoc("shop", 3)), "network", "apply", "-f", "-", "--socket", socket, "--json")
	require.Equal(t, 0, r.code, r.stderr)
	assert.JSONEq(t, `{"name": "shop", "generation": 3, "changed": false}`, r.stdout)
}

// TestErrors checks exit codes and messages: 2 and a usage text for a bad
// command line, 1 and "znet: field: message" for everything else.
func TestErrors(t *testing.T) {
	mute := filepath.Join(t.TempDir(), "mute.sock")
	l, err := net.Listen("unix", mute)
	require.NoError(t, err)
	t.Cleanup(func() { _ = l.Close() })

	tests := []struct {
		name       string
		stdin      string
		setup      func(f *apitest.Fake)
		args       []string // --socket of the fake is added unless given
		wantCode   int
		wantStderr []string // lines or parts of lines stderr must contain
		wantCalls  int
	}{
		{name: "no command", args: []string{}, wantCode: 2, wantStderr: []string{"znet: no command given", "usage: znet"}},
		{name: "unknown command", args: []string{"netwrk", "list"}, wantCode: 2, wantStderr: []string{`unknown command "netwrk"`}},
		{name: "group without command", args: []string{"workload"}, wantCode: 2, wantStderr: []string{"which one? (attach, detach, list, guest-config, exec)", "znet workload list NETWORK"}},
		{name: "missing argument", args: []string{"network", "show"}, wantCode: 2, wantStderr: []string{"missing arguments", "usage: znet network show NAME"}},
		{name: "extra argument", args: []string{"network", "show", "a", "b"}, wantCode: 2, wantStderr: []string{`unexpected argument "b"`}},
		{name: "unknown flag", args: []string{"network", "list", "--all"}, wantCode: 2, wantStderr: []string{"flag provided but not defined: -all", "usage: znet network list"}},
		{name: "command flag before the command", args: []string{"--force", "network", "delete", "shop"}, wantCode: 2, wantStderr: []string{"-force"}},
		{name: "flag without value", args: []string{"--socket", "/nonexistent/znetd.sock", "network", "apply", "-f"}, wantCode: 2, wantStderr: []string{"flag needs an argument: -f", "-f FILE"}},
		{name: "apply without a file", args: []string{"network", "apply"}, wantCode: 2, wantStderr: []string{"-f FILE is required"}},
		{name: "attach without netns", args: []string{"workload", "attach", "shop", "web"}, wantCode: 2, wantStderr: []string{"--netns PATH is required", "--ipv4 ADDR"}},
		{name: "attach with a bad address", args: []string{"workload", "attach", "shop", "web", "--netns", "/x", "--ipv4", "fd00::1"}, wantCode: 2, wantStderr: []string{`--ipv4: "fd00::1" is not an IPv4 address`}},
		{name: "bad timeout", args: []string{"status", "--timeout", "soon"}, wantCode: 2, wantStderr: []string{"invalid value \"soon\" for flag -timeout"}},
		{name: "negative timeout", args: []string{"status", "--timeout", "-1s"}, wantCode: 2, wantStderr: []string{"--timeout must not be negative"}},
		{
			name: "not found", setup: func(f *apitest.Fake) { f.SetErr("Network", api.NotFound("name", "no network shop on node node1")) },
			args: []string{"network", "show", "shop"}, wantCode: 1, wantStderr: []string{"znet: name: no network shop on node node1\n"}, wantCalls: 1,
		},
		{
			name: "conflict", setup: func(f *apitest.Fake) {
				f.SetErr("DeleteNetwork", api.Conflict("name", "network shop still has 2 workloads (db, web); detach them or use --force"))
			},
			args: []string{"network", "delete", "shop"}, wantCode: 1, wantStderr: []string{"znet: name: network shop still has 2 workloads (db, web); detach them or use --force\n"}, wantCalls: 1,
		},
		{
			name: "spec refused by the daemon", stdin: `{"name": "shop", "generation": 0}`,
			args: []string{"network", "apply", "-f", "-"}, wantCode: 1, wantStderr: []string{"znet: generation: must be at least 1\n"}, wantCalls: 1,
		},
		{
			name: "spec with an unknown field", stdin: `{"name": "shop", "colour": "red"}`,
			args: []string{"network", "apply", "-f", "-"}, wantCode: 1, wantStderr: []string{"znet: colour: unknown field\n"},
		},
		{
			name: "spec over 1 MiB", stdin: `{"name": "` + strings.Repeat("a", 2<<20) + `"}`,
			args: []string{"network", "apply", "-f", "-"}, wantCode: 1, wantStderr: []string{"znet: request body is larger than the limit of 1048576 bytes (1 MiB)\n"},
		},
		{name: "missing spec file", args: []string{"network", "apply", "-f", "/nonexistent/shop.json"}, wantCode: 1, wantStderr: []string{"znet: reading the spec: open /nonexistent/shop.json: no such file or directory"}},
		{name: "invalid name", args: []string{"network", "reserve", "Shop"}, wantCode: 1, wantStderr: []string{`znet: name: "Shop" is not a valid name`}},
		{name: "daemon not running", args: []string{"status", "--socket", "/nonexistent/znetd.sock"}, wantCode: 1, wantStderr: []string{"znet: cannot reach znetd at /nonexistent/znetd.sock (is znetd running?)"}},
		{name: "daemon does not answer", args: []string{"status", "--socket", mute, "--timeout", "50ms"}, wantCode: 1, wantStderr: []string{"znet: no answer from znetd at " + mute + " within 50ms"}},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			fake, socket := newFake(t)
			if tt.setup != nil {
				tt.setup(fake)
			}
			args := tt.args
			if !strings.Contains(strings.Join(args, " "), "--socket") {
				args = append(args, "--socket", socket)
			}
			r := cli(t, tt.stdin, args...)
			assert.Equal(t, tt.wantCode, r.code)
			for _, want := range tt.wantStderr {
				assert.Contains(t, r.stderr, want)
			}
			assert.Empty(t, r.stdout)
			assert.Len(t, fake.Calls(), tt.wantCalls)
		})
	}
}

func TestHelp(t *testing.T) {
	tests := []struct {
		args []string
		want []string
	}{
		{[]string{"help"}, []string{"usage: znet", "znet network apply -f SPEC.json", "znet status [NETWORK]", "--timeout DURATION"}},
		{[]string{"-h"}, []string{"usage: znet", "znet workload attach NETWORK NAME --netns PATH [--ipv4 ADDR] [--ifname IF]"}},
		{[]string{"--help"}, []string{"usage: znet"}},
		{[]string{"help", "network"}, []string{"znet network delete NAME [--force]"}},
		{[]string{"help", "workload", "attach"}, []string{"usage: znet workload attach", "--netns PATH", "--ifname IF", "--socket PATH"}},
		{[]string{"workload", "attach", "-h"}, []string{"usage: znet workload attach", "--netns PATH"}},
		{[]string{"network", "apply", "--help"}, []string{"usage: znet network apply -f SPEC.json", "-f FILE"}},
	}
	for _, tt := range tests {
		t.Run(strings.Join(tt.args, " "), func(t *testing.T) {
			r := cli(t, "", tt.args...)
			assert.Equal(t, 0, r.code)
			for _, want := range tt.want {
				assert.Contains(t, r.stdout, want)
			}
			assert.Empty(t, r.stderr)
		})
	}
	r := cli(t, "", "help", "bogus")
	assert.Equal(t, 2, r.code)
	assert.Contains(t, r.stderr, `unknown command "bogus"`)
}
