// Package sched decides which path carries the next packet.
//
// Three schedulers share one interface:
//
//   - EAT (earliest expected arrival, the default) sends each packet on the
//     path where it would arrive first, counting the bytes already queued
//     on it. It fills the lowest-delay path up to the point where its queue
//     delay equals the other paths' extra one-way delay, so below the fast
//     path's capacity nothing is added to latency, and at saturation the
//     split converges to the capacity ratio with packets arriving nearly in
//     send order (docs/DECISIONS.md, "Scheduling"). It ignores windows: the
//     window then meters the local queue into the network. A path that joins a
//     running bond ([Path].Joining) is tried with a steady share until its
//     estimate is measured.
//   - DRR is the paper's deficit round robin, closed loop: quanta follow the
//     measured delivery rates.
//   - LowLatency picks the smallest one-way delay with room, for small
//     packets such as inner TCP ACKs (see [IsSmall]).
//
// [Rebalance] tells the session which queued packets to move when a path's estimate fell
// after EAT placed them, and [RepairPath] where a re-sent packet goes.
//
// DRR and LowLatency skip a path whose bytes in flight exceed its [Window] unless
// every candidate does; all of them use backup paths only when no primary path is
// usable. Ties go to the lowest index, so
// the same input always gives the same pick.
//
// The package is pure logic: no goroutines, sockets or clock reads; Pick
// allocates nothing. A Scheduler is not safe for concurrent use.
package sched

import (
	"fmt"
	"time"
)

// Path is the scheduler's view of one path, refreshed by the caller from its
// path statistics before each Pick (or each burst).
type Path struct {
	ID         uint8         // path id (docs/PROTOCOL.md §2)
	Usable     bool          // validated and not suspect or dead
	Rate       float64       // delivery rate, bytes/s
	OWD        time.Duration // one-way delay: ≈ SRTT/2, or measured
	MinRTT     time.Duration // for the window
	SRTT       time.Duration // smoothed RTT, for the window's jitter allowance
	Jitter     time.Duration // packet-to-packet delay variation, for the window
	Ceiling    int           // loss-bounded in-flight ceiling in bytes, 0 for none (pathstat.Stats.InflightCeiling)
	Startup    bool          // the path's rate is still growing (pathstat.Stats.Startup): a round trip of allowance
	Joining    bool          // in startup, and usable since after another path was measured: EAT tries it (untried)
	Inflight   int           // bytes sent and not yet acknowledged, including the local queue
	Queued     int           // of Inflight, the bytes still in the local queues (EAT, RepairPath)
	PrioQueued int           // of Queued, the bytes on the local priority queue (for RepairPath)
	Backup     bool          // used only when no primary path is usable
}

// Scheduler chooses a path for each packet.
type Scheduler interface {
	// Pick returns the index in paths of the path for a packet of size
	// bytes, or -1 if no path is usable. The caller queues the packet on
	// that path and adds its size to the path's Inflight and Queued before
	// the next call.
	Pick(now time.Time, size int, paths []Path) int
	// Name returns the scheduler's name as accepted by [ByName].
	Name() string
}

const (
	// MinWindow is the smallest in-flight window of a path, so a path with a
	// tiny rate or RTT estimate still gets a useful burst. (16 KiB was tried in
	// issue 12, for thin upstreams: a 60 ms path whose estimate had been driven
	// low then climbed back at 16 KiB per round trip, and a one-flow download
	// over two such paths ran at 2.7 Mbit/s instead of 38.)
	MinWindow = 64 << 10
	// SmallPacket is the largest packet [IsSmall] sends on the low-latency
	// path: inner TCP ACKs with options (52–80 B) and other control traffic.
	SmallPacket = 256
)

// QueueTarget is the standing queue a path may hold in the network beyond its
// bandwidth-delay product. It bounds the delay bondtun adds on a path, keeps
// the path's bottleneck queue from overflowing before traffic moves to the
// other paths, and lets the delivery-rate estimate grow by a factor
// 1 + QueueTarget/MinRTT per round trip when it is too low.
const QueueTarget = 10 * time.Millisecond

// MinQueueAllowance is the least queue allowance of a window: the receiver
// reports deliveries every 5 ms and the sender's timer ticks every 1 ms, so
// bytes already delivered count as in flight for up to about that long, and a
// smaller allowance starves the path between reports (in scenario E an
// allowance of 5.2 ms cost 16-24 % of the goodput, 6.7 ms nothing).
const MinQueueAllowance = 7 * time.Millisecond

// CeilingFloorAllowance is what a path's loss ceiling leaves above its bandwidth-delay
// product: bytes delivered but not yet reported (the receiver reports every 5 ms) count as
// in flight, and a window of the bare BDP starved the path between reports, its samples
// fell, and its estimate with them (a 50 Mbit/s link with a 5 ms buffer swung between 34
// and 49 Mbit/s).
const CeilingFloorAllowance = 5 * time.Millisecond

