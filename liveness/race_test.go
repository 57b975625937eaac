//go:build race

package liveness

// raceEnabled skips allocation assertions: the race detector allocates.
const raceEnabled = true
