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
//     send order (docs: ALGORITHMS.md §2.2).
//   - DRR is the paper's deficit round robin, closed loop: quanta follow the
//     measured delivery rates.
//   - LowLatency picks the smallest one-way delay with room, for small
//     packets such as inner TCP ACKs (see [IsSmall]).
//
// All of them skip a path whose bytes in flight exceed its window
// max(2·Rate·MinRTT, 64 KiB) unless every candidate does, and use backup
// paths only when no primary path is usable. Ties go to the lowest index, so
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
	ID       uint8         // path id (docs/PROTOCOL.md §2)
	Usable   bool          // validated and not suspect or dead
	Rate     float64       // delivery rate, bytes/s
	OWD      time.Duration // one-way delay: ≈ SRTT/2, or measured
	MinRTT   time.Duration // for the window
	Inflight int           // bytes sent and not yet acknowledged, including the local queue
	Backup   bool          // used only when no primary path is usable
}

// Scheduler chooses a path for each packet.
type Scheduler interface {
	// Pick returns the index in paths of the path for a packet of size
	// bytes, or -1 if no path is usable. The caller sends the packet and
	// adds its size to that path's Inflight before the next call.
	Pick(now time.Time, size int, paths []Path) int
	// Name returns the scheduler's name as accepted by [ByName].
	Name() string
}

const (
	// MinWindow is the smallest in-flight window of a path, so a path with a
	// tiny rate or RTT estimate still gets a useful burst.
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

// Window returns p's in-flight window: max(Rate·(MinRTT + allowance),
// MinWindow) bytes, where the queue allowance is two thirds of MinRTT,
// clamped to [MinQueueAllowance, QueueTarget]: a bottleneck buffer is often
// one bandwidth-delay product of the path's base RTT, which 10 ms of standing
// queue would fill on a 10 ms path (every ping then waits the whole buffer).
func Window(p *Path) int {
	allowance := min(max(p.MinRTT*2/3, MinQueueAllowance), QueueTarget)
	w := p.Rate * (p.MinRTT + allowance).Seconds()
	if w < MinWindow || w != w { // w != w: NaN from a bogus rate
		return MinWindow
	}
	if w > 1<<40 {
		return 1 << 40
	}
	return int(w)
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
