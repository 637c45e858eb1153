//go:build !race

package overlay

// raceEnabled: see race_on_test.go.
const raceEnabled = false
