package main

import (
	"context"
	"io"
	"os"
	"os/signal"
	"syscall"
)

func main() {
	ctx, stop := signal.NotifyContext(context.Background(), os.Interrupt, syscall.SIGTERM)
	code := newApp(ctx, os.Stdin, os.Stdout, os.Stderr).run(os.Args[1:])
	stop()
	os.Exit(code)
}

// run runs the CLI with args (without the program name), reading stdin
// from the process, and returns the exit code: 0 for success, 1 for an
// error, 2 for a usage error.
func run(args []string, stdout, stderr io.Writer) int {
	return newApp(context.Background(), os.Stdin, stdout, stderr).run(args)
}
