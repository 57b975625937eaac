// Package linkemu is the shaping logic of bondtun's link emulator: one
// direction of a link with a rate, a bounded tail-drop queue, a one-way
// delay with optional jitter, random loss, and cut/restore.
//
// It is a pure state machine in the style of the reorder package: no
// goroutines, no clock reads (every method that depends on time takes
// now), no I/O, and no allocation per packet. cmd/linkemu wraps it with TUN
// devices, a reader goroutine and a timer-driven writer per direction.
//
// Model. A packet offered at now is first subject to cut and random loss.
// It then joins a FIFO transmitter that is busy until busyUntil; the packet
// is serialized from max(now, busyUntil) for size×8/rate seconds, so the
// backlog in bytes at any instant is (busyUntil−now)×rate/8, and a packet
// that would push it past QueueBytes is tail-dropped. Once serialized, the
// packet spends Delay±jitter in flight and is then due. Parameter changes
// apply to packets offered afterwards; packets already accepted keep the
// times computed when they arrived, except that a cut discards them.
package linkemu

import (
	"math"
	"math/rand/v2"
	"time"
)

// Stats counts what happened to the packets offered to a Link. At any time
// Enqueued == Delivered + Dropped() + Held.
type Stats struct {
	Enqueued       uint64 // packets offered to Enqueue
	EnqueuedBytes  uint64
	Delivered      uint64 // packets returned by Pop
	DeliveredBytes uint64
	DroppedQueue   uint64 // tail drops: queue bound
	DroppedSlots   uint64 // tail drops: every ring slot in use (ring too small)
	DroppedLoss    uint64 // random loss
	DroppedCut     uint64 // offered while cut, or discarded by a cut
	DroppedBig     uint64 // larger than the ring's slot size
	DroppedBytes   uint64 // bytes of all dropped packets
	Held           uint64 // packets queued or in flight now
	HeldBytes      uint64
}

// Dropped returns the packets dropped for any reason.
func (s Stats) Dropped() uint64 {
	return s.DroppedQueue + s.DroppedSlots + s.DroppedLoss + s.DroppedCut + s.DroppedBig
}

// slot is the metadata of one ring buffer; its bytes live in Link.buf.
type slot struct {
	due time.Time // when the packet may be popped
	seq uint64    // arrival order, breaks ties in due so equal times stay FIFO
	n   int       // packet length
}

// Link is one direction of an emulated link. It stores up to a fixed number
// of packets of at most a fixed size in one buffer allocated by New. Link is
// not safe for concurrent use; cmd/linkemu guards each Link with a mutex.
type Link struct {
	p   Params
	rng *rand.Rand

	slotSize int
	buf      []byte  // slot i is buf[i*slotSize:(i+1)*slotSize]
	slots    []slot  // metadata per slot
	free     []int32 // stack of unused slot indices
	heap     []int32 // min-heap of used slot indices by (due, seq)

	busyUntil time.Time // when the transmitter finishes its backlog
	carry     int64     // sub-nanosecond serialization remainder, in bit·ns/rate units
	lastDue   time.Time // due time of the latest accepted packet, for FIFO jitter
	seq       uint64

	st Stats
}

// New returns a Link holding up to slots packets of up to slotSize bytes,
// with parameters p and randomness (loss, jitter) drawn from rng. The caller
// seeds rng; tests use a fixed seed for reproducible runs. slots bounds the
// packets queued plus in flight: size it to cover QueueBytes and the bytes
// in flight (rate × (Delay+Jitter)) at the smallest expected packet size.
func New(p Params, slots, slotSize int, rng *rand.Rand) *Link {
	if slots < 1 {
		slots = 1
	}
	if slotSize < 1 {
		slotSize = 1
	}
	l := &Link{
		p:        p,
		rng:      rng,
		slotSize: slotSize,
		buf:      make([]byte, slots*slotSize),
		slots:    make([]slot, slots),
		free:     make([]int32, slots),
		heap:     make([]int32, 0, slots),
	}
	for i := range l.free {
		l.free[i] = int32(slots - 1 - i)
	}
	return l
}

// Params returns the current parameters.
func (l *Link) Params() Params { return l.p }

// Stats returns the counters.
func (l *Link) Stats() Stats { return l.st }

// SetParams changes the parameters at now. Cutting discards every packet
// held; restoring (Cut false) starts again with an idle transmitter.
func (l *Link) SetParams(now time.Time, p Params) {
	if p.Cut && !l.p.Cut {
		l.discardAll(now)
	}
	if p.RateBps != l.p.RateBps {
		l.carry = 0 // the remainder is in units of the old rate
	}
	l.p = p
}

