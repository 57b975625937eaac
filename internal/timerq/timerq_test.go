package timerq

import (
	"sync"
	"testing"
	"time"
)

var t0 = time.Date(2025, 1, 1, 0, 0, 0, 0, time.UTC)

// fakeQueue is a Manual queue on a fake clock that starts at t0.
func fakeQueue() (*Queue, *time.Time) {
	now := t0
	q := New(Config{Manual: true, Now: func() time.Time { return now }})
	return q, &now
}

func TestRunsInDeadlineOrder(t *testing.T) {
	q, _ := fakeQueue()
	var order []int
	for i, d := range []time.Duration{30, 10, 20, 10} {
		q.Add(t0.Add(d*time.Millisecond), func(now time.Time) time.Time {
			order = append(order, i)
			return time.Time{} // no next deadline
		})
	}
	if next := q.RunDue(t0.Add(5 * time.Millisecond)); !next.Equal(t0.Add(10 * time.Millisecond)) {
		t.Fatalf("next = %v, want t0+10ms", next.Sub(t0))
	}
	if len(order) != 0 {
		t.Fatalf("ran %v before any deadline", order)
	}
	q.RunDue(t0.Add(20 * time.Millisecond))
	if len(order) != 3 || order[2] != 2 || (order[0] != 1 && order[0] != 3) {
		t.Fatalf("order %v, want 1 and 3 (either order), then 2", order)
	}
	if next := q.RunDue(t0.Add(time.Second)); !next.IsZero() || len(order) != 4 || q.Len() != 0 {
		t.Fatalf("after all: next %v, order %v, len %d", next, order, q.Len())
	}
}

func TestCallbackReturnsNextDeadline(t *testing.T) {
	q, _ := fakeQueue()
	runs := 0
	e := q.Add(t0, func(now time.Time) time.Time {
		runs++
		return now.Add(10 * time.Millisecond)
	})
	for ms := 0; ms <= 100; ms++ {
		q.RunDue(t0.Add(time.Duration(ms) * time.Millisecond))
	}
	if runs != 11 {
		t.Fatalf("runs = %d over 100 ms at a 10 ms period, want 11", runs)
	}
	if want := t0.Add(110 * time.Millisecond); !e.Deadline().Equal(want) {
		t.Fatalf("deadline %v, want t0+110ms", e.Deadline().Sub(t0))
	}
}

func TestWakeBy(t *testing.T) {
	q, _ := fakeQueue()
	runs := 0
	e := q.Add(t0.Add(time.Hour), func(now time.Time) time.Time { runs++; return now.Add(time.Hour) })
	e.WakeBy(t0.Add(2 * time.Hour)) // later: no change
	if !e.Deadline().Equal(t0.Add(time.Hour)) {
		t.Fatalf("WakeBy later moved the deadline to %v", e.Deadline().Sub(t0))
	}
	e.WakeBy(t0.Add(time.Millisecond))
	if !e.Deadline().Equal(t0.Add(time.Millisecond)) {
		t.Fatalf("WakeBy earlier: deadline %v", e.Deadline().Sub(t0))
	}
	q.RunDue(t0.Add(time.Millisecond))
	if runs != 1 {
		t.Fatalf("runs = %d", runs)
	}
	// Sleeping without a deadline: WakeBy brings it back.
	e2 := q.Add(t0.Add(2*time.Millisecond), func(time.Time) time.Time { runs++; return time.Time{} })
	q.RunDue(t0.Add(2 * time.Millisecond))
	if runs != 2 || !e2.Deadline().IsZero() {
		t.Fatalf("runs %d, deadline %v", runs, e2.Deadline())
	}
	e2.WakeBy(t0.Add(3 * time.Millisecond))
	q.RunDue(t0.Add(3 * time.Millisecond))
	if runs != 3 {
		t.Fatalf("sleeping entry not woken: runs %d", runs)
	}
}

// A WakeBy while the callback runs (after it looked at its state) must not be lost, even
// though the callback returns a later deadline.
func TestWakeByWhileRunning(t *testing.T) {
	q, _ := fakeQueue()
	var e *Entry
	runs := 0
	e = q.Add(t0, func(now time.Time) time.Time {
		runs++
		if runs == 1 {
			e.WakeBy(now.Add(time.Millisecond)) // as a receiver would, concurrently
		}
		return now.Add(time.Hour)
	})
	q.RunDue(t0)
	if want := t0.Add(time.Millisecond); !e.Deadline().Equal(want) {
		t.Fatalf("deadline %v after a WakeBy during the run, want t0+1ms", e.Deadline().Sub(t0))
	}
	q.RunDue(t0.Add(time.Millisecond))
	// The hour ahead is on the slack grid: late by less than its step.
	if late := e.Deadline().Sub(t0.Add(time.Hour + time.Millisecond)); runs != 2 || late < 0 || late >= maxSlackStep {
		t.Fatalf("runs %d deadline %v", runs, e.Deadline().Sub(t0))
	}
}

func TestStop(t *testing.T) {
	q, _ := fakeQueue()
	runs := 0
	e := q.Add(t0, func(now time.Time) time.Time { runs++; return now })
	e.Stop()
	e.Stop() // idempotent
	e.WakeBy(t0)
	q.RunDue(t0.Add(time.Second))
	if runs != 0 || q.Len() != 0 {
		t.Fatalf("a stopped entry ran %d times; len %d", runs, q.Len())
	}
}

