package session

import (
	"testing"
	"time"

	"github.com/bondtun/bondtun/sched"
)

// TestMarkJoining: a path in startup is joining only when it became usable after another
// usable path was measured (docs/DECISIONS.md, "A path that joins a running transfer is
// tried").
func TestMarkJoining(t *testing.T) {
	t0 := time.Date(2026, 1, 1, 0, 0, 0, 0, time.UTC)
	at := func(ms int) time.Time { return t0.Add(time.Duration(ms) * time.Millisecond) }
	type path struct {
		usable, startup    bool
		usableAt, measured time.Time // zero measured: not yet
	}
	tests := []struct {
		name  string
		paths []path
		want  []bool
	}{
		{"started together, one measured sooner", []path{
			{true, false, at(0), at(300)}, {true, true, at(5), time.Time{}}}, []bool{false, false}},
		{"added after the cable was measured", []path{
			{true, false, at(0), at(300)}, {true, true, at(9000), time.Time{}}}, []bool{false, true}},
		{"rejoined after the other was measured", []path{
			{true, true, at(12000), time.Time{}}, {true, false, at(0), at(400)}}, []bool{true, false}},
		{"the measured path is not usable", []path{
			{false, false, at(0), at(300)}, {true, true, at(9000), time.Time{}}}, []bool{false, false}},
		{"measured itself: not joining", []path{
			{true, false, at(0), at(300)}, {true, false, at(9000), at(9500)}}, []bool{false, false}},
		{"not usable itself", []path{
			{true, false, at(0), at(300)}, {false, true, at(9000), time.Time{}}}, []bool{false, false}},
	}
	for _, tc := range tests {
		t.Run(tc.name, func(t *testing.T) {
			s := &Session{}
			for _, p := range tc.paths {
				s.schedPaths = append(s.schedPaths, sched.Path{Usable: p.usable, Startup: p.startup})
				s.schedTimes = append(s.schedTimes, [2]time.Time{p.usableAt, p.measured})
			}
			s.markJoining()
			for i, want := range tc.want {
				if got := s.schedPaths[i].Joining; got != want {
					t.Errorf("path %d: Joining = %v, want %v", i, got, want)
				}
			}
		})
	}
}
