// Package dnsresolver is a network's authoritative DNS resolver on one member
// node, and the way the members' resolvers share their records.
//
// A Resolver answers, from memory only, for the zone <network>.internal.:
// <workload>.<network>.internal A and AAAA for every workload on every member
// (every address when a name exists on several nodes),
// <node-id>.node.<network>.internal A and AAAA for each member's gateways
// (this node included), SOA and NS at the apex, and PTR in in-addr.arpa and
// ip6.arpa for every workload and gateway address. It is authoritative for
// the reverse names of the network's ranges (an unknown address inside them
// is NXDOMAIN) and REFUSED for every other name: the network has no
// internet. It listens on UDP and TCP port 53 of this node's gateway
// addresses, in the network namespace of whoever calls New (Options.Do puts
// every socket it ever makes in the right namespace).
//
// Replication: each resolver serves this node's own workloads as a private
// transfer zone <node-id>._local.<network>.internal. and answers SOA and
// AXFR for it, and NOTIFY for its members' zones, only to and from member
// gateway addresses (the mesh's cryptokey routing vouches for the source
// address). On every change of its records it sends NOTIFY to each member,
// retrying with backoff until acknowledged (five tries); a member that gets a NOTIFY asks for the
// zone's serial at once (RFC 1996) and, if it changed, transfers the zone
// over TCP and replaces what it held for that node; a
// restarted resolver pulls from every member and notifies each. As a
// fallback for a NOTIFY lost after all its retries, each resolver also
// compares each member's SOA serial with the one it holds, every 30 s
// (± 25 %, and slower beyond 60 members, so that an idle network costs next
// to nothing whatever its size), and a few times in the seconds after each
// Update (an apply: it makes every live link carry a packet). All of this
// runs in per-member goroutines with timeouts, so a member that is down keeps
// its last records and never slows answers. A member dropped from the Config
// loses its records at once. Serials follow the wall clock in milliseconds
// (modulo 2^32, RFC 1982 order), so a restarted resolver never reuses the
// serial of its previous run; peers only test them for equality.
//
// The control socket (ServeControl, Push, Query) is how znetd, which may
// restart at any time, hands a Config to the long-lived process that runs
// the Resolver and reads its Stats: one JSON request and one JSON answer per
// connection over a Unix socket (not HTTP, to keep net/http out of every
// data-plane process). The server answers each Config it applied with a
// version, and Push then sends only the change against it (delta.go): a
// member added to a network of a thousand costs a small request, not the
// whole Config. The Resolver itself still rebuilds its view from the whole
// Config on every Update.
//
// Every record has a TTL of 1 s, and so have negative answers, so that a
// caching client never keeps a detached name much longer than the resolvers.
// Answers too big for UDP (512 bytes, or the client's EDNS0 size up to
// 4096) are truncated with TC and complete over TCP. Plain UDP queries are
// answered by the goroutine that reads the socket, from answers packed once
// per view of the records (fastpath.go); everything else goes through
// miekg/dns's server to ServeDNS, and both give the same bytes.
//
// The package leaves out recursion and forwarding (there is no upstream),
// DNSSEC, TSIG (the mesh authenticates members), IXFR (a node's zone is small
// and sent whole), and deciding where the resolver runs, which namespace it
// is in, which firewall rules let members reach port 53 of each other's
// gateways, and who may reach the control socket: those are the caller's.
package dnsresolver
