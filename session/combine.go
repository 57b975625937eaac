package session

import "sync/atomic"

// outQueue is what the engine produced under a lock and hands on outside it: a path's
// sealed datagrams (txout.go) or a session's released packets (deliverOut). Items are
// added under the owner's lock; one goroutine at a time takes them all and works them off
// with the lock released, and a goroutine that finds it busy leaves its items to it, which
// takes them after its current batch (flat combining), so items go out in the order they
// were added.
type outQueue[T any] struct {
	q, w    []T         // waiting; the other slice, being worked off or spare
	busy    bool        // a goroutine is working off w
	pending atomic.Bool // q holds items: set and cleared under the lock, read without it
}

// push adds v. The owner's lock must be held.
func (o *outQueue[T]) push(v T) {
	o.q = append(o.q, v)
	o.pending.Store(true)
}

// take returns every waiting item and makes the caller the one working them off, unless
// another goroutine is (or nothing waits): then ok is false. The owner's lock must be held;
// the caller releases it, works off w, takes it again and calls done.
func (o *outQueue[T]) take() (w []T, ok bool) {
	if o.busy || len(o.q) == 0 {
		return nil, false
	}
	w = o.q
	o.q = o.w[:0]
	o.pending.Store(false)
	o.busy = true
	return w, true
}

// done ends the work on w, which take returned. The owner's lock must be held.
func (o *outQueue[T]) done(w []T) {
	clear(w)
	o.w = w[:0]
	o.busy = false
}
