package session

import (
	"time"

	"github.com/bondtun/bondtun/framing"
)

// txQueue is a FIFO of packets waiting to be sent on one path: bondtun's own queue in front
// of the path, where the scheduler can see it. Guarded by the path's mu.
type txQueue struct {
	items []*packetBuf
	head  int
	n     int
	bytes int // datagram bytes queued (inner packets plus framing.Overhead each)
}

// txQueueCap bounds the packets a path queues locally; the session's delay-based drop
// normally keeps queues far shorter.
const txQueueCap = 4096

func (q *txQueue) push(b *packetBuf, size int) bool {
	if q.items == nil {
		q.items = make([]*packetBuf, txQueueCap)
	}
	if q.n == len(q.items) {
		return false
	}
	q.items[(q.head+q.n)%len(q.items)] = b
	q.n++
	q.bytes += size
	return true
}

// merge inserts bs, which are in scheduling order, into q, also in scheduling order, so
// that the lanes' packets leave in the order they were scheduled. It returns the buffers
// that did not fit, in order (the newest ones).
func (q *txQueue) merge(bs []*packetBuf) (rest []*packetBuf) {
	if len(bs) == 0 {
		return nil
	}
	if q.items == nil {
		q.items = make([]*packetBuf, txQueueCap)
	}
	total := min(q.n+len(bs), len(q.items))
	// Merge from the back into the ring's far end, so the old items are read before they
	// are overwritten: the merged queue ends where the old one would end after total items.
	old := q.n
	i, j := old-1, len(bs)-1
	if q.n+len(bs) > len(q.items) {
		// Keep the oldest total items: drop the newest of bs first.
		rest = bs[len(bs)-(q.n+len(bs)-len(q.items)):]
		j = len(bs) - len(rest) - 1
	}
	at := func(k int) int { return (q.head + k) % len(q.items) }
	for k := total - 1; k >= 0; k-- {
		if j < 0 || (i >= 0 && q.items[at(i)].order > bs[j].order) {
			q.items[at(k)] = q.items[at(i)]
			i--
		} else {
			q.items[at(k)] = bs[j]
			q.bytes += datagramSize(bs[j])
			j--
		}
	}
	q.n = total
	return rest
}

// datagramSize is the bytes b takes in a queue: its inner packet plus the encapsulation.
func datagramSize(b *packetBuf) int { return b.n + framing.Overhead }

func (q *txQueue) peek() *packetBuf { return q.items[q.head] }

func (q *txQueue) pop(size int) *packetBuf {
	b := q.items[q.head]
	q.items[q.head] = nil
	q.head = (q.head + 1) % len(q.items)
	q.n--
	q.bytes -= size
	return b
}

// popTail removes and returns the newest packet of q, which must not be empty.
func (q *txQueue) popTail() *packetBuf {
	i := (q.head + q.n - 1) % len(q.items)
	b := q.items[i]
	q.items[i] = nil
	q.n--
	q.bytes -= datagramSize(b)
	return b
}

// sentRingSize is how many recent datagrams a path remembers for loss repair: at 50 Mbit/s
// of 1440-byte packets it covers about 450 ms.
const sentRingSize = 2048

// sentSlot remembers one sent data packet (its plaintext) until the peer's feedback shows it
// arrived, a NACK asks for it again, or the slot is reused.
type sentSlot struct {
	pn  uint64
	buf *packetBuf
	at  time.Time
}

// remember keeps b as the contents of packet pn, releasing what the slot held.
func (p *Path) rememberLocked(pn uint64, b *packetBuf, now time.Time) {
	if p.sent == nil {
		if b == nil {
			return // nothing to forget (a control datagram before any data)
		}
		p.sent = new([sentRingSize]sentSlot)
	}
	slot := &p.sent[pn%sentRingSize]
	if slot.buf != nil {
		putBuf(slot.buf)
	}
	*slot = sentSlot{pn: pn, buf: b, at: now}
}

// forgetUpToLocked releases the copies of packets up to pn, which the peer has reported,
// that were sent before sentBefore; the first younger one and those after it stay (the
// copies are in send order) until a later report.
func (p *Path) forgetUpToLocked(pn uint64, sentBefore time.Time) {
	if pn+1 <= p.forgotten {
		return
	}
	if p.sent == nil {
		p.forgotten = pn + 1
		return
	}
	from := p.forgotten
	if pn+1-from > sentRingSize {
		from = pn + 1 - sentRingSize
	}
	for x := from; x <= pn; x++ {
		slot := &p.sent[x%sentRingSize]
		if slot.buf == nil || slot.pn != x {
			continue
		}
		if !slot.at.Before(sentBefore) {
			p.forgotten = x
			return
		}
		putBuf(slot.buf)
		slot.buf = nil
	}
	p.forgotten = pn + 1
}

// takeForRepairLocked removes and returns the copy of packet pn if it is still held and
// younger than maxAge.
func (p *Path) takeForRepairLocked(pn uint64, now time.Time, maxAge time.Duration) *packetBuf {
	if p.sent == nil {
		return nil
	}
	slot := &p.sent[pn%sentRingSize]
	if slot.buf == nil || slot.pn != pn || now.Sub(slot.at) > maxAge {
		return nil
	}
	b := slot.buf
	slot.buf = nil
	return b
}

// drop empties q, returning its buffers to the pool.
func (q *txQueue) drop() {
	for q.n > 0 {
		putBuf(q.pop(0))
	}
	q.bytes = 0
}

// releaseQueuesLocked returns every buffer the path holds to the pool.
func (p *Path) releaseQueuesLocked() {
	p.prio.drop()
	p.bulk.drop()
	if p.sent == nil {
		return
	}
	for i := range p.sent {
		if p.sent[i].buf != nil {
			putBuf(p.sent[i].buf)
			p.sent[i].buf = nil
		}
	}
}
