package liveness

import "time"

// minVarDecay bounds the RTTVAR decay period from below when SRTT is tiny
// or unknown.
const minVarDecay = 10 * time.Millisecond

// maxVarDecays: after this many decay periods the held RTTVAR is simply the
// caller's ((3/4)^32 < 0.01 %).
const maxVarDecays = 32

// Tick evaluates the path's timers at now. inflight says whether the path
// has unacknowledged data; srtt and rttvar are its current RTT estimates
// (RFC 6298; zero or negative if unknown). Call it whenever NextEvent
// passes, and after feedback; extra calls are harmless.
func (p *Path) Tick(now time.Time, inflight bool, srtt, rttvar time.Duration) Transition {
	from := p.state
	p.inflight = inflight
	p.srtt = max(srtt, 0)
	p.holdVar(now, max(rttvar, 0))
	switch from {
	case Up:
		if start, ok := p.silent(now, p.upInterval()); ok {
			p.leaveUp(now)
			p.set(now, Suspect)
			p.quietSince = start
			p.checkDead(now)
		}
	case Suspect:
		if p.recovered {
			if start, ok := p.silent(now, p.cfg.ProbeInterval); ok {
				p.recovered = false // answered, then silent again
				p.quietSince = start
			} else {
				p.promote(now)
			}
		}
		if p.state == Suspect && !p.recovered {
			p.checkDead(now)
		}
	case Rejoining:
		if start, ok := p.silent(now, p.cfg.SuspectProbeInterval); ok {
			p.quietSince = start
			p.goodRun = 0
			p.set(now, Dead)
		} else {
			p.promote(now)
		}
	case Dead:
		p.promote(now)
	}
	return p.result(from)
}

// holdVar keeps RTTVAR at its peak and lets it decay by a quarter once per
// SRTT, as Linux's per-RTT mdev_max does, instead of once per sample.
func (p *Path) holdVar(now time.Time, rttvar time.Duration) {
	p.lastVar = rttvar
	if rttvar >= p.heldVar || p.varAt.IsZero() {
		p.heldVar, p.varAt = rttvar, now
		return
	}
	period := max(p.srtt, minVarDecay)
	n := now.Sub(p.varAt) / period
	if n <= 0 {
		return
	}
	if n >= maxVarDecays {
		p.heldVar = rttvar
	} else {
		for range n {
			p.heldVar -= p.heldVar / 4
		}
		p.heldVar = max(p.heldVar, rttvar)
	}
	p.varAt = p.varAt.Add(n * period)
}

// rto is SRTT + 4·RTTVAR with the held RTTVAR, never less than SRTT/2 (its
// RFC 6298 initial value): so rto ≥ 3·SRTT, and a feedback gap of up to three
// RTTs on a path whose RTT looked steady is not taken for a failure.
func (p *Path) rto() time.Duration { return p.srtt + 4*max(p.heldVar, p.srtt/2) }

// loadThreshold is the silence after which a path with data in flight is
// suspect.
func (p *Path) loadThreshold() time.Duration {
	return max(p.rto(), p.cfg.SuspectFloor)
}

// probeThreshold is how long a probe sent every interval may go unanswered.
func (p *Path) probeThreshold(interval time.Duration) time.Duration {
	return max(time.Duration(p.cfg.MissedProbes)*interval, p.rto(), p.cfg.SuspectFloor)
}

// deadAfter is the silence after which a path is dead: DeadAfter, but never
// less than twice the idle suspect threshold, so a path with a long
// threshold (bufferbloat, a backup's long probe interval) is Suspect for a
// while, and may come back cheaply, before it must rejoin.
func (p *Path) deadAfter() time.Duration {
	return max(p.cfg.DeadAfter, 2*p.probeThreshold(p.upInterval()))
}

// silenceStart is the time since which the path owes us an answer: the first
// datagram sent after the last evidence, or the last evidence itself while
// data is in flight. ok is false when nothing is owed.
func (p *Path) silenceStart() (time.Time, bool) {
	if !p.sentSince.IsZero() {
		return p.sentSince, true
	}
	if p.inflight && !p.lastHeard.IsZero() {
		return p.lastHeard, true
	}
	return time.Time{}, false
}

// silent reports whether the path has been silent past its suspect
// threshold, probed every interval, and since when it owes an answer.
func (p *Path) silent(now time.Time, interval time.Duration) (time.Time, bool) {
	start, ok := p.silenceStart()
	if !ok {
		return start, false
	}
	if !p.probeSince.IsZero() && now.Sub(p.probeSince) >= p.probeThreshold(interval) {
		return start, true
	}
	if p.inflight && now.Sub(start) >= p.loadThreshold() {
		return start, true
	}
	return start, false
}

// checkDead moves a Suspect path to Dead once it has been silent for
// deadAfter.
func (p *Path) checkDead(now time.Time) {
	if !p.recovered && now.Sub(p.quietSince) >= p.deadAfter() {
		p.goodRun = 0
		p.set(now, Dead)
	}
}

