//go:build !race

package session

// raceEnabled skips allocation tests: the race detector allocates on its own.
const raceEnabled = false
