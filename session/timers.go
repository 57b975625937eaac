package session

import (
	"time"

	"github.com/bondtun/bondtun/internal/timerq"
	"github.com/bondtun/bondtun/liveness"
)

// The session's timer (docs/ARCHITECTURE.md): one entry in the process's timer queue
// (internal/timerq), not a goroutine. Its callback, onTimer (control.go), does the periodic
// work and returns its next deadline: a tick from now while anything is active, else the
// earliest of the idle timers below. The receive path (an arrival to report, a packet held
// for reordering) and SendBatch bring the deadline to a tick from now (wakeTimer), so an
// idle session reacts within a tick, and a change of a path's liveness state does too.

// timers is the queue sessions put their timer in when their node was given none
// (ClientConfig.Timers, ServerConfig.Timers); tests may replace it.
var timers = timerq.Default

// timerState is what the timer callback keeps between runs. Only the callback uses it (the
// queue never runs an entry twice at once).
type timerState struct {
	again                                                    []byte // nackAgain, taken
	lastFeedback, lastSpare, lastLive, lastTiers, lastRecord time.Time
	lastKeepalive, lastCtrlCheck                             time.Time
	lastFo                                                   time.Duration
	idle                                                     bool // the paths probe at idleProbeInterval; due coalesces
	allFailed                                                bool // client: every path had failed at the last uplink check
}

// due reports whether a message repeated every interval while the session carries data,
// last sent at last, is due in the run at now; busy: the run sends a datagram anyway.
// While the session is idle it goes with such a run, or alone idleCoalesceMax after the
// last (idleCoalesceMin). The client's tiers and the KEEPALIVE repeat so (a tier change
// sends the tiers at once).
func (t *timerState) due(now, last time.Time, interval time.Duration, busy bool) bool {
	e := now.Sub(last)
	if !t.idle {
		return e >= interval
	}
	return e >= idleCoalesceMax || busy && e >= idleCoalesceMin
}

// next is when such a message is due at the latest: the timer's deadline for it.
func (t *timerState) next(last time.Time, interval time.Duration) time.Time {
	if t.idle {
		return last.Add(idleCoalesceMax)
	}
	return last.Add(interval)
}

// idleWatch is armed on a server session whose control channel c was lost: its timer ends
// the session (fire, on a goroutine of its own) once no authenticated datagram arrived for
// dataIdleTimeout, or at once when its keys are used up (keys is then set).
type idleWatch struct {
	c    *ctrlConn
	fire func(keys bool)
}

// start puts the session's timer in the queue; it first runs at once.
func (s *Session) start() {
	now := s.now()
	s.tm.lastKeepalive = now
	q := s.tq
	if q == nil {
		q = timers()
	}
	s.timer.Store(q.Add(now, s.onTimer))
}

// stopTimer takes the session's timer out of the queue and waits for a running callback.
func (s *Session) stopTimer() {
	if e := s.timer.Load(); e != nil {
		e.Stop()
	}
}

// wakeTimer makes the session's timer run within a tick of now (at once for the zero
// time). It costs an atomic load when the timer is due by then already.
func (s *Session) wakeTimer(now time.Time) {
	if e := s.timer.Load(); e != nil {
		if now.IsZero() {
			e.WakeBy(now)
			return
		}
		e.WakeBy(now.Add(tick))
	}
}

// watchData arms the idle watch for control connection c (see idleWatch).
func (s *Session) watchData(c *ctrlConn, fire func(keys bool)) {
	s.idleWatch.Store(&idleWatch{c: c, fire: fire})
	s.wakeTimer(time.Time{})
}

