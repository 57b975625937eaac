package sched

import "time"

type lowLatency struct{}

// NewLowLatency returns the scheduler that picks the eligible path with the
// smallest one-way delay, regardless of rate. It suits small packets (inner
// ACKs, DNS, interactive traffic) whose delay matters more than their
// volume; the window rule keeps it off a path that is already full.
func NewLowLatency() Scheduler { return lowLatency{} }

func (lowLatency) Name() string { return "lowlatency" }

func (lowLatency) Pick(_ time.Time, _ int, paths []Path) int {
	useBackup, allFull, ok := candidates(paths)
	if !ok {
		return -1
	}
	best := -1
	for i := range paths {
		p := &paths[i]
		if eligible(p, useBackup, allFull) && (best < 0 || p.OWD < paths[best].OWD) {
			best = i
		}
	}
	return best
}

// LowestDelay returns the index of the usable path with the smallest one-way delay, ignoring
// windows (primary paths first, backups only when no primary is usable), or -1. It is for
// packets too small to fill a window, such as inner TCP ACKs and pings, which the sender lets
// past its window: putting them on a slower path because the fast one is busy with bulk
// traffic would add the difference to every round trip of an interactive flow.
func LowestDelay(paths []Path) int {
	useBackup, _, ok := candidates(paths)
	if !ok {
		return -1
	}
	best := -1
	for i := range paths {
		p := &paths[i]
		if isCandidate(p, useBackup) && (best < 0 || p.OWD < paths[best].OWD) {
			best = i
		}
	}
	return best
}
