package main

import (
	"context"
	"errors"
	"flag"
	"fmt"
	"io"
	"os"
	"slices"
	"strings"
	"time"

	"github.com/znet/znet/api"
)

// Defaults of the global flags.
const (
	defaultSocket  = "/run/znet/znetd.sock"
	defaultTimeout = 60 * time.Second
)

// command is one entry of the command table. Each command group (network,
// workload, status, and later deploy, lab, access) contributes its entries
// from its own file; commands lists them all.
type command struct {
	// words are the command's words, e.g. {"network", "apply"}.
	words []string
	// args is the usage text after the words: positional arguments and the
	// command's own flags, e.g. "NETWORK NAME --netns PATH [--ipv4 ADDR]".
	args string
	// min and max bound the number of positional arguments.
	min, max int
	// summary says in a few words what the command does.
	summary string
	// setup binds the command's own flags to fs and returns the function
	// that runs the command once the flags are parsed.
	setup func(fs *flag.FlagSet) runFunc
}

// runFunc runs a command with its positional arguments. ctx carries the
// --timeout deadline.
type runFunc func(ctx context.Context, a *app, args []string) error

// commands returns the command table, in the order `znet help` lists it.
func commands() []*command {
	return slices.Concat(networkCommands(), workloadCommands(), vmCommands(), accessCommands(), statusCommands(), deployCommands(), labCommands(), zosCommands())
}

func (c *command) name() string { return strings.Join(c.words, " ") }

// globals are the flags every command takes, before or after its words.
type globals struct {
	socket    string
	api       string // https://host:port of a remote API, instead of socket
	tokenFile string // the bearer token for api
	ca        string // the CA certificates that sign api's certificate
	json      bool
	timeout   time.Duration
}

func (g *globals) bind(fs *flag.FlagSet, socket string) {
	fs.StringVar(&g.socket, "socket", socket, "znetd's API socket `PATH` (default $ZNET_SOCKET, else "+defaultSocket+")")
	fs.StringVar(&g.api, "api", "", "znetd's remote API `URL` (https://host:port) instead of --socket")
	fs.StringVar(&g.tokenFile, "token-file", "", "`FILE` holding the bearer token of --api (mode 0600)")
	fs.StringVar(&g.ca, "ca", "", "PEM `FILE` of the CA that signs --api's certificate (default: the system's roots)")
	fs.BoolVar(&g.json, "json", false, "print the API's JSON answers instead of tables")
	fs.DurationVar(&g.timeout, "timeout", defaultTimeout, "how long to wait for znetd, a Go `DURATION` such as 30s (0: no limit)")
}

// app is one run of the CLI.
type app struct {
	ctx    context.Context
	stdin  io.Reader
	stdout io.Writer
	stderr io.Writer
	getenv func(string) string
	now    func() time.Time
	g      globals
	remote *api.Client // the --api client, once dispatch made it
}

func newApp(ctx context.Context, stdin io.Reader, stdout, stderr io.Writer) *app {
	return &app{ctx: ctx, stdin: stdin, stdout: stdout, stderr: stderr, getenv: os.Getenv, now: time.Now}
}

// usageError is a mistake in the command line (exit code 2). The usage
// shown is cmd's, or else the list of commands starting with group.
type usageError struct {
	cmd   *command
	group []string
	msg   string
}

func (e *usageError) Error() string { return e.msg }

func usagef(cmd *command, format string, args ...any) error {
	return &usageError{cmd: cmd, msg: fmt.Sprintf(format, args...)}
}

// helpRequest asks for the usage of the commands starting with words.
type helpRequest struct{ words []string }

func (*helpRequest) Error() string { return "help requested" }

// run runs the command line args and returns the exit code.
func (a *app) run(args []string) int {
	err := a.dispatch(args)
	var help *helpRequest
	var usage *usageError
	var exit *exitStatus
	switch {
	case err == nil:
		return 0
	case errors.As(err, &exit):
		return exit.code
	case errors.As(err, &help):
		if err := a.printHelp(help.words); err != nil {
			_, _ = fmt.Fprintf(a.stderr, "znet: %v\n", err)
			return 2
		}
		return 0
	case errors.As(err, &usage):
		_, _ = fmt.Fprintf(a.stderr, "znet: %s\n", usage.msg)
		if usage.cmd != nil {
			writeCommandUsage(a.stderr, usage.cmd, true)
		} else {
			writeUsage(a.stderr, usage.group)
		}
		return 2
	case errors.Is(err, context.DeadlineExceeded):
		_, _ = fmt.Fprintf(a.stderr, "znet: no answer from znetd at %s within %s (raise --timeout?)\n", a.target(), a.g.timeout)
	case errors.Is(err, context.Canceled):
		_, _ = fmt.Fprintln(a.stderr, "znet: interrupted")
	default:
		_, _ = fmt.Fprintf(a.stderr, "znet: %v\n", err)
	}
	return 1
}

// dispatch finds the command, parses its flags and runs it.
func (a *app) dispatch(args []string) error {
	socket := a.getenv("ZNET_SOCKET")
	if socket == "" {
		socket = defaultSocket
	}
	cmd, rest, err := findCommand(args, socket)
	if err != nil {
		return err
	}
	fs := flag.NewFlagSet("znet "+cmd.name(), flag.ContinueOnError)
	fs.SetOutput(io.Discard)
	a.g.bind(fs, socket)
	runCmd := cmd.setup(fs)
	pos, err := parseInterleaved(fs, rest)
	switch {
	case errors.Is(err, flag.ErrHelp):
		return &helpRequest{words: cmd.words}
	case err != nil:
		return usagef(cmd, "%v", err)
	case len(pos) < cmd.min:
		return usagef(cmd, "%s: missing arguments", cmd.name())
	case len(pos) > cmd.max:
		return usagef(cmd, "%s: unexpected argument %q", cmd.name(), pos[cmd.max])
	case a.g.timeout < 0:
		return usagef(cmd, "--timeout must not be negative")
	}
	if err := a.connectRemote(cmd, fs); err != nil {
		return err
	}
	ctx := a.ctx
	if a.g.timeout > 0 {
		var cancel context.CancelFunc
		ctx, cancel = context.WithTimeout(ctx, a.g.timeout)
		defer cancel()
	}
	return runCmd(ctx, a, pos)
}

