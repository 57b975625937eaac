//go:build !race

package reorder

// raceEnabled skips allocation assertions: the race detector allocates.
const raceEnabled = false
