// Package timerq is bondtun's one timer facility per process: a deadline heap whose entries
// are callbacks that return their next deadline, so that a process holding many sessions
// wakes only when one of them has something to do, instead of running a ticker per session.
//
// A [Queue] keeps its entries in a min-heap by deadline. One goroutine per queue (the
// runner) sleeps until the earliest deadline, takes every entry that is due, and hands each
// to a small pool of worker goroutines, which run the callbacks in parallel and put the
// entries back with the deadlines they return. The pool grows when every worker is busy (a
// callback blocked on a socket does not hold up the others) up to a bound, and idle
// workers stay parked, costing no wakeups. docs/DECISIONS.md ("One timer queue per
// process") says why callbacks do not run on the runner itself.
//
// A deadline a callback returns far ahead is put on a coarse grid (see coarsen), so idle
// entries come due together and the runner wakes once for many of them.
//
// An entry is never run twice at once, so its callback may keep state without a lock.
// [Entry.WakeBy] brings its deadline earlier: it costs one atomic load when the deadline is
// already early enough, and allocates nothing. A WakeBy that comes while the callback runs
// is not lost: the entry runs again by then, whatever the callback returned.
//
// The clock is injectable: [New] with a Config.Now, the same clock as the sessions' whose
// timers the queue holds (session.ClientConfig.Clock; [Queue.Now] tells it), and
// [Queue.RunDue], which runs the due entries synchronously without the runner goroutine,
// for a test that advances a manual clock itself.
package timerq

import (
	"math"
	"math/bits"
	"sync"
	"sync/atomic"
	"time"
)

// Func is an entry's callback. It runs at or after the entry's deadline with the time it
// runs at, and returns the next deadline; the zero time means none (the entry sleeps until
// a WakeBy).
type Func func(now time.Time) (next time.Time)

// never is the deadline of an entry that is not in the heap.
const never = math.MaxInt64

// Config configures a Queue. The zero value is the default.
type Config struct {
	// Now is the clock; time.Now if nil.
	Now func() time.Time
	// MaxWorkers bounds the worker pool; 64 if zero. The pool starts empty and grows when
	// a due entry finds every worker busy.
	MaxWorkers int
	// Manual: no runner goroutine and no workers; the caller runs due entries with RunDue
	// (tests with a fake clock).
	Manual bool
}

// Queue is a deadline heap of entries. Create it with New.
type Queue struct {
	now        func() time.Time
	base       time.Time // deadlines are kept as nanoseconds since base (monotonic)
	maxWorkers int
	manual     bool

	mu      sync.Mutex
	heap    []*Entry
	timerAt int64    // what the runner sleeps until (never: no timer)
	due     []*Entry // runner's scratch
	workers int
	closed  bool

	wake chan struct{} // capacity 1: the runner must look at the heap again
	work chan *Entry   // unbuffered: a send succeeds only if a worker waits
	quit chan struct{}
	runs atomic.Uint64
}

// Entry is one callback in a Queue.
type Entry struct {
	q  *Queue
	fn Func
	// at is the deadline (ns since q.base) while the entry is in the heap, never while it
	// runs or sleeps without a deadline. Read without q.mu by WakeBy's fast path.
	at atomic.Int64
	// Guarded by q.mu.
	idx      int   // heap index; -1 when not in the heap
	running  bool  // handed to a worker, not yet back
	wakeAt   int64 // earliest WakeBy while running (never: none)
	stopped  bool
	stopWait chan struct{} // Stop waits on it for a running callback
	runs     atomic.Uint64
}

var (
	defaultOnce sync.Once
	defaultQ    *Queue
)

// Default returns the process's queue, started on first use.
func Default() *Queue {
	defaultOnce.Do(func() { defaultQ = New(Config{}) })
	return defaultQ
}

// New returns a queue and, unless cfg.Manual, starts its runner goroutine. Close stops it.
func New(cfg Config) *Queue {
	if cfg.Now == nil {
		cfg.Now = time.Now
	}
	if cfg.MaxWorkers <= 0 {
		cfg.MaxWorkers = 64
	}
	q := &Queue{
		now:        cfg.Now,
		base:       cfg.Now(),
		maxWorkers: cfg.MaxWorkers,
		manual:     cfg.Manual,
		timerAt:    never,
		wake:       make(chan struct{}, 1),
		work:       make(chan *Entry),
		quit:       make(chan struct{}),
	}
	if !cfg.Manual {
		go q.runner()
	}
	return q
}

// Close stops the runner and the idle workers; callbacks running now finish. Entries
// still in the queue never run again; Stop them first (a Stop that waits for a callback
// the closed queue never ran would not return). Close is for queues made with New; the
// Default queue lives as long as the process.
func (q *Queue) Close() {
	q.mu.Lock()
	defer q.mu.Unlock()
	if q.closed {
		return
	}
	q.closed = true
	close(q.quit)
}

