package bond

import (
	"sync"
	"sync/atomic"
)

// inbox holds the messages a session delivered until the reader takes them: a ring that
// grows to its capacity as needed (an idle connection holds no buffers) and drops, and
// counts, what arrives while it is full. It is the session's Deliverer, called with the
// session's receive lock held, so it never blocks.
type inbox struct {
	maxMessage int
	capacity   int

	mu     sync.Mutex
	slots  [][]byte // ring of message buffers, each with capacity maxMessage
	head   int
	n      int
	ended  bool          // no more messages will come (the session ended, or Close)
	notify chan struct{} // signalled (capacity 1) when a message arrives or ended is set

	lost      atomic.Uint64 // messages dropped because the ring was full
	delivered atomic.Uint64
}

func newInbox(maxMessage, capacity int) *inbox {
	return &inbox{maxMessage: maxMessage, capacity: capacity, notify: make(chan struct{}, 1)}
}

// Deliver copies pkts into the ring.
func (q *inbox) Deliver(pkts [][]byte) {
	q.mu.Lock()
	for _, p := range pkts {
		if q.ended {
			break
		}
		if q.n == len(q.slots) && !q.growLocked() {
			q.lost.Add(1)
			continue
		}
		i := (q.head + q.n) % len(q.slots)
		if q.slots[i] == nil {
			q.slots[i] = make([]byte, 0, q.maxMessage)
		}
		q.slots[i] = append(q.slots[i][:0], p...)
		q.n++
		q.delivered.Add(1)
	}
	q.mu.Unlock()
	q.signal()
}

// growLocked doubles the ring, up to capacity; false if it is at capacity.
func (q *inbox) growLocked() bool {
	if len(q.slots) >= q.capacity {
		return false
	}
	next := make([][]byte, min(max(2*len(q.slots), 16), q.capacity))
	for k := 0; k < q.n; k++ {
		next[k] = q.slots[(q.head+k)%len(q.slots)]
	}
	// Keep the buffers of the free slots too: they are reused.
	for k := q.n; k < len(q.slots); k++ {
		next[k] = q.slots[(q.head+k)%len(q.slots)]
	}
	q.slots, q.head = next, 0
	return true
}

func (q *inbox) signal() {
	select {
	case q.notify <- struct{}{}:
	default:
	}
}

// pop copies the oldest message into p. ok is false when the ring is empty; ended says
// whether more may come.
func (q *inbox) pop(p []byte) (n, size int, ok, ended bool) {
	q.mu.Lock()
	defer q.mu.Unlock()
	if q.n == 0 {
		return 0, 0, false, q.ended
	}
	m := q.slots[q.head]
	n = copy(p, m)
	q.head = (q.head + 1) % len(q.slots)
	q.n--
	if q.n > 0 {
		q.signal() // another reader may take the next one
	}
	return n, len(m), true, q.ended
}

// end marks that no more messages will come; those queued can still be read.
func (q *inbox) end() {
	q.mu.Lock()
	q.ended = true
	q.mu.Unlock()
	q.signal()
}
