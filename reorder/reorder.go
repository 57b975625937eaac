// Package reorder is the receiver's reorder buffer: a pure state machine that
// puts the inner packets of each lane back into lane-sequence order.
//
// The sender numbers inner packets per lane (a hash of the inner flow), so a
// gap in one lane never stalls another. A gap is released, and the packets
// held behind it delivered, when
//
//	(a) it is filled;
//	(b) every live path has delivered a packet sent after the first packet
//	    held behind the gap: paths are FIFO, so the missing packet is no
//	    longer in flight anywhere;
//	(c) its deadline passes: the arrival of the first packet held behind the
//	    gap plus the adaptive hold (see [Buffer.Hold]);
//
// or when the buffer is full (the pushed lane's gap is released) or a lane
// sequence jumps far ahead. See docs/DECISIONS.md, "Reorder".
//
// The package starts no goroutines and reads no clock: every method that
// depends on time takes now. It is allocation-free in steady state.
package reorder

import (
	"math"
	"time"
)

const (
	minTime = math.MinInt64
	maxTime = math.MaxInt64
)

// Defaults for the zero fields of [Config].
const (
	DefaultMaxPackets = 4096
	DefaultMinHold    = 2 * time.Millisecond
	DefaultMaxHold    = 500 * time.Millisecond
)

// Config sizes a [Buffer]. The zero value means the defaults.
type Config struct {
	// MaxPackets bounds the packets held behind gaps, over all lanes.
	// It is also how far ahead of the next expected sequence a packet may
	// be before its lane is flushed. Default 4096.
	MaxPackets int
	// MinHold and MaxHold clamp the adaptive hold. Defaults 2 ms and
	// 500 ms; MinHold is lowered to MaxHold if it is larger.
	MinHold, MaxHold time.Duration
	// StartAtZero says every lane's first sequence is 0, as in a bondtun session: a lane
	// whose first packet to arrive is a later one (its first packets took a slower path)
	// waits for the earlier ones as for any gap. Without it a lane starts at whatever
	// comes first, and earlier packets arriving after it are late.
	StartAtZero bool
}

func (c Config) withDefaults() Config {
	if c.MaxPackets <= 0 {
		c.MaxPackets = DefaultMaxPackets
	}
	if c.MinHold <= 0 {
		c.MinHold = DefaultMinHold
	}
	if c.MaxHold <= 0 {
		c.MaxHold = DefaultMaxHold
	}
	c.MinHold = min(c.MinHold, c.MaxHold)
	return c
}

// Buffer reorders items of type T, typically the caller's pooled packet
// buffers. Items handed to Push are owned by the Buffer until Drain returns
// them; an item for which Push returns false stays with the caller.
// Released items wait in a queue until Drain: call Drain after every receive
// batch, since that queue is not counted against Config.MaxPackets.
//
// All times must come from one clock. A Buffer is not safe for concurrent
// use: one receive goroutine owns it.
type Buffer[T any] struct {
	cfg     Config
	ringMax int // largest per-lane ring, a power of two > MaxPackets

	hasBase bool
	base    time.Time // times are kept as int64 ns since base

	// The tables below are allocated when first used (laneOf, pathOf, gapHeap.set,
	// deliver), and then kept: a buffer that only sees probes holds one small path table.
	lanes     *[256]*lane[T] // each lane allocated when it first carries a packet (laneOf)
	byArrival gapHeap        // lanes with a gap, keyed by gap arrival (rule c)
	bySent    gapHeap        // the same lanes keyed by first held send time (rule b)
	held      int            // packets held behind gaps, all lanes
	ready     []T            // released, waiting for Drain

	paths   []*path // indexed by path id, grown to the largest id seen (pathOf)
	live    []uint8
	horizon int64         // min over live paths of the newest send time
	hold    time.Duration // current adaptive hold
	holdCap time.Duration // SetMaxHold; 0 means none
	expect  int64         // Expect: no deadline release before this (ns since base)
	repair  time.Duration // SetRepair: extra hold for a re-sent copy; 0 means rule (b) applies

	stats Stats
}