// discardAll drops every held packet and idles the transmitter.
func (l *Link) discardAll(now time.Time) {
	for _, i := range l.heap {
		l.st.DroppedCut++
		l.st.DroppedBytes += uint64(l.slots[i].n)
		l.free = append(l.free, i)
	}
	l.heap = l.heap[:0]
	l.st.Held, l.st.HeldBytes = 0, 0
	l.busyUntil, l.lastDue, l.carry = now, time.Time{}, 0
}

// Enqueue offers pkt at now and copies it into the ring. It reports false if
// the packet was dropped: the link is cut, random loss, the queue is full,
// or pkt is larger than the slot size. pkt is not retained.
func (l *Link) Enqueue(now time.Time, pkt []byte) bool {
	n := len(pkt)
	l.st.Enqueued++
	l.st.EnqueuedBytes += uint64(n)
	switch {
	case l.p.Cut:
		return l.drop(&l.st.DroppedCut, n)
	case n > l.slotSize:
		return l.drop(&l.st.DroppedBig, n)
	case l.p.Loss > 0 && l.rng.Float64()*100 < l.p.Loss:
		return l.drop(&l.st.DroppedLoss, n)
	case l.backlog(now)+n > l.queueBytes():
		return l.drop(&l.st.DroppedQueue, n)
	case len(l.free) == 0:
		return l.drop(&l.st.DroppedSlots, n)
	}

	due := l.serialize(now, n).Add(l.flightTime())
	if !l.p.Reorder && due.Before(l.lastDue) {
		due = l.lastDue
	}
	l.lastDue = due

	i := l.free[len(l.free)-1]
	l.free = l.free[:len(l.free)-1]
	copy(l.buf[int(i)*l.slotSize:], pkt)
	l.seq++
	l.slots[i] = slot{due: due, seq: l.seq, n: n}
	l.push(i)
	l.st.Held++
	l.st.HeldBytes += uint64(n)
	return true
}

func (l *Link) drop(counter *uint64, n int) bool {
	*counter++
	l.st.DroppedBytes += uint64(n)
	return false
}

func (l *Link) queueBytes() int {
	if l.p.QueueBytes == 0 {
		return DefaultQueueBytes
	}
	return l.p.QueueBytes
}

// backlog returns the bytes not yet serialized at now.
func (l *Link) backlog(now time.Time) int {
	if l.p.RateBps <= 0 || !l.busyUntil.After(now) {
		return 0
	}
	return int(math.Ceil(float64(l.busyUntil.Sub(now)) * float64(l.p.RateBps) / 8e9))
}

// serialize puts n bytes on the transmitter at now and returns when their
// last bit leaves. The division remainder is carried so that N packets take
// exactly N×n×8/rate in total, not N rounded durations.
func (l *Link) serialize(now time.Time, n int) time.Time {
	if l.busyUntil.Before(now) {
		l.busyUntil, l.carry = now, 0
	}
	if l.p.RateBps > 0 {
		num := int64(n)*8*int64(time.Second) + l.carry
		l.busyUntil = l.busyUntil.Add(time.Duration(num / l.p.RateBps))
		l.carry = num % l.p.RateBps
	}
	return l.busyUntil
}

// flightTime returns Delay plus a jitter sample, never negative.
func (l *Link) flightTime() time.Duration {
	d := l.p.Delay
	if l.p.Jitter > 0 {
		var j float64
		if l.p.NormalJitter {
			j = l.rng.NormFloat64()
		} else {
			j = l.rng.Float64()*2 - 1
		}
		d += time.Duration(j * float64(l.p.Jitter))
	}
	return max(d, 0)
}

// Next returns when the next packet is due, and false if none is held.
func (l *Link) Next() (time.Time, bool) {
	if len(l.heap) == 0 {
		return time.Time{}, false
	}
	return l.slots[l.heap[0]].due, true
}

// Pop copies the next packet due at or before now into dst and returns its
// length, or reports false if none is due. If dst is too short the packet
// is truncated to len(dst); callers pass a buffer of the slot size.
func (l *Link) Pop(now time.Time, dst []byte) (n int, ok bool) {
	if len(l.heap) == 0 {
		return 0, false
	}
	i := l.heap[0]
	s := &l.slots[i]
	if s.due.After(now) {
		return 0, false
	}
	off := int(i) * l.slotSize
	n = copy(dst, l.buf[off:off+s.n])
	l.st.Delivered++
	l.st.DeliveredBytes += uint64(s.n)
	l.st.Held--
	l.st.HeldBytes -= uint64(s.n)
	l.popHead()
	l.free = append(l.free, i)
	return n, true
}
