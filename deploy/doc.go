// Package deploy rolls one network out over many nodes, as `znet deploy`
// does: it reads a deployment file (Decode), asks every node to reserve its
// place, plans the nodes' subnets (members keep theirs, new members get the
// lowest free one), builds the next generation of the spec, applies it to
// every node (public ones in parallel, then hidden ones), deletes the network on nodes that were left out
// (or forgets those gone for good, Options.Forget), and waits until every
// node has heard from every peer it should have since the apply (Run).
//
// Private keys never leave the nodes: deploy only sees the public keys the
// nodes reserved. A node that fails is reported with its error and the
// others are still applied; running the same deployment again converges.
// To find a left-out node again, deploy keeps a small JSON record of each
// network's node APIs under Options.StateDir.
//
// It talks to each node through an API (api.Service plus ApplyRaw): a Unix
// socket, or znetd's https API (--listen) with a bearer token from a
// private token file and an optional CA file. It does not build or check the data
// plane itself: it trusts what each node's Status reports. The package
// deploytest has in-memory fake nodes for tests.
package deploy