// New returns an empty Buffer.
func New[T any](cfg Config) *Buffer[T] {
	cfg = cfg.withDefaults()
	ringMax := 1
	for ringMax <= cfg.MaxPackets {
		ringMax <<= 1
	}
	b := &Buffer[T]{
		cfg:     cfg,
		ringMax: ringMax,
	}
	b.recompute()
	return b
}

// laneOf returns lane id's state, allocating it on first use: a session uses few of the
// 256 lanes (a library connection one), and an idle one none.
func (b *Buffer[T]) laneOf(id uint8) *lane[T] {
	if b.lanes == nil {
		b.lanes = new([256]*lane[T])
	}
	ln := b.lanes[id]
	if ln == nil {
		ln = new(lane[T])
		b.lanes[id] = ln
	}
	return ln
}

// pathOf returns path id's state, allocating it when the path is first seen.
func (b *Buffer[T]) pathOf(id uint8) *path {
	if int(id) >= len(b.paths) {
		// Ids are few and small (a session's uplink in the high nibble): the table grows
		// rarely, and stays below 256 entries.
		grown := make([]*path, int(id)+1)
		copy(grown, b.paths)
		b.paths = grown
		if b.live == nil {
			b.live = make([]uint8, 0, 8)
		}
	}
	p := b.paths[id]
	if p == nil {
		p = new(path)
		b.paths[id] = p
	}
	return p
}

// ts converts t to ns since the Buffer's base, which is the first time seen.
func (b *Buffer[T]) ts(t time.Time) int64 {
	if !b.hasBase {
		b.base, b.hasBase = t, true
	}
	return int64(t.Sub(b.base))
}

// Push offers the item with lane sequence seq, which arrived at now on path
// and was sent at sent (already converted to the receiver's clock base).
// It returns false, and keeps nothing, if the item is a duplicate or older
// than what its lane already delivered; the caller then recycles it.
// Deliverable items are returned by the next Drain.
func (b *Buffer[T]) Push(now time.Time, lane uint8, seq uint64, path uint8, sent time.Time, item T) bool {
	t, s := b.ts(now), b.ts(sent)
	ok := b.insert(t, lane, seq, s, item)
	if b.held > b.cfg.MaxPackets {
		// Only a stored packet raises held, so lane has a gap to release.
		b.release(t, lane, &b.stats.Overflow)
	}
	b.observe(t, path, s)
	b.releasePast(t)
	return ok
}

// Seen records a packet that carries no lane item (a probe or feedback
// frame) arriving at now on path, sent at sent. It advances rule (b) and the
// path's delay statistics exactly as a Push would.
func (b *Buffer[T]) Seen(now time.Time, path uint8, sent time.Time) {
	t, s := b.ts(now), b.ts(sent)
	b.observe(t, path, s)
	b.releasePast(t)
}

// Drain releases every gap whose deadline is at or before now and appends
// all deliverable items to dst, in sequence order within each lane.
func (b *Buffer[T]) Drain(now time.Time, dst []T) []T {
	t := b.ts(now)
	for {
		b.releasePast(t)
		lane, arrival, ok := b.byArrival.top()
		if !ok || arrival+int64(b.hold) > t {
			break
		}
		if t < b.expect && t-arrival < int64(b.cfg.MaxHold) {
			break // a repair is on its way (Expect)
		}
		b.release(t, lane, &b.stats.Deadline)
	}
	dst = append(dst, b.ready...)
	clear(b.ready) // drop references for the GC
	b.ready = b.ready[:0]
	return dst
}

