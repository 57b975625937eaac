//go:build race

package framing

// raceEnabled skips allocation tests: the race detector allocates on its own.
const raceEnabled = true