func TestWakeByFastPathDoesNotAllocate(t *testing.T) {
	q, _ := fakeQueue()
	e := q.Add(t0.Add(time.Millisecond), func(now time.Time) time.Time { return now.Add(time.Millisecond) })
	at := t0.Add(5 * time.Millisecond)
	if n := testing.AllocsPerRun(1000, func() { e.WakeBy(at) }); n != 0 {
		t.Fatalf("WakeBy allocates %.1f times", n)
	}
	if n := testing.AllocsPerRun(1000, func() { q.RunDue(t0.Add(time.Millisecond)) }); n != 0 {
		t.Fatalf("RunDue allocates %.1f times", n)
	}
}

// Real clock and runner: a WakeBy wakes a sleeping entry, and two callbacks that block run
// at the same time (each waits for the other: on one worker this would never finish).
func TestRunnerParallelCallbacks(t *testing.T) {
	q := New(Config{})
	defer q.Close()
	var wg sync.WaitGroup
	wg.Add(2)
	both := make(chan struct{})
	var once sync.Once
	ran := make(chan int, 2)
	var es []*Entry
	for i := range 2 {
		es = append(es, q.Add(time.Time{}, func(time.Time) time.Time {
			wg.Done()
			wg.Wait() // the other callback must be running too
			once.Do(func() { close(both) })
			ran <- i
			return time.Time{}
		}))
	}
	select {
	case <-both:
	case <-time.After(10 * time.Second):
		t.Fatal("the two callbacks did not run in parallel")
	}
	<-ran
	<-ran
	// Both sleep without a deadline now; WakeBy brings one back.
	es[0].fn = func(time.Time) time.Time { ran <- 0; return time.Time{} }
	es[0].WakeBy(time.Now())
	select {
	case <-ran:
	case <-time.After(10 * time.Second):
		t.Fatal("WakeBy did not wake a sleeping entry")
	}
	for _, e := range es {
		e.Stop()
	}
	if q.Len() != 0 {
		t.Fatalf("len %d after Stop", q.Len())
	}
}

// Stop waits for a running callback.
func TestStopWaitsForRunningCallback(t *testing.T) {
	q := New(Config{})
	defer q.Close()
	started, release := make(chan struct{}), make(chan struct{})
	finished := false
	e := q.Add(time.Time{}, func(now time.Time) time.Time {
		close(started)
		<-release
		finished = true
		return time.Time{} // sleep: run once (returning now raced Stop and ran it again)
	})
	<-started
	go close(release)
	e.Stop()
	if !finished {
		t.Fatal("Stop returned while the callback ran")
	}
}

func BenchmarkWakeByEarlyEnough(b *testing.B) {
	q, _ := fakeQueue()
	e := q.Add(t0.Add(time.Millisecond), func(now time.Time) time.Time { return now.Add(time.Millisecond) })
	at := t0.Add(5 * time.Millisecond)
	b.ReportAllocs()
	for b.Loop() {
		e.WakeBy(at)
	}
}

func TestCoarsenBounds(t *testing.T) {
	for _, d := range []time.Duration{0, time.Millisecond, 255 * time.Millisecond, 256 * time.Millisecond,
		700 * time.Millisecond, 5 * time.Second, 15*time.Second + 3, 10 * time.Minute} {
		for _, now := range []int64{0, 1, 12345678901, 98765432109} {
			n := now + int64(d)
			got := coarsen(n, now)
			if d < minSlackDistance {
				if got != n {
					t.Errorf("d=%v now=%d: moved %d → %d, want exact", d, now, n, got)
				}
				continue
			}
			late := got - n
			if late < 0 || late >= int64(d)/slackDivisor || late > maxSlackStep {
				t.Errorf("d=%v now=%d: late by %v, want in [0, min(d/%d, %v))", d, now,
					time.Duration(late), slackDivisor, time.Duration(maxSlackStep))
			}
		}
	}
	if coarsen(never, 0) != never {
		t.Error("never moved")
	}
}

// Idle entries whose deadlines were set a few milliseconds apart, seconds ahead, come due
// at one instant, so the runner wakes once for them.
func TestFarDeadlinesComeDueTogether(t *testing.T) {
	q, _ := fakeQueue()
	const n = 20
	ran := 0
	for i := range n {
		start := t0.Add(time.Duration(i) * time.Millisecond)
		q.Add(start, func(now time.Time) time.Time {
			ran++
			if now.Before(t0.Add(time.Second)) {
				return now.Add(5 * time.Second)
			}
			return time.Time{}
		})
		q.RunDue(start)
	}
	if ran != n {
		t.Fatalf("first runs: %d, want %d", ran, n)
	}
	next := q.RunDue(t0.Add(time.Second))
	late := next.Sub(t0.Add(5*time.Second + (n-1)*time.Millisecond))
	if late < 0 || late >= 5*time.Second/slackDivisor {
		t.Fatalf("earliest deadline %v after the latest one asked for, want in [0, %v)", late, 5*time.Second/slackDivisor)
	}
	q.RunDue(next)
	if ran != 2*n || q.Len() != 0 {
		t.Fatalf("at the first idle deadline: %d runs and %d waiting, want all %d due together", ran-n, q.Len(), n)
	}
}