// Now is the queue's clock (Config.Now): the time its deadlines are measured on.
func (q *Queue) Now() time.Time { return q.now() }

// Runs is how many callbacks the queue has run: wakeups of its entries, for benchmarks.
func (q *Queue) Runs() uint64 { return q.runs.Load() }

// Len is the number of entries waiting with a deadline.
func (q *Queue) Len() int {
	q.mu.Lock()
	defer q.mu.Unlock()
	return len(q.heap)
}

// Add adds an entry that first runs at first (at once if first is zero or past).
func (q *Queue) Add(first time.Time, fn Func) *Entry {
	e := &Entry{q: q, fn: fn, idx: -1, wakeAt: never}
	e.at.Store(never)
	q.mu.Lock()
	q.scheduleLocked(e, q.nanos(first, 0))
	q.mu.Unlock()
	return e
}

// nanos is t as nanoseconds since q.base; zero maps to zeroAs.
func (q *Queue) nanos(t time.Time, zeroAs int64) int64 {
	if t.IsZero() {
		return zeroAs
	}
	return int64(t.Sub(q.base))
}

// Deadline is the entry's next deadline, or the zero time if it has none (it sleeps until a
// WakeBy, or it is running or stopped).
func (e *Entry) Deadline() time.Time {
	at := e.at.Load()
	if at == never {
		return time.Time{}
	}
	return e.q.base.Add(time.Duration(at))
}

// Runs is how many times the entry's callback ran.
func (e *Entry) Runs() uint64 { return e.runs.Load() }

// WakeBy makes the entry run by t at the latest (the zero t: at once). It is cheap when
// the deadline is already at or before t (one atomic load) and allocates nothing. It may
// be called from any goroutine, the callback's own included, with any lock held: it takes
// only the queue's lock, under which no callback ever runs.
func (e *Entry) WakeBy(t time.Time) {
	n := e.q.nanos(t, math.MinInt64)
	if n >= e.at.Load() {
		return
	}
	q := e.q
	q.mu.Lock()
	switch {
	case e.stopped:
	case e.running:
		e.wakeAt = min(e.wakeAt, n)
	case n < e.at.Load():
		q.scheduleLocked(e, n)
	}
	q.mu.Unlock()
}

// Stop removes the entry: when Stop returns, its callback is not running and never runs
// again. Stop must not be called from the entry's own callback (it would wait for itself).
func (e *Entry) Stop() {
	q := e.q
	q.mu.Lock()
	if e.stopped {
		w := e.stopWait
		q.mu.Unlock()
		if w != nil {
			<-w
		}
		return
	}
	e.stopped = true
	if e.idx >= 0 {
		q.removeLocked(e)
	}
	e.at.Store(never)
	var w chan struct{}
	if e.running {
		e.stopWait = make(chan struct{})
		w = e.stopWait
	}
	q.mu.Unlock()
	if w != nil {
		<-w
	}
}

// scheduleLocked puts e in the heap at n (never: out of it) and tells the runner if the
// earliest deadline moved before what it sleeps until. q.mu must be held.
func (q *Queue) scheduleLocked(e *Entry, n int64) {
	e.at.Store(n)
	switch {
	case n == never:
		if e.idx >= 0 {
			q.removeLocked(e)
		}
		return
	case e.idx >= 0:
		q.fix(e.idx)
	default:
		e.idx = len(q.heap)
		q.heap = append(q.heap, e)
		q.up(e.idx)
	}
	if n < q.timerAt && !q.manual {
		q.timerAt = n // the runner resets its timer when it wakes
		select {
		case q.wake <- struct{}{}:
		default:
		}
	}
}

// RunDue runs, on the calling goroutine, every entry due at now, and returns the earliest
// deadline left (zero if none). It is for Manual queues: tests drive the queue with a
// fake clock through it. A callback added or woken by a callback for at or before now runs
// in the same call.
func (q *Queue) RunDue(now time.Time) time.Time {
	for {
		q.mu.Lock()
		e := q.popDueLocked(q.nanos(now, 0))
		q.mu.Unlock()
		if e == nil {
			break
		}
		q.run(e, now)
	}
	q.mu.Lock()
	defer q.mu.Unlock()
	if len(q.heap) == 0 {
		return time.Time{}
	}
	return q.base.Add(time.Duration(q.heap[0].at.Load()))
}

// popDueLocked takes the earliest entry if it is due at n and marks it running. q.mu must
// be held.
func (q *Queue) popDueLocked(n int64) *Entry {
	if len(q.heap) == 0 || q.heap[0].at.Load() > n {
		return nil
	}
	e := q.heap[0]
	q.removeLocked(e)
	e.at.Store(never)
	e.running = true
	return e
}