// findCommand reads the command words from args, skipping global flags
// among them, and returns the command and the arguments left to parse (the
// global flags before the words and everything after them).
func findCommand(args []string, socket string) (*command, []string, error) {
	var scratch globals
	gfs := flag.NewFlagSet("znet", flag.ContinueOnError)
	gfs.SetOutput(io.Discard)
	scratch.bind(gfs, socket)

	var flagArgs, words []string
	cur := args
	for {
		if err := gfs.Parse(cur); errors.Is(err, flag.ErrHelp) {
			return nil, nil, &helpRequest{words: words}
		} else if err != nil {
			return nil, nil, usagef(nil, "%v (a command's own flags go after its words)", err)
		}
		rest := gfs.Args()
		flagArgs = append(flagArgs, cur[:len(cur)-len(rest)]...)
		if len(rest) == 0 {
			if len(words) == 0 {
				return nil, nil, usagef(nil, "no command given")
			}
			return nil, nil, &usageError{group: words, msg: fmt.Sprintf("%s: which one? (%s)", strings.Join(words, " "), strings.Join(nextWords(words), ", "))}
		}
		words, cur = append(words, rest[0]), rest[1:]
		if words[0] == "help" {
			return nil, nil, &helpRequest{words: cur}
		}
		if cmd := lookup(words); cmd != nil {
			return cmd, append(flagArgs, cur...), nil
		}
		if len(nextWords(words)) == 0 {
			return nil, nil, usagef(nil, "unknown command %q", strings.Join(words, " "))
		}
	}
}

// lookup returns the command whose words are exactly words.
func lookup(words []string) *command {
	for _, c := range commands() {
		if slices.Equal(c.words, words) {
			return c
		}
	}
	return nil
}

// nextWords lists the words that can follow words in some command.
func nextWords(words []string) []string {
	var next []string
	for _, c := range commands() {
		if len(c.words) > len(words) && slices.Equal(c.words[:len(words)], words) && !slices.Contains(next, c.words[len(words)]) {
			next = append(next, c.words[len(words)])
		}
	}
	return next
}

// parseInterleaved parses flags that may stand between the positional
// arguments and returns the positional arguments. After "--" everything is
// positional.
func parseInterleaved(fs *flag.FlagSet, args []string) ([]string, error) {
	var pos []string
	for len(args) > 0 {
		if err := fs.Parse(args); err != nil {
			return nil, err
		}
		rest := fs.Args()
		n := len(args) - len(rest)
		if n > 0 && args[n-1] == "--" && (n < 2 || !takesValue(fs, args[n-2])) {
			return append(pos, rest...), nil
		}
		if len(rest) == 0 {
			break
		}
		pos, args = append(pos, rest[0]), rest[1:]
	}
	return pos, nil
}

// takesValue reports whether arg is a flag of fs that consumes the next
// argument as its value.
func takesValue(fs *flag.FlagSet, arg string) bool {
	name, ok := strings.CutPrefix(arg, "-")
	if !ok || strings.Contains(arg, "=") {
		return false
	}
	f := fs.Lookup(strings.TrimPrefix(name, "-"))
	if f == nil {
		return false
	}
	b, isBool := f.Value.(interface{ IsBoolFlag() bool })
	return !isBool || !b.IsBoolFlag()
}

// connectRemote checks the --api, --token-file and --ca flags and, with
// --api, makes the https client that client returns.
func (a *app) connectRemote(cmd *command, fs *flag.FlagSet) error {
	set := map[string]bool{}
	fs.Visit(func(f *flag.Flag) { set[f.Name] = true })
	if a.g.api == "" {
		for _, name := range []string{"token-file", "ca"} {
			if set[name] {
				return usagef(cmd, "--%s is only for a remote API; add --api https://host:port", name)
			}
		}
		return nil
	}
	switch {
	case set["socket"]:
		return usagef(cmd, "give --api or --socket, not both")
	case a.g.tokenFile == "":
		return usagef(cmd, "--api needs --token-file FILE")
	}
	token, err := api.ReadTokenFile(a.g.tokenFile)
	if err != nil {
		return fmt.Errorf("--token-file: %w", err)
	}
	cfg, err := api.ClientTLSConfig(a.g.ca)
	if err != nil {
		return fmt.Errorf("--ca: %w", err)
	}
	c, err := api.NewHTTPSClient(a.g.api, token, cfg)
	if err != nil {
		return fmt.Errorf("--api: %w", err)
	}
	a.remote = c
	return nil
}

// client returns an API client for --api when given, else for the
// --socket path.
func (a *app) client() *api.Client {
	if a.remote != nil {
		return a.remote
	}
	return api.NewClient(a.g.socket)
}

// target names the API the client talks to, for messages.
func (a *app) target() string {
	if a.remote != nil {
		return a.remote.Target()
	}
	return a.g.socket
}

// output prints v as JSON with --json, else runs human.
func (a *app) output(v any, human func(w io.Writer) error) error {
	if a.g.json {
		return printJSON(a.stdout, v)
	}
	return human(a.stdout)
}