// controlTimers runs the timers of the control channel: the KEEPALIVE while it is served,
// the client's check of the channel's uplink (and of every path failing: onAllFailed), and
// the server's idle watch. busy: this run of the timer sent a datagram (timerState.due).
func (s *Session) controlTimers(now time.Time, busy bool) {
	t := &s.tm
	if c := s.serving.Load(); c != nil {
		if t.due(now, t.lastKeepalive, keepaliveInterval, busy) {
			t.lastKeepalive = now
			go s.sendKeepalive(c)
		}
		if s.ctrlUplink.Load() >= 0 && now.Sub(t.lastCtrlCheck) >= ctrlUplinkCheck {
			t.lastCtrlCheck = now
			ctrlDead, allFailed := s.ctrlUplinkCheck(now)
			if ctrlDead {
				s.stopControl(c, errCtrlUplinkDead)
			}
			if allFailed && !t.allFailed && s.onAllFailed != nil {
				s.onAllFailed()
			}
			t.allFailed = allFailed
		}
	}
	if w := s.idleWatch.Load(); w != nil {
		keys := false
		select {
		case <-s.keysDone:
			keys = true
		default:
		}
		switch {
		case s.ctrl.Load() != w.c: // resumed on another connection
			s.idleWatch.CompareAndSwap(w, nil)
		case keys || now.Sub(time.Unix(0, s.lastAuth.Load())) > dataIdleTimeout:
			if s.idleWatch.CompareAndSwap(w, nil) {
				go w.fire(keys) // it closes the session, which waits for this callback
			}
		}
	}
}

// timerReason says what set the timer's deadline (tests).
type timerReason uint8

const (
	reasonNone      timerReason = iota // no deadline: only a wake brings the timer back
	reasonActive                       // a tick from now
	reasonFeedback                     // arrivals to report, FEEDBACK due
	reasonLiveness                     // a path's liveness event (probe, suspect, dead, hold-down)
	reasonReceive                      // a path's arrivals stopping: failover hold, live set
	reasonPath                         // socket error retry, path validation
	reasonTraffic                      // recorder sample and live update while traffic flows
	reasonTiers                        // PATH_STATUS repeat
	reasonKeepalive                    // KEEPALIVE
	reasonCtrlCheck                    // the control channel's uplink check
	reasonIdleWatch                    // the server's data-idle end
	reasonKeys                         // key update (rekey.go, tickKeys)
)

// deadline keeps the earliest of candidate times, and why.
type deadline struct {
	at  time.Time
	why timerReason
}

func (d *deadline) add(t time.Time, why timerReason) {
	if d.at.IsZero() || t.Before(d.at) {
		d.at, d.why = t, why
	}
}

// nextTimer is when the timer must run next, computed after a run at now.
func (s *Session) nextTimer(now time.Time) time.Time {
	d := s.timerDeadline(now)
	return d.at
}

// timerDeadline is nextTimer with the reason. While anything is active (packets held for
// reordering or queued locally, losses to report, a resend pending) it is a tick from now,
// as the timer always ran before; otherwise the earliest future event among: the next
// FEEDBACK when arrivals are unreported; the paths' liveness (liveness.NextDeadline: next
// probe, suspect and dead deadlines, hold-downs); a socket error's retry and a path
// validation's next challenge; while traffic flows, the recorder's next sample, the live
// set's update and the receive-side failover thresholds a path crosses when its arrivals
// stop (they shape the reorder buffer's holds, and an idle buffer holds nothing: the first
// run after traffic resumes sets them); the client's tiers; the control channel's
// KEEPALIVE and uplink check (only while some path is dead or down: the check fails
// otherwise); and the server's data-idle end. An event that lies in the past (the state
// did not move on it) counts as a tick from now, never as a spin.
func (s *Session) timerDeadline(now time.Time) deadline {
	t := &s.tm
	var d deadline
	next := now.Add(tick)
	at := func(ev time.Time, why timerReason) {
		if ev.IsZero() {
			return
		}
		d.add(maxTime(ev, next), why)
	}
	paths := s.pathList()
	active, unreported, rx := s.receiveDeadlines(paths, now, next)
	if unreported { // FEEDBACK is due feedbackInterval after the last one
		at(t.lastFeedback.Add(feedbackInterval), reasonFeedback)
	}
	sending, deadOrDown := pathDeadlines(paths, &d, next)
	active = active || sending
	if active {
		return deadline{at: next, why: reasonActive}
	}
	if s.liveDirty.Load() {
		at(t.lastLive.Add(liveInterval), reasonReceive)
	}
	// The recorder samples while traffic flows, and the live set follows it meanwhile.
	trafficFlows := s.counters.TxPackets.Load() != s.rec.lastTx || s.counters.RxPackets.Load() != s.rec.lastRx
	if trafficFlows {
		at(t.lastRecord.Add(recordInterval), reasonTraffic)
		at(t.lastLive.Add(liveInterval), reasonTraffic)
		if !rx.at.IsZero() {
			d.add(rx.at, rx.why)
		}
	}
	if s.sendsTiers {
		at(t.next(t.lastTiers, tierInterval), reasonTiers)
	}
	if ks := &s.keys; ks.enabled {
		if trafficFlows { // the overlap estimate follows the paths' RTT
			at(ks.lastOverlap.Add(rekeyOverlapEvery), reasonKeys)
		}
		at(s.keyDeadline(now), reasonKeys)
	}
	if s.serving.Load() != nil {
		at(t.next(t.lastKeepalive, keepaliveInterval), reasonKeepalive)
		if deadOrDown && s.ctrlUplink.Load() >= 0 {
			at(t.lastCtrlCheck.Add(ctrlUplinkCheck), reasonCtrlCheck)
		}
	}
	if w := s.idleWatch.Load(); w != nil {
		at(time.Unix(0, s.lastAuth.Load()).Add(dataIdleTimeout+time.Nanosecond), reasonIdleWatch)
	}
	return d
}

