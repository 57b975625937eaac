package session

import (
	"time"

	"github.com/bondtun/bondtun/sched"
)

// The local queues' upkeep on the session timer: a path that stopped being usable hands its
// queue on (serviceQueues), and a usable path whose queue would arrive much later than on
// another gives its tail away (rebalance).

// serviceQueues sends what the paths' windows allow (a backstop for lost feedback), and
// moves the queued packets of a path that stopped being usable to the other paths.
func (s *Session) serviceQueues(now time.Time) {
	for _, p := range s.pathList() {
		p.mu.Lock()
		if p.prio.n+p.bulk.n == 0 {
			p.mu.Unlock()
			continue
		}
		if p.usableLocked(now) {
			s.drainLocked(now, p)
			p.mu.Unlock()
			continue
		}
		keep := p.fallbackLocked(now)
		p.mu.Unlock()
		target := s.repairPath(now)
		if target == nil || target == p {
			if !keep { // dead or down, and nowhere else to go
				p.mu.Lock()
				s.counters.TxQueueDropped.Add(uint64(p.prio.n + p.bulk.n))
				p.prio.drop()
				p.bulk.drop()
				p.mu.Unlock()
			}
			continue // suspect: hold them until a path comes back
		}
		// Move them in chunks, each queue's packets merged by scheduling order into the
		// target's, so the lanes' packets still leave in order. The bulk queue moves only
		// as far as the target's local queue stays within failoverQueueBudget of its rate;
		// the rest waits here for the next tick (room made) or for this path to recover.
		target.mu.Lock()
		room := int(target.stats.DeliveryRate()*failoverQueueBudget.Seconds()) - target.queuedLocked()
		target.mu.Unlock()
		var moved [2][128]*packetBuf
		var n [2]int
		p.mu.Lock()
		for k, q := range []*txQueue{&p.prio, &p.bulk} {
			for q.n > 0 && n[k] < len(moved[k]) && (k == 0 || room > 0 || !keep) {
				room -= datagramSize(q.peek())
				b := q.peek()
				moved[k][n[k]] = q.pop(datagramSize(b))
				b.enq = now // CoDel judges the wait on the new path, not the failed one
				n[k]++
			}
		}
		p.mu.Unlock()
		target.mu.Lock()
		for k, q := range []*txQueue{&target.prio, &target.bulk} {
			for _, b := range q.merge(moved[k][:n[k]]) {
				putBuf(b)
				s.counters.TxQueueDropped.Add(1)
			}
		}
		s.drainLocked(now, target)
		target.mu.Unlock()
	}
}

// rebalance moves the tail of a usable path's local bulk queue to another path when it
// would arrive there much earlier (sched.Rebalance: the path's rate estimate fell below
// what the scheduler assumed when it queued them), at most rebalanceChunk packets a tick.
// The moved packets are merged by scheduling order into the target's queue, as
// serviceQueues does, so each lane's packets still leave in order.
func (s *Session) rebalance(now time.Time) {
	if len(s.pathList()) < 2 {
		return
	}
	var buf [16]sched.Path
	paths, sp := s.schedView(now, buf[:0])
	from, to, bytes := sched.Rebalance(sp)
	if bytes <= 0 {
		return
	}
	src, dst := paths[from], paths[to]
	dst.mu.Lock()
	room := txQueueCap - dst.bulk.n
	dst.mu.Unlock()
	var moved [rebalanceChunk]*packetBuf
	n := 0
	src.mu.Lock()
	for q := &src.bulk; q.n > 0 && n < min(len(moved), room) && bytes > 0; n++ {
		b := q.popTail()
		b.enq = now // CoDel judges the wait on the new path
		bytes -= datagramSize(b)
		moved[len(moved)-1-n] = b // popped newest first: keep scheduling order
	}
	src.mu.Unlock()
	if n == 0 {
		return
	}
	dst.mu.Lock()
	rest := dst.bulk.merge(moved[len(moved)-n:])
	s.drainLocked(now, dst)
	dst.mu.Unlock()
	s.counters.TxRebalanced.Add(uint64(n - len(rest)))
	if len(rest) == 0 {
		return
	}
	// dst filled up meanwhile: what it could not take goes back where it came from (a
	// dropped packet would leave its lane a gap for the receiver to wait out).
	src.mu.Lock()
	for _, b := range src.bulk.merge(rest) {
		putBuf(b)
		s.counters.TxQueueDropped.Add(1)
	}
	src.mu.Unlock()
}

// rebalanceChunk is the most packets rebalance moves at once.
const rebalanceChunk = 128