// NextDeadline returns the earliest time at which Drain will release a gap
// by rule (c), and false if no gap is pending. The deadline follows the
// current hold, so re-arm the timer after every Push.
func (b *Buffer[T]) NextDeadline() (time.Time, bool) {
	_, arrival, ok := b.byArrival.top()
	if !ok {
		return time.Time{}, false
	}
	due := arrival + int64(b.hold)
	if due < b.expect {
		due = min(b.expect, arrival+int64(b.cfg.MaxHold))
	}
	return b.base.Add(time.Duration(due)), true
}

// Expect tells the buffer that the sender is re-sending a packet the receiver saw lost at
// now, which may fill any gap now open: no gap is released by its deadline before now plus
// the repair allowance (SetRepair), nor kept past MaxHold. A repair lost in turn is seen
// lost, asked for and sent again a round trip after the first, past a deadline that allowed
// for one repair (docs/DECISIONS.md).
func (b *Buffer[T]) Expect(now time.Time) {
	if b.repair > 0 {
		b.expect = max(b.expect, b.ts(now)+int64(b.repair))
	}
}

// SetLive marks path live or dead. A path is live from its first packet
// until it is set dead, and a dead path stays dead until set live. Rule (b)
// waits only for live paths, so a path's death releases at once every gap
// that waited only on it; with no live path at all, every gap is released.
func (b *Buffer[T]) SetLive(now time.Time, path uint8, live bool) {
	t := b.ts(now)
	p := b.pathOf(path)
	was := p.state == pathLive
	p.state = pathDead
	if live {
		p.state = pathLive
	}
	switch {
	case live && !was:
		b.live = append(b.live, path)
	case !live && was:
		for i, id := range b.live {
			if id == path {
				b.live = append(b.live[:i], b.live[i+1:]...)
				break
			}
		}
	}
	b.recompute()
	b.releasePast(t)
}

// SetMaxHold caps the adaptive hold below Config.MaxHold, for example at
// 2·max SRTT. Zero or a negative d removes the cap.
func (b *Buffer[T]) SetMaxHold(d time.Duration) {
	b.holdCap = max(d, 0)
	b.recompute()
}

// SetRepair tells the buffer that the sender re-sends lost packets, on
// another path, about d after the receiver sees the loss. A gap then waits
// for the copy: rule (b) is off (the lost packet is no longer in flight, but
// its copy soon will be) and the hold grows by d. Zero restores rule (b).
func (b *Buffer[T]) SetRepair(now time.Time, d time.Duration) {
	b.repair = max(d, 0)
	b.recompute()
	b.releasePast(b.ts(now))
}

// Hold returns the current adaptive hold: the largest, over live paths, of
// the path's smoothed relative OWD minus the smallest windowed-minimum
// relative OWD of any live path, plus four mean deviations, clamped to
// [MinHold, MaxHold] and the SetMaxHold cap.
func (b *Buffer[T]) Hold() time.Duration { return b.hold }

// Len returns the number of items held behind gaps. It never exceeds
// Config.MaxPackets. Items already released but not yet drained are not
// counted.
func (b *Buffer[T]) Len() int { return b.held }

// Stats returns the counters since New.
func (b *Buffer[T]) Stats() Stats { return b.stats }

// observe feeds one packet's arrival on path into rule (b) and the OWD
// statistics.
func (b *Buffer[T]) observe(t int64, id uint8, sent int64) {
	p := b.pathOf(id)
	if p.state == pathUnknown {
		p.state = pathLive
		b.live = append(b.live, id)
	}
	if !p.hasSent || sent > p.maxSent {
		p.maxSent, p.hasSent = sent, true
	}
	p.owd.update(t, t-sent)
	if p.state == pathLive {
		b.recompute()
	}
}

// releasePast releases, by rule (b), every gap whose first held packet was
// sent before the newest packet of every live path.
func (b *Buffer[T]) releasePast(t int64) {
	if b.repair > 0 {
		return
	}
	for {
		lane, sent, ok := b.bySent.top()
		if !ok || sent >= b.horizon {
			return
		}
		b.release(t, lane, &b.stats.PathsPast)
	}
}