// run runs e's callback at now and puts it back with its next deadline.
func (q *Queue) run(e *Entry, now time.Time) {
	q.mu.Lock()
	if e.stopped { // stopped after the runner took it
		e.running = false
		if e.stopWait != nil {
			close(e.stopWait)
		}
		q.mu.Unlock()
		return
	}
	q.mu.Unlock()
	next := e.fn(now)
	e.runs.Add(1)
	q.runs.Add(1)
	q.mu.Lock()
	e.running = false
	if e.stopped {
		if e.stopWait != nil {
			close(e.stopWait)
		}
		q.mu.Unlock()
		return
	}
	n := min(coarsen(q.nanos(next, never), q.nanos(now, 0)), e.wakeAt)
	e.wakeAt = never
	q.scheduleLocked(e, n)
	q.mu.Unlock()
}

// Slack: a deadline far from now is moved later, onto a grid common to every entry of the
// queue, so that idle entries (probes and keepalives seconds away) come due together and
// the runner wakes once for many of them instead of once each (a timer wheel's coarser
// slots for farther deadlines, or Linux's timer slack). The grid step is the largest power
// of two nanoseconds no more than 1/slackDivisor of the distance to the deadline, at most
// maxSlackStep; a deadline nearer than minSlackDistance (an active session's tick, a loss
// or liveness timer) is kept exact. So a deadline is late by less than 1/slackDivisor of
// how far ahead it was set. docs/DECISIONS.md ("Idle deadlines on a coarse grid").
const (
	slackDivisor     = 16
	minSlackDistance = 256 * time.Millisecond
	maxSlackStep     = 1 << 30 // ns, ≈ 1.07 s
)

// coarsen is deadline n (ns since base; never passes through) set at now, moved up to the
// slack grid.
func coarsen(n, now int64) int64 {
	d := n - now
	if n == never || d < int64(minSlackDistance) {
		return n
	}
	step := min(int64(1)<<(bits.Len64(uint64(d/slackDivisor))-1), maxSlackStep)
	return (n + step - 1) &^ (step - 1)
}

// runner sleeps until the earliest deadline, then hands every due entry to a worker.
func (q *Queue) runner() {
	t := time.NewTimer(time.Hour)
	t.Stop()
	for {
		q.mu.Lock()
		n := q.nanos(q.now(), 0)
		due := q.due[:0]
		for {
			e := q.popDueLocked(n)
			if e == nil {
				break
			}
			due = append(due, e)
		}
		if len(due) > 0 {
			q.mu.Unlock()
			for i, e := range due {
				q.dispatch(e)
				due[i] = nil
			}
			q.due = due[:0] // only the runner uses it
			continue        // dispatching took time: look again before sleeping
		}
		q.timerAt = never
		if len(q.heap) > 0 {
			q.timerAt = q.heap[0].at.Load()
			t.Reset(time.Duration(q.timerAt - n))
		}
		q.mu.Unlock()
		select {
		case <-t.C:
		case <-q.wake:
			t.Stop()
		case <-q.quit:
			t.Stop()
			return
		}
	}
}

// dispatch hands e to an idle worker, or starts one if none waits and the pool may grow,
// or else waits for one.
func (q *Queue) dispatch(e *Entry) {
	select {
	case q.work <- e:
		return
	default:
	}
	q.mu.Lock()
	grow := q.workers < q.maxWorkers
	if grow {
		q.workers++
	}
	q.mu.Unlock()
	if grow {
		go q.worker(e)
		return
	}
	select {
	case q.work <- e:
	case <-q.quit:
	}
}

// worker runs e, then whatever the runner hands it, until the queue closes.
func (q *Queue) worker(e *Entry) {
	for {
		q.run(e, q.now())
		select {
		case e = <-q.work:
		case <-q.quit:
			return
		}
	}
}

// Heap operations (container/heap's, on *Entry, keeping idx).

func (q *Queue) less(i, j int) bool { return q.heap[i].at.Load() < q.heap[j].at.Load() }

func (q *Queue) swap(i, j int) {
	q.heap[i], q.heap[j] = q.heap[j], q.heap[i]
	q.heap[i].idx = i
	q.heap[j].idx = j
}

func (q *Queue) up(j int) {
	for j > 0 {
		i := (j - 1) / 2
		if !q.less(j, i) {
			break
		}
		q.swap(i, j)
		j = i
	}
}

func (q *Queue) down(i int) bool {
	i0, n := i, len(q.heap)
	for {
		j := 2*i + 1
		if j >= n {
			break
		}
		if r := j + 1; r < n && q.less(r, j) {
			j = r
		}
		if !q.less(j, i) {
			break
		}
		q.swap(i, j)
		i = j
	}
	return i > i0
}

func (q *Queue) fix(i int) {
	if !q.down(i) {
		q.up(i)
	}
}

func (q *Queue) removeLocked(e *Entry) {
	i, last := e.idx, len(q.heap)-1
	if i != last {
		q.swap(i, last)
	}
	q.heap[last] = nil
	q.heap = q.heap[:last]
	if i != last {
		q.fix(i)
	}
	e.idx = -1
}
