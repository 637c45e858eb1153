package main

import (
	"flag"
	"fmt"
	"io"
	"slices"
	"strings"
)

// printHelp prints the usage of the command (or the commands starting
// with) words to stdout.
func (a *app) printHelp(words []string) error {
	words = slices.DeleteFunc(slices.Clone(words), func(w string) bool { return strings.HasPrefix(w, "-") })
	if cmd := lookup(words); cmd != nil {
		writeCommandUsage(a.stdout, cmd, false)
		return nil
	}
	if len(words) > 0 && len(nextWords(words)) == 0 {
		return fmt.Errorf("unknown command %q", strings.Join(words, " "))
	}
	writeUsage(a.stdout, words)
	return nil
}

// writeUsage lists the commands that start with prefix (all for none) and
// the global flags.
func writeUsage(w io.Writer, prefix []string) {
	_, _ = fmt.Fprintln(w, "usage: znet [--socket PATH | --api URL --token-file FILE [--ca FILE]] [--json] [--timeout DURATION] COMMAND [ARGS]")
	_, _ = fmt.Fprintln(w)
	_, _ = fmt.Fprintln(w, "Commands:")
	tw := newTable(w)
	for _, c := range commands() {
		if len(c.words) >= len(prefix) && slices.Equal(c.words[:len(prefix)], prefix) {
			_, _ = fmt.Fprintf(tw, "  znet %s\t%s\n", strings.TrimSpace(c.name()+" "+c.args), c.summary)
		}
	}
	_ = tw.Flush()
	_, _ = fmt.Fprintln(w)
	writeGlobalFlags(w)
	_, _ = fmt.Fprintln(w, "\nRun `znet help COMMAND` for a command's flags.")
}

// writeCommandUsage prints one command's usage; short leaves out the
// explanation of the global flags (for usage errors).
func writeCommandUsage(w io.Writer, c *command, short bool) {
	_, _ = fmt.Fprintf(w, "usage: znet %s\n", strings.TrimSpace(c.name()+" "+c.args))
	fs := flag.NewFlagSet(c.name(), flag.ContinueOnError)
	c.setup(fs)
	if !short {
		_, _ = fmt.Fprintf(w, "\n%s.\n", c.summary)
	}
	if hasFlags(fs) {
		_, _ = fmt.Fprintln(w, "\nFlags:")
		writeFlags(w, fs)
	}
	if short {
		_, _ = fmt.Fprintln(w, "\nGlobal flags: --socket PATH, --api URL, --token-file FILE, --ca FILE, --json, --timeout DURATION (see `znet help`)")
		return
	}
	_, _ = fmt.Fprintln(w)
	writeGlobalFlags(w)
}

func writeGlobalFlags(w io.Writer) {
	var g globals
	fs := flag.NewFlagSet("znet", flag.ContinueOnError)
	g.bind(fs, defaultSocket)
	_, _ = fmt.Fprintln(w, "Global flags (before or after the command):")
	writeFlags(w, fs)
}

func hasFlags(fs *flag.FlagSet) bool {
	n := 0
	fs.VisitAll(func(*flag.Flag) { n++ })
	return n > 0
}

// writeFlags lists fs's flags as "  --name TYPE  usage".
func writeFlags(w io.Writer, fs *flag.FlagSet) {
	tw := newTable(w)
	fs.VisitAll(func(f *flag.Flag) {
		typ, usage := flag.UnquoteUsage(f)
		name := "--" + f.Name
		if len(f.Name) == 1 {
			name = "-" + f.Name
		}
		if typ != "" && typ != "value" {
			name += " " + typ
		}
		_, _ = fmt.Fprintf(tw, "  %s\t%s\n", name, usage)
	})
	_ = tw.Flush()
}
