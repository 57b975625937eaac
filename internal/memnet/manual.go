package memnet

import (
	"container/heap"
	"errors"
	"sync"
	"time"
)

// A manual network runs on a clock its caller advances, for tests that drive the session
// engine by hand (session.ClientConfig.Clock with a manual timer queue) rather than inside
// a synctest bubble: the links measure their delays, rates and queues on that clock, and
// nothing moves until Settle, which delivers what is due and waits until the transports'
// readers have dealt with it.

// errNotSettled is Settle's error when the readers did not take what was delivered in time.
var errNotSettled = errors.New("memnet: the transports' readers did not take what was delivered")

// NewManual returns an empty network whose random choices follow seed and whose clock is
// now, which only the caller moves. It starts no goroutine: Settle delivers.
func NewManual(seed uint64, now func() time.Time) *Network {
	n := New(seed)
	n.now, n.manual = now, true
	n.settled = sync.NewCond(&n.mu)
	return n
}

// Settle delivers every datagram due at the clock's now, in the order of their links'
// creation and then of their times, and waits until every open transport's reader took
// them and came back for more, so what it sent in answer is on its links; it repeats while
// that made more due. It fails after timeout of real time without that.
func (n *Network) Settle(timeout time.Duration) error {
	timedOut := false
	t := time.AfterFunc(timeout, func() {
		n.mu.Lock()
		timedOut = true
		n.settled.Broadcast()
		n.mu.Unlock()
	})
	defer t.Stop()
	n.mu.Lock()
	defer n.mu.Unlock()
	for {
		now := n.now()
		moved := false
		for _, l := range n.order {
			for len(l.q) > 0 && !l.q[0].at.After(now) {
				f := heap.Pop(&l.q).(flight)
				n.deliverLocked(f.d, f.dst)
				moved = true
			}
		}
		for n.queuedLocked() > 0 {
			if timedOut {
				return errNotSettled
			}
			n.settled.Wait()
		}
		if !moved {
			return nil
		}
	}
}

// queuedLocked is how many datagrams the open transports' readers have not handed back.
func (n *Network) queuedLocked() int {
	q := 0
	for _, t := range n.udp {
		q += t.queued
	}
	return q
}

// handBack tells a manual network that the reader is done with what its last ReadBatch
// took: it is back for more.
func (t *Transport) handBack() {
	if t.taken == 0 {
		return
	}
	n := t.n
	n.mu.Lock()
	t.queued -= t.taken
	t.taken = 0
	if t.queued == 0 {
		n.settled.Broadcast()
	}
	n.mu.Unlock()
}