// receiveDeadlines is timerDeadline's receive side, read under rxMu: whether packets are
// held for reordering or losses wait to be reported (active), whether arrivals are
// unreported, and the earliest receive-side threshold (rx), which matters only while
// traffic flows.
func (s *Session) receiveDeadlines(paths []*Path, now, next time.Time) (active, unreported bool, rx deadline) {
	t := &s.tm
	s.rxMu.Lock()
	defer s.rxMu.Unlock()
	active = s.reorder.Len() > 0 || s.nackN > 0
	busy := false
	rxAt := func(ev time.Time) {
		if !ev.IsZero() {
			rx.add(maxTime(ev, next), reasonReceive)
		}
	}
	for _, p := range paths {
		unreported = unreported || p.rxDirty
		if !p.rxAny {
			continue
		}
		if p.rxGap < busyGap {
			busy = true
			if ev := p.lastRecv.Add(max(silentMin, silentGaps*p.rxGap)); ev.After(now) {
				rxAt(ev) // failoverHoldLocked: it goes silent
			}
		}
		if ev := p.lastRecv.Add(rxSilence); ev.After(t.lastLive) {
			rxAt(maxTime(ev, t.lastLive.Add(liveInterval))) // updateLiveLocked
		}
	}
	if busy { // othersDeliverLocked changes when a path's last arrival is silentMin old
		for _, p := range paths {
			if ev := p.lastRecv.Add(silentMin); p.rxAny && ev.After(now) {
				rxAt(ev)
			}
		}
	}
	return active, unreported, rx
}

// pathDeadlines is timerDeadline's send side: it adds to d each path's liveness event,
// socket error retry and path validation (no earlier than next), and reports whether a
// path has packets queued or a resend pending (active), and whether one is Dead or Down.
func pathDeadlines(paths []*Path, d *deadline, next time.Time) (active, deadOrDown bool) {
	at := func(ev time.Time, why timerReason) {
		if ev.IsZero() {
			return
		}
		d.add(maxTime(ev, next), why)
	}
	for _, p := range paths {
		p.mu.Lock()
		if p.prio.n+p.bulk.n > 0 || p.resend {
			active = true
		}
		st := p.live.State()
		deadOrDown = deadOrDown || st == liveness.Dead || st == liveness.Down
		if p.remote.IsValid() { // a path without an address sends nothing, owes nothing
			at(p.live.NextDeadline(), reasonLiveness)
		}
		if st == liveness.Down && !p.downErr.IsZero() {
			at(p.downErr.Add(socketErrorRetry), reasonPath)
		}
		if p.cand.IsValid() {
			at(p.candSent.Add(pathChallengeRetry), reasonPath)
		}
		p.mu.Unlock()
	}
	return active, deadOrDown
}

// keyDeadline is when tickKeys next has something to do: the end of the previous key's
// overlap, or the time-based key update (the packet-count one comes with sends, which
// wake the timer); while an update waits for the peer's confirmation, every
// rekeyOverlapEvery.
func (s *Session) keyDeadline(now time.Time) time.Time {
	ks := &s.keys
	g := ks.cur.Load()
	if g.prevOpen != nil && g.heard {
		return time.Unix(0, g.prevUntil)
	}
	if due := g.started.Add(ks.interval); due.After(now) {
		return due
	}
	return now.Add(rekeyOverlapEvery)
}

func maxTime(a, b time.Time) time.Time {
	if a.After(b) {
		return a
	}
	return b
}
