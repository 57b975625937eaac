// Package aqm is the active queue management of bondtun's local per-path queues: CoDel
// (RFC 8289), which drops from the head of a queue whose packets have waited longer than a
// target for a whole interval, at a rate that grows with the square root of the drops.
// Dropping is how a tunnel that keeps its queues inside itself tells the inner TCP flows to
// slow down. The package is pure: the caller passes the time in.
package aqm

import (
	"math"
	"time"
)

// Defaults of RFC 8289.
const (
	DefaultTarget   = 5 * time.Millisecond
	DefaultInterval = 100 * time.Millisecond
)

// CoDel is the state of one queue's controller. The zero value is not ready; use New.
// It is not safe for concurrent use.
type CoDel struct {
	target, interval time.Duration
	onset            time.Duration // how long sojourn stays above target before dropping

	firstAbove time.Time // when sojourn first stayed above target (zero: below)
	dropping   bool
	dropNext   time.Time
	count      int // drops in the current dropping state
	lastCount  int
}

// New returns a controller with the given target and interval (zero: the defaults).
func New(target, interval time.Duration) *CoDel {
	if target <= 0 {
		target = DefaultTarget
	}
	if interval <= 0 {
		interval = DefaultInterval
	}
	return &CoDel{target: target, interval: interval, onset: interval}
}

// SetIntervals sets, for a queue whose flows' round trip is longer than the one it was
// created for, the onset, how long the sojourn must stay above target before a
// dropping state starts, apart from the interval of the control law (the spacing of the
// drops, interval/√count, and the 16 intervals within which a new dropping state resumes
// the last one's count); zero or less: the default. RFC 8289 uses one interval for both.
// Apart, a queue whose flows' round trip is long can space its drops by that round trip
// (a second drop before the flows reacted to the first cuts their windows twice) and still
// start dropping as soon as a standing queue has lasted the usual 100 ms (a queue that
// suddenly takes another path's load must not wait a long round trip more before it
// signals).
func (c *CoDel) SetIntervals(onset, interval time.Duration) {
	if onset <= 0 {
		onset = DefaultInterval
	}
	if interval <= 0 {
		interval = DefaultInterval
	}
	c.onset, c.interval = onset, interval
}

// OnDequeue is called for each packet leaving the queue at now after waiting sojourn, with
// extra added to the target for this packet (delay equalization across paths: waiting that
// long is intended, not a standing queue). It reports whether the packet must be dropped.
// queueEmpty says whether the queue is empty after this packet.
func (c *CoDel) OnDequeue(now time.Time, sojourn, extra time.Duration, queueEmpty bool) bool {
	okToDrop := c.above(now, sojourn, extra, queueEmpty)
	if c.dropping {
		if !okToDrop {
			c.dropping = false
			return false
		}
		if !now.Before(c.dropNext) {
			c.count++
			c.dropNext = c.controlLaw(c.dropNext)
			return true
		}
		return false
	}
	if okToDrop {
		c.dropping = true
		// Resume near the previous drop rate if the last dropping state was recent.
		if c.count > 2 && now.Sub(c.dropNext) < 16*c.interval {
			c.count = c.count - c.lastCount
		} else {
			c.count = 1
		}
		c.lastCount = c.count
		c.dropNext = c.controlLaw(now)
		return true
	}
	return false
}

// above tracks whether the sojourn has stayed above target for an interval.
func (c *CoDel) above(now time.Time, sojourn, extra time.Duration, queueEmpty bool) bool {
	if sojourn < c.target+extra || queueEmpty {
		c.firstAbove = time.Time{}
		return false
	}
	if c.firstAbove.IsZero() {
		c.firstAbove = now.Add(c.onset)
		return false
	}
	return !now.Before(c.firstAbove)
}

func (c *CoDel) controlLaw(t time.Time) time.Time {
	return t.Add(time.Duration(float64(c.interval) / math.Sqrt(float64(max(c.count, 1)))))
}

// Dropping reports whether the controller is in its dropping state.
func (c *CoDel) Dropping() bool { return c.dropping }
