package deploy

import (
	"encoding/json"
	"errors"
	"fmt"
	"os"
	"path/filepath"
)

// record is what deploy remembers of one network between runs: the API of
// every node it deployed the network to and has not removed it from yet.
type record struct {
	Network string    `json:"network"`
	Nodes   []NodeRef `json:"nodes"`
}

// recordPath returns where the record of network lives under dir.
func recordPath(dir, network string) string {
	return filepath.Join(dir, network+".json")
}

// loadRecord reads the record of network under dir; none (or dir "") gives
// an empty record.
func loadRecord(dir, network string) (*record, error) {
	r := &record{Network: network}
	if dir == "" {
		return r, nil
	}
	b, err := os.ReadFile(recordPath(dir, network))
	if errors.Is(err, os.ErrNotExist) {
		return r, nil
	}
	if err != nil {
		return nil, fmt.Errorf("reading the deploy record: %w", err)
	}
	if err := json.Unmarshal(b, r); err != nil {
		return nil, fmt.Errorf("reading the deploy record %s: %w", recordPath(dir, network), err)
	}
	return r, nil
}

// saveRecord writes r under dir (nothing for dir ""), atomically: a crash
// leaves the old record or the new one.
func saveRecord(dir string, r *record) error {
	if dir == "" {
		return nil
	}
	if err := os.MkdirAll(dir, 0o700); err != nil {
		return fmt.Errorf("saving the deploy record: %w", err)
	}
	b, err := json.MarshalIndent(r, "", "  ")
	if err != nil {
		return fmt.Errorf("saving the deploy record: %w", err)
	}
	f, err := os.CreateTemp(dir, "."+r.Network+".*.tmp")
	if err != nil {
		return fmt.Errorf("saving the deploy record: %w", err)
	}
	_, werr := f.Write(append(b, '\n'))
	if err := errors.Join(werr, f.Sync(), f.Close()); err != nil {
		_ = os.Remove(f.Name())
		return fmt.Errorf("saving the deploy record: %w", err)
	}
	if err := os.Rename(f.Name(), recordPath(dir, r.Network)); err != nil {
		_ = os.Remove(f.Name())
		return fmt.Errorf("saving the deploy record: %w", err)
	}
	return nil
}

// find returns the remembered node with id.
func (r *record) find(id string) (NodeRef, bool) {
	for _, n := range r.Nodes {
		if n.ID == id {
			return n, true
		}
	}
	return NodeRef{}, false
}
