package deploy

import (
	"fmt"
	"slices"

	"github.com/znet/znet/spec"
)

// checkForget refuses, before anything is done, a forget list with an id
// that is not a node id, or that names a node of the file (only a node
// left out of the file can be forgotten).
func checkForget(d *Deployment, forget []string) error {
	for _, id := range forget {
		if err := spec.ValidName(id); err != nil {
			return fieldErr("forget", "%q: %v", id, err)
		}
		if slices.ContainsFunc(d.Nodes, func(n NodeRef) bool { return n.ID == id }) {
			return fieldErr("forget", "%s is in the deployment file; take it out of the file to remove it", id)
		}
	}
	return nil
}

// checkForgetKnown refuses, before anything is applied, a forget list with
// an id that is neither a member of the newest spec nor in the record: a
// mistyped id would otherwise forget nothing, silently.
func checkForgetKnown(network string, forget []string, newest *spec.Spec, rec *record) error {
	for _, id := range forget {
		if newest != nil {
			if _, member := newest.Node(id); member {
				continue
			}
		}
		if _, known := rec.find(id); !known {
			return fieldErr("forget", "%s is not a member of %s and not in its deploy record: nothing to forget", id, network)
		}
	}
	return nil
}

// forgetHint adds to the error of a left-out node that could not be
// reached what to do when that node is gone for good.
func forgetHint(id string, err error) error {
	return fmt.Errorf("%w; if node %s is gone for good, deploy again with --forget %s", err, id, id)
}
