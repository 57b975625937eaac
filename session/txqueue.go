package session

import "time"

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

func (q *txQueue) peek() *packetBuf { return q.items[q.head] }

func (q *txQueue) pop(size int) *packetBuf {
	b := q.items[q.head]
	q.items[q.head] = nil
	q.head = (q.head + 1) % len(q.items)
	q.n--
	q.bytes -= size
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
	slot := &p.sent[pn%sentRingSize]
	if slot.buf != nil {
		putBuf(slot.buf)
	}
	*slot = sentSlot{pn: pn, buf: b, at: now}
}

// forgetUpToLocked releases the copies of packets up to pn, which the peer has reported.
func (p *Path) forgetUpToLocked(pn uint64) {
	if pn+1 <= p.forgotten {
		return
	}
	from := p.forgotten
	if pn+1-from > sentRingSize {
		from = pn + 1 - sentRingSize
	}
	for x := from; x <= pn; x++ {
		slot := &p.sent[x%sentRingSize]
		if slot.buf != nil && slot.pn == x {
			putBuf(slot.buf)
			slot.buf = nil
		}
	}
	p.forgotten = pn + 1
}

// takeForRepairLocked removes and returns the copy of packet pn if it is still held and
// younger than maxAge.
func (p *Path) takeForRepairLocked(pn uint64, now time.Time, maxAge time.Duration) *packetBuf {
	slot := &p.sent[pn%sentRingSize]
	if slot.buf == nil || slot.pn != pn || now.Sub(slot.at) > maxAge {
		return nil
	}
	b := slot.buf
	slot.buf = nil
	return b
}

// releaseQueuesLocked returns every buffer the path holds to the pool.
func (p *Path) releaseQueuesLocked() {
	for _, q := range []*txQueue{&p.prio, &p.bulk} {
		for q.n > 0 {
			putBuf(q.pop(0))
		}
		q.bytes = 0
	}
	for i := range p.sent {
		if p.sent[i].buf != nil {
			putBuf(p.sent[i].buf)
			p.sent[i].buf = nil
		}
	}
}
