//go:build !race

package netmon

// raceEnabled skips allocation assertions: the race detector allocates.
const raceEnabled = false
