package liveness

import "time"

// State is a path's liveness state.
type State uint8

const (
	// Validating: the path has not answered since it was created or came
	// back locally (OnLocalUp).
	Validating State = iota
	// Up: the path answers; it carries new data.
	Up
	// Suspect: data or probes went unanswered for the suspect threshold.
	Suspect
	// Dead: silent for DeadAfter.
	Dead
	// Rejoining: a dead path answers again but is not trusted yet.
	Rejoining
	// Down: a local signal (link or address gone, socket error) took the
	// path down; only OnLocalUp leaves it.
	Down
)

var stateNames = [...]string{"validating", "up", "suspect", "dead", "rejoining", "down"}

// String returns the state's lower-case name, as status output shows it.
func (s State) String() string {
	if int(s) < len(stateNames) {
		return stateNames[s]
	}
	return "invalid"
}

// Config holds the timers of one path. The zero value of a field means its
// default; negative values are treated as zero.
type Config struct {
	// ProbeInterval is the probe period of an idle Up path and of Validating
	// and Dead paths; 100 ms by default. Use a longer one for a metered
	// backup. It is also the hold-down before a path's state improves.
	ProbeInterval time.Duration
	// SuspectProbeInterval is the probe period of Suspect and Rejoining
	// paths; ProbeInterval/2 by default (50 ms).
	SuspectProbeInterval time.Duration
	// SuspectFloor is the shortest silence that makes a path suspect; 150 ms
	// by default (timer granularity, feedback spacing).
	SuspectFloor time.Duration
	// MissedProbes is how many probe intervals an unanswered probe may wait
	// before an idle path is suspect; 3 by default.
	MissedProbes int
	// DeadAfter is the silence after which a path is dead; 1 s by default,
	// and never less than twice the idle suspect threshold.
	DeadAfter time.Duration
	// RejoinProbes is how many good answers in a row a dead path needs to be
	// Up again; 3 by default.
	RejoinProbes int
	// RejoinRTTFactor: a rejoin answer is good only if its RTT is at most this
	// factor times the SRTT before the path died; 2 by default.
	RejoinRTTFactor float64
	// RejoinRTTSlack: an answer within this much of the SRTT before the path died is
	// good whatever the factor; 10 ms by default. A sub-millisecond path (loopback, a
	// LAN) answers a probe in several times its SRTT whenever a busy host is slow to
	// run either end, and a factor alone would keep it out until RejoinRTTMemory.
	RejoinRTTSlack time.Duration
	// RejoinRTTMemory is how long that SRTT is remembered after the path went
	// silent; later, any answer is good. 10 s by default.
	RejoinRTTMemory time.Duration
}

// Defaults of [Config].
const (
	DefaultProbeInterval   = 100 * time.Millisecond
	DefaultSuspectFloor    = 150 * time.Millisecond
	DefaultMissedProbes    = 3
	DefaultDeadAfter       = time.Second
	DefaultRejoinProbes    = 3
	DefaultRejoinRTTFactor = 2.0
	DefaultRejoinRTTSlack  = 10 * time.Millisecond
	DefaultRejoinRTTMemory = 10 * time.Second
)

// withDefaults returns c with every unset field at its default.
func (c Config) withDefaults() Config {
	if c.ProbeInterval <= 0 {
		c.ProbeInterval = DefaultProbeInterval
	}
	if c.SuspectProbeInterval <= 0 {
		c.SuspectProbeInterval = c.ProbeInterval / 2
	}
	if c.SuspectFloor <= 0 {
		c.SuspectFloor = DefaultSuspectFloor
	}
	if c.MissedProbes <= 0 {
		c.MissedProbes = DefaultMissedProbes
	}
	if c.DeadAfter <= 0 {
		c.DeadAfter = DefaultDeadAfter
	}
	if c.RejoinProbes <= 0 {
		c.RejoinProbes = DefaultRejoinProbes
	}
	if !(c.RejoinRTTFactor > 0) { // also NaN
		c.RejoinRTTFactor = DefaultRejoinRTTFactor
	}
	if c.RejoinRTTSlack <= 0 {
		c.RejoinRTTSlack = DefaultRejoinRTTSlack
	}
	if c.RejoinRTTMemory <= 0 {
		c.RejoinRTTMemory = DefaultRejoinRTTMemory
	}
	return c
}

// Transition is what an event did to a path's state. Changed is false, and
// From == To, when the state stayed the same.
type Transition struct {
	From, To State
	Changed  bool
}

// Restart reports whether the path just became Up after not being trusted
// (Validating, Dead or Rejoining), so the caller restarts its rate estimate
// low. A Suspect path that answers again keeps its estimate.
func (t Transition) Restart() bool {
	return t.Changed && t.To == Up && t.From != Suspect
}

// Path is the liveness state of one path. Create it with [New]. Every
// method takes the time of the event; successive calls must not go back in
// time. A Path is not safe for concurrent use: the session calls it under
// the path's lock.
type Path struct {
	cfg   Config
	state State

	changedAt    time.Time     // when state last changed
	lastHeard    time.Time     // last evidence of delivery; zero before any
	lastProbe    time.Time     // last MarkProbed; zero before any
	idleInterval time.Duration // SetIdleProbeInterval; 0: ProbeInterval
	sentSince    time.Time     // first datagram sent after lastHeard; zero if none
	probeSince   time.Time     // first probe sent after lastHeard; zero if none

	// From the last Tick.
	inflight bool
	srtt     time.Duration
	lastVar  time.Duration // rttvar of the last Tick
	heldVar  time.Duration // RTTVAR held at its peak, decayed once per SRTT
	varAt    time.Time     // last hold or decay of heldVar

	refSRTT    time.Duration // SRTT while last Up: the rejoin reference
	silentAt   time.Time     // when the path left Up (start of RTT memory)
	quietSince time.Time     // silence start of a Suspect, Dead or Rejoining path

	goodRun   int  // good answers in a row while Dead or Rejoining
	recovered bool // heard again since entering Suspect or Dead
	alone     bool // no other path of the session is usable (SetAlone)
	everUp    bool
	reason    string // of the last OnLocalDown
}

