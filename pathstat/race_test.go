//go:build race

package pathstat

// raceEnabled reports whether the race detector is on; allocation counts are
// meaningless under it.
const raceEnabled = true
