package session

import (
	"sync"
	"testing"
	"time"

	"github.com/bondtun/bondtun/internal/timerq"
)

// manualTimers makes the sessions created from now on use a Manual timer queue that a
// driver goroutine runs (RunDue every 200 µs) until the test pauses it: while paused, the
// test alone runs the timers, so the sessions do nothing but answer datagrams.
type manualTimers struct {
	q    *timerq.Queue
	mu   sync.Mutex // held by the driver while it runs the queue, and by the test to pause it
	stop chan struct{}
	done chan struct{}
}

func useManualTimers(t *testing.T) *manualTimers {
	mt := &manualTimers{q: timerq.New(timerq.Config{Manual: true}), stop: make(chan struct{}), done: make(chan struct{})}
	old := timers
	timers = func() *timerq.Queue { return mt.q }
	go func() {
		defer close(mt.done)
		for {
			select {
			case <-mt.stop:
				return
			case <-time.After(200 * time.Microsecond):
			}
			mt.mu.Lock()
			mt.q.RunDue(time.Now())
			mt.mu.Unlock()
		}
	}()
	t.Cleanup(func() {
		close(mt.stop)
		<-mt.done
		timers = old
	})
	return mt
}

func (mt *manualTimers) pause()  { mt.mu.Lock() }
func (mt *manualTimers) resume() { mt.mu.Unlock() }

// sentOn sums the packet numbers s used on its paths (every datagram sent); receivedOn the
// datagrams s received and authenticated.
func sentOn(s *Session) (n uint64) {
	for _, p := range s.pathList() {
		p.mu.Lock()
		n += p.pn
		p.mu.Unlock()
	}
	return n
}

func receivedOn(s *Session) (n uint64) {
	s.rxMu.Lock()
	defer s.rxMu.Unlock()
	for _, p := range s.pathList() {
		n += uint64(p.rxPackets)
	}
	return n
}

// settle waits until every datagram either session sent has arrived at the other (on
// loopback nothing is lost), so that, with the timers paused, both are at rest.
func settle(t *testing.T, a, b *Session) {
	t.Helper()
	waitFor(t, "datagrams in flight arrived", func() bool {
		return sentOn(a) == receivedOn(b) && sentOn(b) == receivedOn(a)
	})
}

// runUntilIdle runs the paused timers at their deadlines (waiting for the clock to reach
// them) until neither session has anything due within 20 ticks, then runs both once at
// rest, and returns when.
func runUntilIdle(t *testing.T, mt *manualTimers, cs, ss *Session) time.Time {
	t.Helper()
	for i := 0; ; i++ {
		settle(t, cs, ss)
		now := time.Now()
		sent := sentOn(cs) + sentOn(ss)
		cd, sd := cs.timer.Load().Deadline(), ss.timer.Load().Deadline()
		if cd.Sub(now) > 20*tick && sd.Sub(now) > 20*tick {
			// At rest: run both once more, so their deadlines are the ones computed from
			// the state at rest (one computed while a report was still on its way may be
			// earlier: a spurious run, never a late one).
			cs.timer.Load().WakeBy(time.Time{})
			ss.timer.Load().WakeBy(time.Time{})
			mt.q.RunDue(now)
			settle(t, cs, ss)
			if sentOn(cs)+sentOn(ss) == sent {
				return now
			}
			continue // it sent something after all
		}
		if i > 1000 {
			t.Fatalf("the sessions never went idle: client due in %v, server in %v", cd.Sub(now), sd.Sub(now))
		}
		next := cd
		if sd.Before(next) {
			next = sd
		}
		time.Sleep(time.Until(next)) // the clock, not synchronisation: RunDue runs what is due
		mt.q.RunDue(time.Now())
	}
}