// New returns a Validating path created at now.
func New(cfg Config, now time.Time) *Path {
	p := &Path{}
	p.Reset(cfg, now)
	return p
}

// Reset puts p back in the state New returns, without allocating.
func (p *Path) Reset(cfg Config, now time.Time) {
	*p = Path{cfg: cfg.withDefaults(), state: Validating, changedAt: now}
}

// State returns the current state.
func (p *Path) State() State { return p.state }

// SetAlone tells the path whether it is alone: no other path of its session is usable.
// A path that is alone rejoins on its first answer after the hold-down, however slow:
// the rejoin rule (RejoinProbes answers within RejoinRTTFactor × the old SRTT) chooses
// between paths, and with none usable a slow path beats no tunnel. Without it, a session
// whose every path had died while a loaded host delayed them (the sweep, at load 6) came
// back only once RejoinRTTMemory had passed: 8 s without a tunnel.
func (p *Path) SetAlone(alone bool) { p.alone = alone }

// rejoinProbes is how many good answers in a row the path needs to rejoin.
func (p *Path) rejoinProbes() int {
	if p.alone {
		return 1
	}
	return p.cfg.RejoinProbes
}

// Usable reports whether new data may be scheduled on the path: only Up.
func (p *Path) Usable() bool { return p.state == Up }

// Since returns when the state last changed.
func (p *Path) Since() time.Time { return p.changedAt }

// LastHeard returns the time of the last evidence of delivery (zero if none).
func (p *Path) LastHeard() time.Time { return p.lastHeard }

// Reason returns the reason of the last OnLocalDown, for status and logs.
func (p *Path) Reason() string { return p.reason }

// Config returns the configuration in effect, defaults filled in.
func (p *Path) Config() Config { return p.cfg }

// OnSent records that a datagram (data or control) was sent on the path.
func (p *Path) OnSent(now time.Time) {
	if p.sentSince.IsZero() {
		p.sentSince = now
	}
}

// MarkProbed records that a PROBE was sent at now. It implies OnSent.
func (p *Path) MarkProbed(now time.Time) {
	p.lastProbe = now
	if p.probeSince.IsZero() {
		p.probeSince = now
	}
	p.OnSent(now)
}

// OnHeard records evidence that the path delivers our datagrams: a FEEDBACK
// that acknowledged something new, or a PROBE_ACK. rtt is the sample it gave,
// or a negative value if none; an answer without a sample counts as evidence
// but neither as a good nor as a slow rejoin answer. Ignored while Down.
func (p *Path) OnHeard(now time.Time, rtt time.Duration) Transition {
	from := p.state
	if from == Down {
		return p.result(from)
	}
	p.lastHeard = now
	p.sentSince, p.probeSince = time.Time{}, time.Time{}
	switch from {
	case Validating:
		if !p.everUp {
			p.set(now, Up)
			return p.result(from)
		}
		p.goodRun = 0
		p.countAnswer(now, rtt)
		p.set(now, Rejoining)
		p.promote(now)
	case Suspect, Dead, Rejoining:
		p.recovered = true
		if from != Suspect {
			p.countAnswer(now, rtt)
		}
		p.promote(now)
	}
	return p.result(from)
}

// countAnswer counts a rejoin answer as good, slow (resets the run) or
// neutral (no RTT sample).
func (p *Path) countAnswer(now time.Time, rtt time.Duration) {
	switch {
	case rtt < 0:
	case p.alone || p.refSRTT <= 0 || now.Sub(p.silentAt) >= p.cfg.RejoinRTTMemory ||
		float64(rtt) <= p.cfg.RejoinRTTFactor*float64(p.refSRTT) || rtt <= p.refSRTT+p.cfg.RejoinRTTSlack:
		p.goodRun++
	default:
		p.goodRun = 0
	}
}

// OnLocalDown marks the path Down at once: its interface went down, its
// address was removed, or a send failed with ENETUNREACH or EHOSTUNREACH.
// reason is kept for status and logs.
func (p *Path) OnLocalDown(now time.Time, reason string) Transition {
	from := p.state
	p.reason = reason
	if from != Down {
		p.leaveUp(now)
		p.set(now, Down)
	}
	return p.result(from)
}

// OnLocalUp makes a Down path Validating again: its interface or address is
// back (or, after a socket error, the caller decided to retry). It does
// nothing in any other state.
func (p *Path) OnLocalUp(now time.Time) Transition {
	from := p.state
	if from == Down {
		p.sentSince, p.probeSince, p.lastProbe = time.Time{}, time.Time{}, time.Time{}
		p.set(now, Validating)
	}
	return p.result(from)
}

func (p *Path) result(from State) Transition {
	return Transition{From: from, To: p.state, Changed: from != p.state}
}

func (p *Path) set(now time.Time, s State) {
	if s == p.state {
		return
	}
	p.state, p.changedAt = s, now
	p.recovered = false
	if s == Up {
		p.everUp = true
		p.goodRun = 0
	}
}

// leaveUp remembers the SRTT of a path that stops being Up, as the reference
// for its rejoin answers.
func (p *Path) leaveUp(now time.Time) {
	if p.state == Up {
		p.silentAt = now
		if p.srtt > 0 {
			p.refSRTT = p.srtt
		}
	}
}
