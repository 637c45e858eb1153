// Package metrics exposes a node's networks to Prometheus: a
// prometheus.Collector that reads what the daemon knows at scrape time
// (Collector), and the per-node instruments the API server and the daemon
// feed (Node).
//
// A scrape never waits on a slow or stopped data plane. The list of
// networks comes from the daemon's state (no data plane is asked); each
// network's live state (peers, bytes, resolver) is read by its own
// goroutine, at most one per network at a time, and the scrape waits for
// them only until its deadline. A network whose read is late is served
// with its last known values and counted in znet_scrape_errors_total; its
// read goes on and refreshes those values for the next scrape.
//
// The package leaves out serving HTTP beyond Handler, choosing the
// listening address, and everything the daemon does: it only reads.
package metrics