// TestIdleSessionSleepsUntilItsProbes: an established idle session's timer is not due
// before its paths' next liveness event (an idle path's next probe), its tiers or its
// keepalive, whichever comes first, and nothing sooner: not the tick it ran at before.
func TestIdleSessionSleepsUntilItsProbes(t *testing.T) {
	mt := useManualTimers(t)
	tp := newTestPair(t)
	cs, ss := tp.client.Session(), tp.server.Sessions()[0]
	waitFor(t, "both client paths up", func() bool { return cs.usablePaths() == 2 })
	mt.pause()
	defer mt.resume()
	checked := 0
	for round := 0; checked < 5; round++ { // several probe rounds
		ran := runUntilIdle(t, mt, cs, ss)
		got := cs.timer.Load().Deadline()
		if cs.liveDirty.Load() {
			// A path changed state (validating → up) at most 50 ms ago: the live set
			// follows it then. Not idle yet.
			if round > 10 {
				t.Fatal("paths keep changing state")
			}
			time.Sleep(time.Until(got))
			mt.q.RunDue(time.Now())
			continue
		}
		checked++
		// What the client's timer may wait for (timerDeadline), read in the same rest.
		want := cs.tm.next(cs.tm.lastTiers, tierInterval)
		if k := cs.tm.next(cs.tm.lastKeepalive, keepaliveInterval); k.Before(want) {
			want = k
		}
		for _, p := range cs.pathList() {
			p.mu.Lock()
			if ev := p.live.NextDeadline(); ev.Before(want) {
				want = ev
			}
			p.mu.Unlock()
		}
		if !got.Equal(maxTime(want, ran.Add(tick))) {
			t.Fatalf("round %d: idle client's timer due %v after its last run, want %v (its next probe, tiers or keepalive); recomputed %v why %d", round, got.Sub(ran), want.Sub(ran), cs.timerDeadline(ran).at.Sub(ran), cs.timerDeadline(ran).why)
		}
		if got.Sub(ran) < 20*tick {
			t.Fatalf("round %d: idle timer due %v after its last run", round, got.Sub(ran))
		}
		// Let the probe round happen.
		time.Sleep(time.Until(got))
		mt.q.RunDue(time.Now())
	}
}

// TestTrafficAfterIdleness: a packet sent into an idle session wakes both timers within a
// tick (the sender's SendBatch, the receiver's arrival), it is delivered, and the FEEDBACK
// the receiver's timer sends acknowledges it.
func TestTrafficAfterIdleness(t *testing.T) {
	mt := useManualTimers(t)
	tp := newTestPair(t)
	cs, ss := tp.client.Session(), tp.server.Sessions()[0]
	waitFor(t, "both client paths up", func() bool { return cs.usablePaths() == 2 })
	mt.pause()
	defer mt.resume()
	runUntilIdle(t, mt, cs, ss)
	var pns [maxPaths]uint64
	for _, p := range cs.pathList() {
		p.mu.Lock()
		pns[p.id] = p.pn
		p.mu.Unlock()
	}
	sent := time.Now()
	tp.clientTUN.Outbound <- udpPacket(clientInner, serverInner, 7, 1200)
	if got := recvPacket(t, tp.fromServerTUN); len(got) != 1200 {
		t.Fatalf("delivered %d bytes", len(got))
	}
	arrived := time.Now()
	// Each side wakes its timer once its batch is done (the receiver after delivering).
	waitFor(t, "the sender's timer due within a tick of the send", func() bool {
		return !cs.timer.Load().Deadline().After(arrived.Add(tick))
	})
	waitFor(t, "the receiver's timer due within a tick of the arrival", func() bool {
		return !ss.timer.Load().Deadline().After(arrived.Add(tick))
	})
	if d := cs.timer.Load().Deadline(); d.Before(sent) {
		t.Errorf("sender's timer due %v before the send", sent.Sub(d))
	}
	settle(t, cs, ss)
	// The data packet went on one path: find it, and wait for its report.
	var data *Path
	for _, p := range cs.pathList() {
		p.mu.Lock()
		if p.pn > pns[p.id] {
			data = p
		}
		p.mu.Unlock()
	}
	if data == nil {
		t.Fatal("no path sent the packet")
	}
	for i := 0; ; i++ {
		time.Sleep(time.Until(ss.timer.Load().Deadline()))
		mt.q.RunDue(time.Now())
		settle(t, cs, ss)
		data.mu.Lock()
		acked, inflight := data.ackedPN >= pns[data.id], data.stats.Inflight()
		data.mu.Unlock()
		if acked && inflight == 0 {
			break
		}
		if i > 10 {
			t.Fatalf("no FEEDBACK acknowledged the packet after %d runs of the receiver's timer", i)
		}
	}
}
