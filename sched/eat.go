package sched

import (
	"math"
	"time"
)

// minRate stands in for a zero or negative rate estimate, so such a path is
// merely very slow (1 kB/s) rather than a division by zero.
const minRate = 1e3

type eat struct{}

// NewEAT returns the earliest-expected-arrival scheduler. For each eligible
// path it estimates when the packet would arrive:
//
//	(queued + size) / Rate + OWD,   queued = max(0, Inflight − Rate·MinRTT)
//
// and picks the earliest. Inflight counts every byte not yet acknowledged,
// and Rate·MinRTT of them are merely travelling (a path's RTT as measured is
// the time its bytes take to be acknowledged); only the rest waits in a queue
// ahead of the new packet. It keeps no state: bytes it assigned earlier count
// only through Inflight, which the caller updates after each send.
func NewEAT() Scheduler { return eat{} }

func (eat) Name() string { return "eat" }

func (eat) Pick(_ time.Time, size int, paths []Path) int {
	useBackup, allFull, ok := candidates(paths)
	if !ok {
		return -1
	}
	best, bestT := -1, math.Inf(1)
	for i := range paths {
		p := &paths[i]
		if !eligible(p, useBackup, allFull) {
			continue
		}
		if t := arrival(p, size); t < bestT || best < 0 {
			best, bestT = i, t
		}
	}
	return best
}

// arrival is the expected arrival time of a size-byte packet on p, in
// seconds from now.
func arrival(p *Path, size int) float64 {
	rate := p.Rate
	if !(rate >= minRate) { // also catches NaN
		rate = minRate
	}
	queued := float64(p.Inflight) - rate*p.MinRTT.Seconds()
	if queued < 0 {
		queued = 0
	}
	return (queued+float64(size))/rate + p.OWD.Seconds()
}
