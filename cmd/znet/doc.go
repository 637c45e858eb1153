// Command znet is the znet CLI. It talks to one node's znetd over the API
// socket (--socket, $ZNET_SOCKET, default /run/znet/znetd.sock), or over
// its optional remote API (--api https://host:port with --token-file and
// optionally --ca), to reserve,
// apply, list, show and delete networks, attach, detach and list workloads,
// and show the live status of the mesh. Run `znet help`.
//
// Every command prints a table for people, or with --json exactly the API's
// answer. Errors go to stderr as "znet: field: message"; the exit code is 1
// for an error and 2 for a bad command line.
//
// znet checks only the shape of the command line: specs are sent as they
// are and the daemon validates everything, so there is one set of rules.
// Commands are entries in a table (cli.go) contributed by one file per
// command group, so later groups (deploy, lab, access) add a file and a
// line in commands().
package main