// promote applies the improvements the path has earned, once its state is
// at least one ProbeInterval old (the hold-down against flapping).
func (p *Path) promote(now time.Time) {
	if now.Sub(p.changedAt) < p.cfg.ProbeInterval {
		return
	}
	switch p.state {
	case Suspect:
		if p.recovered {
			p.set(now, Up)
		}
	case Dead:
		if p.recovered {
			p.set(now, Rejoining)
			if p.goodRun >= p.rejoinProbes() {
				p.set(now, Up)
			}
		}
	case Rejoining:
		if p.goodRun >= p.rejoinProbes() {
			p.set(now, Up)
		}
	}
}

// probeInterval is the probe period of the current state.
func (p *Path) probeInterval() time.Duration {
	switch p.state {
	case Suspect, Rejoining:
		return p.cfg.SuspectProbeInterval
	case Up:
		return p.upInterval()
	}
	return p.cfg.ProbeInterval
}

// upInterval is the probe period of an idle Up path: ProbeInterval, or the longer one
// SetIdleProbeInterval gave while the path's session carries nothing.
func (p *Path) upInterval() time.Duration { return max(p.cfg.ProbeInterval, p.idleInterval) }

// SetIdleProbeInterval sets the probe period of the path while it is Up and idle to d
// (at least ProbeInterval; 0 restores it), and the missed-probe threshold with it: a
// session that carries nothing probes its paths rarely (keeping NAT bindings and liveness
// at a few datagrams a minute), and goes back to ProbeInterval as soon as it carries data,
// when failures must be found fast. The next probe is due d after the last.
func (p *Path) SetIdleProbeInterval(d time.Duration) { p.idleInterval = max(d, 0) }

// ProbeDue reports whether a PROBE should be sent now: never while Down;
// while Up only when nothing was heard for ProbeInterval (an idle path);
// otherwise every ProbeInterval (Validating, Dead) or SuspectProbeInterval
// (Suspect, Rejoining). Call MarkProbed when the probe is sent.
func (p *Path) ProbeDue(now time.Time) bool {
	if p.state == Down {
		return false
	}
	return !now.Before(p.nextProbe())
}

// nextProbe is when the next probe is due (not meaningful while Down).
func (p *Path) nextProbe() time.Time {
	iv := p.probeInterval()
	t := p.changedAt // not probed since New or OnLocalUp: due at once
	if !p.lastProbe.IsZero() {
		t = p.lastProbe.Add(iv)
	}
	if p.state == Up {
		if h := p.lastHeard.Add(iv); h.After(t) {
			t = h
		}
	}
	return t
}

// NextEvent returns when Tick or ProbeDue next needs calling: the next probe,
// suspect or dead deadline, hold-down end or RTTVAR decay, computed from the
// values of the last Tick. It returns the zero time when nothing is pending
// (Down); a time in the past means now.
func (p *Path) NextEvent() time.Time {
	if p.state == Down {
		return time.Time{}
	}
	next := p.nextProbe()
	at := func(t time.Time) {
		if t.Before(next) {
			next = t
		}
	}
	start, owed := p.silenceStart()
	switch p.state {
	case Up, Rejoining:
		if owed {
			iv := p.upInterval()
			if p.state == Rejoining {
				iv = p.cfg.SuspectProbeInterval
			}
			if !p.probeSince.IsZero() {
				at(p.probeSince.Add(p.probeThreshold(iv)))
			}
			if p.inflight {
				at(start.Add(p.loadThreshold()))
			}
		}
	case Suspect:
		if !p.recovered {
			at(p.quietSince.Add(p.deadAfter()))
		} else if owed {
			if !p.probeSince.IsZero() {
				at(p.probeSince.Add(p.probeThreshold(p.cfg.ProbeInterval)))
			}
			if p.inflight {
				at(start.Add(p.loadThreshold()))
			}
		}
	}
	if p.recovered || (p.state == Rejoining && p.goodRun >= p.rejoinProbes()) {
		at(p.changedAt.Add(p.cfg.ProbeInterval))
	}
	if p.heldVar > p.lastVar && (p.state == Up || p.state == Rejoining || p.state == Suspect) {
		at(p.varAt.Add(max(p.srtt, minVarDecay)))
	}
	return next
}

// NextDeadline is [Path.NextEvent] less the events that cannot change anything: while the
// path is Up and owes no answer (nothing sent since the last evidence, nothing in
// flight), no Tick can move it, and the held RTTVAR's decays, which NextEvent wakes the
// caller for, are applied lazily by the next Tick anyway. A caller that sleeps until
// NextDeadline, and calls Tick after every send and answer as well, sees the same
// transitions as one that ticks every millisecond; an idle path then wakes it only for
// its probes.
func (p *Path) NextDeadline() time.Time {
	if p.state != Up {
		return p.NextEvent()
	}
	if _, owed := p.silenceStart(); owed || p.recovered {
		return p.NextEvent()
	}
	return p.nextProbe()
}
