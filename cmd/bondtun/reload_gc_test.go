package main

import (
	"runtime/debug"
	"testing"
)

// deferGC raises GOGC to reloadGCPercent and puts back what was set, but never lowers
// it and never turns a collector that is off on.
func TestDeferGC(t *testing.T) {
	orig := debug.SetGCPercent(100)
	defer debug.SetGCPercent(orig)
	for _, before := range []int{100, 50, reloadGCPercent, 1000, -1} {
		debug.SetGCPercent(before)
		restore := deferGC()
		want := max(before, reloadGCPercent)
		if before < 0 {
			want = before
		}
		if during := debug.SetGCPercent(want); during != want {
			t.Errorf("GOGC %d: %d during the reload, want %d", before, during, want)
		}
		restore()
		if after := debug.SetGCPercent(before); after != before {
			t.Errorf("GOGC %d: %d after the reload", before, after)
		}
	}
}