// MaxJitterAllowance caps what a path's delay variation adds to its window, and
// JitterFloor is the part of a path's measured jitter taken as measurement noise (timer
// ticks, the receiver's processing, a busy CPU: ≈ 0.5–1.2 ms on clean emulated links under
// load), which adds nothing. Counted in full, that noise added ≈ 3 ms of window to a 10 ms
// path whose link buffer is one BDP, and the link dropped 5 % of its datagrams.
//
// JitterSpreadFactor bounds the spread by the jitter: behind a FIFO link the delays of
// consecutive packets are correlated (a late packet holds back the next ones), so the
// spread SRTT − MinRTT is several times the packet-to-packet Jitter, and more so the
// wider the jitter's range against the packets' spacing: normal jitter of σ = 8 ms gave
// Jitter 4–6 ms and a spread of 22–28 ms (≈ 5×), σ = 10 ms at 10 Mbit/s Jitter 5.5 ms and
// a spread of 42 ms (≈ 8×). A factor below the link's own holds the window under what the
// link carries at its round trip, the estimate learns only what the window let through,
// and the two shrink together: with 6, a 30 Mbit/s link of 40 ms ± σ 10 ms settled at
// 10–12 Mbit/s through the tunnel alone (docs/DECISIONS.md).
const (
	MaxJitterAllowance = 50 * time.Millisecond
	JitterFloor        = time.Millisecond
	JitterSpreadFactor = 10
)

// Window returns p's in-flight window: max(Rate·(MinRTT + allowance + jitter), MinWindow)
// bytes, where the queue allowance is two thirds of MinRTT, clamped to
// [MinQueueAllowance, QueueTarget]: a bottleneck buffer is often one bandwidth-delay
// product of the path's base RTT, which 10 ms of standing queue would fill on a 10 ms path
// (every ping then waits the whole buffer). The jitter allowance is for links whose delay
// varies from packet to packet: their typical RTT lies well above the minimum (normal
// jitter of σ: SRTT − MinRTT ≈ 3σ over 10 s of samples), so a window of
// Rate·(MinRTT + allowance) cannot keep them busy, and the rate it lets them deliver is all
// the estimate then learns. It is SRTT − MinRTT, but at most JitterSpreadFactor·(Jitter − JitterFloor) and
// MaxJitterAllowance: a standing queue raises SRTT without raising the packet-to-packet
// jitter, and counting it would let the window grow its own queue (docs/DECISIONS.md).
//
// A path whose link dropped more than a few percent of a round trip's datagrams has a
// Ceiling: the window is then at most max(Ceiling, Rate·(travelTime + CeilingFloorAllowance)),
// so a bottleneck buffer shallower than the queue allowance is not overrun round after
// round, while the path keeps its bandwidth-delay product in flight plus what the
// receiver's 5 ms report spacing holds as not yet reported.
//
// A path in Startup gets at least MinRTT of allowance (a window of about twice its
// bandwidth-delay product, as BBR's Startup), so its estimate can double per round trip.
func Window(p *Path) int {
	allowance := min(max(p.MinRTT*2/3, MinQueueAllowance), QueueTarget)
	if p.Startup {
		allowance = max(allowance, p.MinRTT)
	}
	travel := travelTime(p)
	w := p.Rate * (travel + allowance).Seconds()
	if p.Ceiling > 0 {
		w = min(w, max(float64(p.Ceiling), p.Rate*(travel+CeilingFloorAllowance).Seconds()))
	}
	if w < MinWindow || w != w { // w != w: NaN from a bogus rate
		return MinWindow
	}
	if w > 1<<40 {
		return 1 << 40
	}
	return int(w)
}

// travelTime is how long p's bytes typically take to be acknowledged when no queue stands
// in front of them: MinRTT plus the spread a jittery link adds, SRTT − MinRTT, but at most
// JitterSpreadFactor·(Jitter − JitterFloor) and MaxJitterAllowance (a standing queue raises SRTT without
// raising the packet-to-packet jitter). The window and the expected arrival of EAT and
// RepairPath count Rate·travelTime of the bytes in flight as merely travelling.
func travelTime(p *Path) time.Duration {
	return p.MinRTT + min(max(p.SRTT-p.MinRTT, 0), JitterSpreadFactor*max(p.Jitter-JitterFloor, 0), MaxJitterAllowance)
}

// IsSmall reports whether a packet of size bytes should ride the
// low-latency path rather than the bulk scheduler.
func IsSmall(size int) bool { return size <= SmallPacket }

// ByName returns a constructor for the named scheduler: "eat" (also ""),
// "drr" or "lowlatency".
func ByName(name string) (func() Scheduler, error) {
	switch name {
	case "", "eat":
		return NewEAT, nil
	case "drr":
		return NewDRR, nil
	case "lowlatency":
		return NewLowLatency, nil
	}
	return nil, fmt.Errorf("sched: unknown scheduler %q (want eat, drr or lowlatency)", name)
}

// candidates classifies paths[i] for the shared rules: backup paths are
// candidates only when no primary is usable. It returns whether backups are
// in play and whether every candidate is over its window (in which case the
// window rule is waived). It returns ok=false when no path is usable.
func candidates(paths []Path) (useBackup, allFull, ok bool) {
	primary, backup := false, false
	for i := range paths {
		if paths[i].Usable {
			if paths[i].Backup {
				backup = true
			} else {
				primary = true
			}
		}
	}
	if !primary && !backup {
		return false, false, false
	}
	useBackup = !primary
	allFull = true
	for i := range paths {
		p := &paths[i]
		if isCandidate(p, useBackup) && p.Inflight <= Window(p) {
			allFull = false
			break
		}
	}
	return useBackup, allFull, true
}

func isCandidate(p *Path, useBackup bool) bool { return p.Usable && p.Backup == useBackup }

// eligible reports whether p may be picked under the shared rules.
func eligible(p *Path, useBackup, allFull bool) bool {
	return isCandidate(p, useBackup) && (allFull || p.Inflight <= Window(p))
}
