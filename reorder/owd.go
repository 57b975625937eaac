package reorder

import "time"

const (
	// owdBucket is the length of one bucket of the windowed minimum. Two
	// buckets are kept, so a minimum is forgotten between 5 and 10 s after it
	// was seen: a route change that raises a path's delay shows within 10 s.
	owdBucket = int64(5 * time.Second)
)

// pathState is what the buffer knows about one path.
type pathState int8

const (
	pathUnknown pathState = iota // never seen: becomes live on its first packet
	pathLive
	pathDead
)

// path holds one path's liveness, its newest send time, and its relative
// one-way-delay (OWD) statistics. Relative OWD is arrival − send time; it
// contains the unknown sender/receiver clock offset, which is the same for
// every path, so only differences between paths are used.
type path struct {
	state   pathState
	hasSent bool
	maxSent int64 // newest send time delivered on this path (rule b)
	owd     owdStats
}

// owdStats is a two-bucket windowed minimum plus an RTT-style smoothed mean
// (gain 1/8) and mean deviation (gain 1/4) of the relative OWD, in ns.
type owdStats struct {
	valid    bool
	hasPrev  bool
	cur      int64 // minimum of the current bucket
	prev     int64 // minimum of the previous bucket
	curStart int64 // arrival time at which the current bucket began
	smooth   int64
	dev      int64
}

func (o *owdStats) update(now, rel int64) {
	if !o.valid {
		*o = owdStats{valid: true, cur: rel, curStart: now, smooth: rel}
		return
	}
	switch age := now - o.curStart; {
	case age >= 2*owdBucket:
		o.hasPrev = false
		o.cur, o.curStart = rel, now
	case age >= owdBucket:
		o.prev, o.hasPrev = o.cur, true
		o.cur, o.curStart = rel, now
	case rel < o.cur:
		o.cur = rel
	}
	d := rel - o.smooth
	if d < 0 {
		d = -d
	}
	o.dev += (d - o.dev) / 4
	o.smooth += (rel - o.smooth) / 8
}

// min returns the windowed minimum relative OWD.
func (o *owdStats) min() int64 {
	if o.hasPrev && o.prev < o.cur {
		return o.prev
	}
	return o.cur
}

// recompute refreshes the rule (b) horizon and the adaptive hold from the
// live paths. It costs O(live paths), which is a handful.
func (b *Buffer[T]) recompute() {
	horizon := int64(maxTime) // no live path: nothing can still be in flight
	base := int64(maxTime)
	for _, id := range b.live {
		p := b.pathOf(id)
		if !p.hasSent {
			horizon = minTime // a live path that never delivered may carry anything
		} else if p.maxSent < horizon {
			horizon = p.maxSent
		}
		if p.owd.valid && p.owd.min() < base {
			base = p.owd.min()
		}
	}
	b.horizon = horizon

	var hold int64
	for _, id := range b.live {
		o := &b.pathOf(id).owd
		if !o.valid {
			continue
		}
		// The smoothed OWD, not the path's minimum, is used for the path's
		// own term: a standing queue raises the delay a packet in flight
		// actually sees, and the minimum would miss it.
		if h := o.smooth - base + 4*o.dev; h > hold {
			hold = h
		}
	}
	b.hold = b.clampHold(time.Duration(hold) + b.repair)
}

func (b *Buffer[T]) clampHold(h time.Duration) time.Duration {
	upper := b.cfg.MaxHold
	if b.holdCap > 0 && b.holdCap < upper {
		upper = b.holdCap
	}
	h = max(h, b.cfg.MinHold)
	return min(h, upper)
}
