package liveness

import (
	"fmt"
	"strings"
	"testing"
	"time"
)

// t0 is the fake clock's origin.
var t0 = time.Date(2026, 1, 1, 0, 0, 0, 0, time.UTC)

func ms(n int) time.Duration { return time.Duration(n) * time.Millisecond }

// evKind is an event of a scenario.
type evKind uint8

const (
	evLoad     evKind = iota // start (on) or stop sending data
	evLink                   // the link works (on) or is cut
	evRTT                    // the link's RTT, and the srtt/rttvar the caller reports
	evProbeRTT               // RTT of probe answers only (d), e.g. slow answers
	evDown                   // OnLocalDown
	evUp                     // OnLocalUp
	evHeard                  // a stray OnHeard (rtt d), e.g. while Down
	evWant                   // expect state s after this millisecond
)

type ev struct {
	at     int // ms
	kind   evKind
	on     bool
	d      time.Duration // RTT
	srtt   time.Duration
	rttvar time.Duration
	s      State
}

func load(at int, on bool) ev { return ev{at: at, kind: evLoad, on: on} }
func link(at int, on bool) ev { return ev{at: at, kind: evLink, on: on} }
func want(at int, s State) ev { return ev{at: at, kind: evWant, s: s} }
func down(at int) ev          { return ev{at: at, kind: evDown} }
func up(at int) ev            { return ev{at: at, kind: evUp} }
func heard(at int, d int) ev  { return ev{at: at, kind: evHeard, d: ms(d)} }
func probeRTT(at, d int) ev   { return ev{at: at, kind: evProbeRTT, d: ms(d)} }
func rtt(at, d, srtt, v int) ev {
	return ev{at: at, kind: evRTT, d: ms(d), srtt: ms(srtt), rttvar: ms(v)}
}

// change is one reported transition.
type change struct {
	at       int
	from, to State
}

func (c change) String() string { return fmt.Sprintf("%d:%v→%v", c.at, c.from, c.to) }

// driver plays a path's caller against a model link, one millisecond a
// step: it sends data while loaded and the path is usable, gets FEEDBACK
// every 5 ms while the link works and data sent within the last RTT is
// outstanding, sends probes when due and gets their answers one RTT later
// if the link still works, and ticks the path every millisecond.
type driver struct {
	p        *Path
	loaded   bool
	linkUp   bool
	rtt      time.Duration
	probeRTT time.Duration // 0: rtt
	srtt     time.Duration
	rttvar   time.Duration
	lastData int // ms of the last data sent; -1 if none
	answers  []answer
	changes  []change
	fail     []string
}

type answer struct {
	at  time.Duration // since t0
	rtt time.Duration
}

func newDriver(cfg Config) *driver {
	return &driver{p: New(cfg, t0), linkUp: true, rtt: ms(40), srtt: ms(40), rttvar: ms(5), lastData: -1000000}
}

func (d *driver) note(at int, tr Transition) {
	if tr.Changed {
		d.changes = append(d.changes, change{at, tr.From, tr.To})
	}
}

// run plays events (sorted by time) until end ms.
func (d *driver) run(evs []ev, end int) {
	i := 0
	for t := 0; t <= end; t++ {
		now := t0.Add(ms(t))
		var wants []ev
		for ; i < len(evs) && evs[i].at <= t; i++ {
			e := evs[i]
			switch e.kind {
			case evLoad:
				d.loaded = e.on
			case evLink:
				d.linkUp = e.on
				if !e.on {
					d.answers = d.answers[:0] // nothing in flight comes back
				}
			case evRTT:
				d.rtt, d.srtt, d.rttvar = e.d, e.srtt, e.rttvar
			case evProbeRTT:
				d.probeRTT = e.d
			case evDown:
				d.note(t, d.p.OnLocalDown(now, "link down"))
			case evUp:
				d.note(t, d.p.OnLocalUp(now))
			case evHeard:
				d.note(t, d.p.OnHeard(now, e.d))
			case evWant:
				wants = append(wants, e)
			}
		}
		// Answers due by now.
		n := 0
		for _, a := range d.answers {
			if a.at <= ms(t) {
				d.note(t, d.p.OnHeard(now, a.rtt))
			} else {
				d.answers[n] = a
				n++
			}
		}
		d.answers = d.answers[:n]
		// FEEDBACK every 5 ms about data sent at least one RTT ago.
		if d.linkUp && t%5 == 0 && d.lastData >= t-int(d.rtt/time.Millisecond)-5 && d.lastData >= 0 {
			d.note(t, d.p.OnHeard(now, d.rtt))
		}
		if d.loaded && d.p.Usable() {
			d.p.OnSent(now)
			d.lastData = t
		}
		if d.p.ProbeDue(now) {
			d.p.MarkProbed(now)
			if d.linkUp {
				r := d.rtt
				if d.probeRTT > 0 {
					r = d.probeRTT
				}
				d.answers = append(d.answers, answer{ms(t) + r, r})
			}
		}
		inflight := d.loaded && d.lastData >= 0
		d.note(t, d.p.Tick(now, inflight, d.srtt, d.rttvar))
		for _, w := range wants {
			if got := d.p.State(); got != w.s {
				d.fail = append(d.fail, fmt.Sprintf("at %d ms: state %v, want %v", t, got, w.s))
			}
		}
	}
}

func (d *driver) history() string {
	var b strings.Builder
	for i, c := range d.changes {
		if i > 0 {
			b.WriteByte(' ')
		}
		b.WriteString(c.String())
	}
	return b.String()
}

// path returns the sequence of states the changes went through, from the
// first From, e.g. "validating up suspect dead".
func (d *driver) path() string {
	if len(d.changes) == 0 {
		return d.p.State().String()
	}
	var b strings.Builder
	b.WriteString(d.changes[0].from.String())
	for _, c := range d.changes {
		b.WriteByte(' ')
		b.WriteString(c.to.String())
	}
	return b.String()
}

// firstChange returns the time of the first change to s after ms from, or -1.
func (d *driver) firstChange(s State, from int) int {
	for _, c := range d.changes {
		if c.to == s && c.at >= from {
			return c.at
		}
	}
	return -1
}

func sortEvents(evs []ev) {
	// Insertion sort: stable, and scenarios are short.
	for i := 1; i < len(evs); i++ {
		for j := i; j > 0 && evs[j].at < evs[j-1].at; j-- {
			evs[j], evs[j-1] = evs[j-1], evs[j]
		}
	}
}

func TestStateString(t *testing.T) {
	for s, want := range map[State]string{Validating: "validating", Up: "up", Suspect: "suspect",
		Dead: "dead", Rejoining: "rejoining", Down: "down", 99: "invalid"} {
		if s.String() != want {
			t.Errorf("%d: %q, want %q", s, s.String(), want)
		}
	}
}
