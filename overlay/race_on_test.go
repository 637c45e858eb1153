//go:build race

package overlay

// raceEnabled: the race detector's shadow memory makes a data plane's
// memory meaningless to bound.
const raceEnabled = true
