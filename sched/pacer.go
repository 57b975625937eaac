package sched

import "time"

const (
	// PacingGain is how much faster than its measured delivery rate a path is paced:
	// enough for the estimate to grow when the path can carry more, as BBR probes.
	PacingGain = 1.25
	// StartupPacingGain is the gain of a path still in startup (pathstat's full-pipe
	// check has not yet seen its delivery rate stop growing): its estimate may double per
	// round trip, as in BBR's Startup, instead of growing by a quarter.
	StartupPacingGain = 2
	// PacingBurst is the most a path may send at once after a pause, in time at its
	// pacing rate: two ticks of the session timer that drains paced queues.
	PacingBurst = 2 * time.Millisecond
	// MinPacingBurst is the least burst, four full-size datagrams, so a slow path is not
	// held to one datagram per tick. It must stay below the shallowest bottleneck buffer
	// bondtun is to fill: 16 KiB overflowed a 20 Mbit/s link with a 5 ms (12.5 KB) buffer
	// each time a burst left after a pause (docs/DECISIONS.md).
	MinPacingBurst = 6000
)

// Pacer spreads one path's sends over time at its pacing rate ([PacingRate]), a token
// bucket holding at most PacingBurst of sending. The window caps how much a path has in
// flight; the pacer keeps that amount from leaving in one burst, which would overflow a
// bottleneck buffer of about one bandwidth-delay product (docs/DECISIONS.md: each path is
// paced at what it delivers). The zero value is ready: its first use has a full bucket.
// It reads no clock and is not safe for concurrent use.
type Pacer struct {
	tokens float64 // bytes that may leave now
	at     time.Time
}

// PacingRate is the rate in bytes/s at which a path that delivers rate bytes/s is paced:
// PacingGain × rate, or StartupPacingGain × rate while the path is in startup.
func PacingRate(rate float64, startup bool) float64 {
	if startup {
		return rate * StartupPacingGain
	}
	return rate * PacingGain
}

// Allow reports whether a datagram of size bytes may leave now on a path paced at pace
// bytes/s ([PacingRate]), and if so charges it. A datagram may leave while any credit is
// left, so the bucket can go one datagram into debt: a burst allowance smaller than a
// datagram never blocks the path. A pace that is not positive means no pacing.
func (p *Pacer) Allow(now time.Time, pace float64, size int) bool {
	if !(pace > 0) { // also NaN
		return true
	}
	burst := max(pace*PacingBurst.Seconds(), MinPacingBurst)
	if p.at.IsZero() {
		p.tokens = burst
	} else if d := now.Sub(p.at); d > 0 {
		p.tokens = min(p.tokens+pace*d.Seconds(), burst)
	}
	p.at = now
	if p.tokens <= 0 {
		return false
	}
	p.tokens -= float64(size)
	return true
}
