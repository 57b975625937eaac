package sched

import (
	"math"
	"time"
)

// minRate stands in for a zero or negative rate estimate, so such a path is
// merely very slow (1 kB/s) rather than a division by zero.
const minRate = 1e3

type eat struct{}

// TryQueue is the queue a measured path holds, beyond the bytes merely travelling, when EAT
// starts trying a joining path (untried): the receiver reports every 5 ms, so
// about that much of a busy path's in flight is delivered and not yet reported, and only
// bytes beyond it show the inner flows offering more than the path carries.
const TryQueue = 5 * time.Millisecond

// TriedBytes is what a joining path holds in flight while it is being tried (untried):
// more than its probes and keepalives, which count in flight too.
const TriedBytes = 4 << 10

// NewEAT returns the earliest-expected-arrival scheduler. For each eligible
// path it estimates when the packet would arrive:
//
//	max((queued + size) / Rate, (Queued + size) / pace) + OWD,
//	queued = max(0, Inflight − Rate·travelTime)
//
// (Rate doubled for a path in startup, see arrival; pace its PacingRate),
// and picks the earliest, unless a joining path is being tried (untried).
// Inflight counts every byte not yet acknowledged,
// and Rate·travelTime of them are merely travelling (a path's RTT as measured
// is the time its bytes take to be acknowledged; travelTime is MinRTT plus a
// jittery link's typical spread): only the rest waits in a queue ahead of the
// new packet. Counted from MinRTT alone, a jittery link's travelling bytes
// looked like a queue, EAT offered it less than it carries, and its estimate
// learnt no more than it was offered. The bytes still in the path's local queue
// (Queued, part of Inflight) have not left yet: the pacer sends them at pace, so a packet
// behind them leaves no sooner, however little the network holds. Without that term two
// equal paths in startup, whose Rate·travelTime is twice the estimate's bandwidth-delay
// product, tied and the first took a whole burst of the inner flow into its local queue
// while the other idled (issue 12, docs/DECISIONS.md). It keeps no state: bytes it
// assigned earlier count only through Inflight and Queued, which the caller updates after
// each pick.
func NewEAT() Scheduler { return eat{} }

func (eat) Name() string { return "eat" }

func (eat) Pick(_ time.Time, size int, paths []Path) int {
	useBackup, _, ok := candidates(paths)
	if !ok {
		return -1
	}
	best, bestT := -1, math.Inf(1)
	for i := range paths {
		p := &paths[i]
		if !isCandidate(p, useBackup) {
			continue
		}
		if t := arrival(p, size); t < bestT || best < 0 {
			best, bestT = i, t
		}
	}
	if k := untried(size, paths, useBackup, best, bestT); k >= 0 {
		return k
	}
	return best
}

// untried returns the joining path that takes the packet in EAT's stead, or -1. When EAT's
// choice b (the packet's arrival there bestT) is a measured path, a joining candidate (Path.Joining: in startup, usable since
// after another path was measured) with room in its window is tried while b holds a queue
// (the inner flows offer more than b carries) or while the candidate already carries data:
// it takes the packet if the packet would wait less there than on b, its one-way delay
// counted as b's. It thus carries a steady share, about what its estimate lets it carry,
// until it is measured (out of startup), and arrival alone decides again.
//
// By arrival alone, EAT gives a path that joins a running transfer nothing until the
// measured path's queue has grown by the delay difference, so the new path's estimate never
// grows. An inner flow that probes gently (BBR: a quarter more for one round trip in eight)
// never builds that queue, and excess spilled over only during its probes reaches the
// receiver a delay difference late, held up in the reorder buffer with what follows it, so
// the probe measures no more than the measured path carries: a DSL added to a download
// running on the cable carried nothing for up to 10 s and the download never grew beyond
// the cable. With a steady share the whole flow arrives with the new path's delay, the
// probes measure both paths, and the flow grows (docs/DECISIONS.md, "A path that joins a
// running transfer is tried"). Paths that start together are not joining: tried once the
// fastest one's estimate was measured, a path 58 ms slower took a share while the inner
// flow was still in slow start, and the fake clock's delay-gap fell from 0.95 to 0.81 of
// the sum.
func untried(size int, paths []Path, useBackup bool, best int, bestT float64) int {
	b := &paths[best]
	if b.Startup {
		return -1
	}
	saturated := float64(b.Inflight) >= b.Rate*(travelTime(b)+TryQueue).Seconds()
	k, kWait := -1, bestT-b.OWD.Seconds()
	for i := range paths {
		p := &paths[i]
		if i == best || !isCandidate(p, useBackup) || !p.Joining || p.Inflight >= Window(p) {
			continue
		}
		if !saturated && p.Inflight < TriedBytes {
			continue
		}
		if wait := arrival(p, size) - p.OWD.Seconds(); wait < kWait {
			k, kWait = i, wait
		}
	}
	return k
}

// arrival is the expected arrival time of a size-byte packet on p, in
// seconds from now. A path in startup counts at StartupPacingGain × its rate: its
// estimate is still growing (it may double per round trip), and its window lets twice the
// estimate's bandwidth-delay product be in flight; counted at the estimate, that was a
// round trip of phantom queue, and EAT kept a 60 ms path that could carry 50 Mbit/s to
// what its 10 Mbit/s initial estimate allowed for 2 s (docs/DECISIONS.md).
func arrival(p *Path, size int) float64 {
	rate := effectiveRate(p)
	queued := float64(p.Inflight) - rate*travelTime(p).Seconds()
	if queued < 0 {
		queued = 0
	}
	wait := (queued + float64(size)) / rate
	// The bytes still in the local queue have not left: the pacer lets them go at its rate,
	// however few the network holds.
	if p.Queued > 0 {
		wait = max(wait, float64(p.Queued+size)/PacingRate(max(p.Rate, minRate), p.Startup))
	}
	return wait + p.OWD.Seconds()
}

// RepairPath returns the index of the usable path on which a re-sent packet arrives first,
// or -1 if none is usable. A repair goes ahead of the path's local bulk queue (on its
// priority queue), so it waits only behind the path's queue in the network and PrioQueued:
//
//	(max(0, Inflight − Queued − Rate·travelTime) + PrioQueued + size) / Rate + OWD
//
// The path that lost the original stays a candidate: a random loss says nothing about the
// next packet, and when it is the fastest path, sending the copy over a slower one made
// every repaired gap wait for that path's delay (with 1 % loss on the fast link of a fast
// and a slow one, the receiver's hold then had to cover the slow path's delay on every
// loss). A path that failed is not usable, so its in-flight packets go elsewhere. Windows
// and tiers are ignored, apart from backups being used only when no primary is usable:
// repairs are few, and they fill holes the inner flows wait on.
func RepairPath(size int, paths []Path) int {
	useBackup, _, ok := candidates(paths)
	if !ok {
		return -1
	}
	best, bestT := -1, math.Inf(1)
	for i := range paths {
		p := &paths[i]
		if !isCandidate(p, useBackup) {
			continue
		}
		rate := p.Rate
		if !(rate >= minRate) {
			rate = minRate
		}
		ahead := max(float64(p.Inflight-p.Queued)-rate*travelTime(p).Seconds(), 0) + float64(p.PrioQueued)
		if t := (ahead+float64(size))/rate + p.OWD.Seconds(); t < bestT {
			best, bestT = i, t
		}
	}
	return best
}
