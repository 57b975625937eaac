package reorder

import "time"

// initialRing is a lane's first ring size; rings double up to ringMax.
const initialRing = 16

// slot holds one packet waiting behind a gap.
type slot[T any] struct {
	item    T
	seq     uint64
	arrival int64
	sent    int64
	used    bool
}

// lane is one lane's state. Held packets have sequences in
// (next, next+len(slots)) and sit at index seq & (len(slots)-1).
type lane[T any] struct {
	slots      []slot[T]
	started    bool
	next       uint64 // next sequence to deliver
	first      uint64 // lowest held sequence, valid when held > 0
	held       int
	gapArrival int64 // when the gap's deadline clock started (rule c)
}

// insert places one item into its lane, delivering it at once when it is
// the next expected, and reports whether the item was accepted.
func (b *Buffer[T]) insert(t int64, id uint8, seq uint64, sent int64, item T) bool {
	ln := b.laneOf(id)
	if !ln.started {
		// The first packet of a lane starts it (at 0, or at its own sequence).
		ln.started, ln.next = true, seq
		if b.cfg.StartAtZero {
			ln.next = 0
		}
	}
	switch {
	case seq < ln.next:
		b.stats.Late++
		return false
	case seq == ln.next:
		if ln.held == 0 {
			b.stats.InOrder++
		}
		b.deliver(item)
		ln.next++
		if ln.held > 0 && ln.first == ln.next {
			b.release(t, id, &b.stats.Filled)
		}
		return true
	case seq-ln.next > uint64(b.cfg.MaxPackets):
		// The sender restarted or a long burst was lost: give up on
		// everything before seq.
		b.stats.Jumps++
		b.flush(t, id)
		ln.next = seq + 1
		b.deliver(item)
		return true
	}
	b.grow(ln, seq)
	sl := &ln.slots[seq&uint64(len(ln.slots)-1)]
	if sl.used {
		b.stats.Duplicates++
		return false
	}
	*sl = slot[T]{item: item, seq: seq, arrival: t, sent: sent, used: true}
	ln.held++
	b.held++
	switch {
	case ln.held == 1:
		ln.first, ln.gapArrival = seq, t
		b.byArrival.set(id, t)
		b.bySent.set(id, sent)
	case seq < ln.first:
		// A packet inside the gap: it is now the first one held. The
		// deadline keeps running from the earlier arrival.
		ln.first = seq
		b.bySent.set(id, sent)
	}
	return true
}

// grow makes the lane's ring large enough to hold seq.
func (b *Buffer[T]) grow(ln *lane[T], seq uint64) {
	need := seq - ln.next + 1
	if uint64(len(ln.slots)) >= need {
		return
	}
	n := max(len(ln.slots), initialRing)
	for uint64(n) < need {
		n <<= 1
	}
	n = min(n, b.ringMax)
	slots := make([]slot[T], n)
	mask := uint64(n - 1)
	for i := range ln.slots {
		if s := ln.slots[i]; s.used {
			slots[s.seq&mask] = s
		}
	}
	ln.slots = slots
}

// release skips the lane's gap, delivers the run of packets behind it, and
// moves the lane to its next gap, if any. counter names the rule.
func (b *Buffer[T]) release(t int64, id uint8, counter *uint64) {
	ln := b.laneOf(id)
	*counter++
	b.stats.addHold(time.Duration(t - ln.gapArrival))
	ln.next = ln.first
	mask := uint64(len(ln.slots) - 1)
	for ln.held > 0 {
		sl := &ln.slots[ln.next&mask]
		if !sl.used {
			break
		}
		b.take(ln, sl)
		ln.next++
	}
	if ln.held == 0 {
		b.byArrival.remove(id)
		b.bySent.remove(id)
		return
	}
	// Find the next gap's first held packet: the scan costs the gap's size.
	for s := ln.next + 1; ; s++ {
		if sl := &ln.slots[s&mask]; sl.used {
			ln.first, ln.gapArrival = s, sl.arrival
			b.byArrival.set(id, sl.arrival)
			b.bySent.set(id, sl.sent)
			return
		}
	}
}

// flush delivers every packet held in the lane, skipping all its gaps.
func (b *Buffer[T]) flush(t int64, id uint8) {
	ln := b.laneOf(id)
	if ln.held == 0 {
		return
	}
	b.stats.addHold(time.Duration(t - ln.gapArrival))
	mask := uint64(len(ln.slots) - 1)
	for s := ln.first; ln.held > 0; s++ {
		if sl := &ln.slots[s&mask]; sl.used {
			b.take(ln, sl)
		}
	}
	b.byArrival.remove(id)
	b.bySent.remove(id)
}

// take delivers a held slot's item and empties the slot.
func (b *Buffer[T]) take(ln *lane[T], sl *slot[T]) {
	b.deliver(sl.item)
	*sl = slot[T]{}
	ln.held--
	b.held--
}

func (b *Buffer[T]) deliver(item T) {
	if b.ready == nil {
		b.ready = make([]T, 0, 128) // kept: Drain empties it
	}
	b.ready = append(b.ready, item)
	b.stats.Delivered++
}
