//go:build race

package dataplane

// raceEnabled: the race detector allocates on its own, so garbage per
// operation is meaningless to bound.
const raceEnabled = true
