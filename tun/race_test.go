//go:build race

package tun_test

// raceEnabled skips allocation assertions: the race detector allocates.
const raceEnabled = true
