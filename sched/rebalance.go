package sched

import (
	"math"
	"time"
)

// RebalanceMargin and RebalanceFraction bound when [Rebalance] moves queued packets: only
// when the tail of a path's local queue would arrive later than on another path by more
// than max(RebalanceMargin, RebalanceFraction × that path's arrival time). EAT keeps the
// paths' arrival times within a packet of each other while their estimates hold, so this
// acts only when an estimate fell far below what the scheduler had assumed (a fresh path's
// initial 10 Mbit/s on a link of 0.8), never on the swings of a healthy estimate.
const (
	RebalanceMargin   = 20 * time.Millisecond
	RebalanceFraction = 0.5
)

// Rebalance finds the path whose local bulk queue is most out of balance with the rest and
// returns its index, the index of the path its tail should move to, and how many bytes
// of the tail to move; bytes is 0 when no queue is out of balance.
//
// EAT places each packet where it arrives first given the paths' estimates at that
// moment, and a packet stays on its path's local queue until the window and pacer let it
// leave. When a path's rate estimate then falls (a fresh path starts at an assumed rate,
// and a thin link's first samples show a tenth of it), what it holds may wait seconds
// there while the other paths idle: a 0.8 Mbit/s link had 147 KB queued, 1.9 s of
// waiting, and the receiver held every lane behind it (issue 12). The tail of such a queue
// arrives at (Inflight)/Rate + OWD (as [NewEAT] counts it, without the packet); another
// path j would deliver a packet at its own EAT arrival t_j. Moving x bytes equalises the
// two when (t_i − t_j)·r_i·r_j/(r_i + r_j) bytes move; Rebalance returns that, at most the
// path's bulk queue (priority packets stay: they are repairs and small packets already on
// the lowest-delay path).
func Rebalance(paths []Path) (from, to, bytes int) {
	useBackup, _, ok := candidates(paths)
	if !ok {
		return -1, -1, 0
	}
	from, to = -1, -1
	worst := 0.0
	for i := range paths {
		p := &paths[i]
		bulk := p.Queued - p.PrioQueued
		if !isCandidate(p, useBackup) || bulk <= 0 {
			continue
		}
		ti := arrival(p, 0)
		best, tj := -1, math.Inf(1)
		for j := range paths {
			q := &paths[j]
			if j == i || !isCandidate(q, useBackup) {
				continue
			}
			if t := arrival(q, 0); t < tj {
				best, tj = j, t
			}
		}
		if best < 0 || ti-tj <= max(RebalanceMargin.Seconds(), RebalanceFraction*tj) {
			continue
		}
		if gap := ti - tj; gap > worst {
			worst, from, to = gap, i, best
		}
	}
	if from < 0 {
		return -1, -1, 0
	}
	ri, rj := effectiveRate(&paths[from]), effectiveRate(&paths[to])
	x := worst * ri * rj / (ri + rj)
	bulk := paths[from].Queued - paths[from].PrioQueued
	return from, to, int(min(x, float64(bulk)))
}

// effectiveRate is the rate arrival counts p at.
func effectiveRate(p *Path) float64 {
	rate := p.Rate
	if p.Startup {
		rate *= StartupPacingGain
	}
	if !(rate >= minRate) { // also catches NaN
		rate = minRate
	}
	return rate
}
