package liveness

import (
	"testing"
	"time"
)

// allowed lists the transitions the state machine may report (→Down from
// anywhere is checked separately).
var allowed = map[[2]State]bool{
	{Validating, Up}: true, {Validating, Rejoining}: true,
	{Up, Suspect}: true, {Up, Dead}: true,
	{Suspect, Up}: true, {Suspect, Dead}: true,
	{Dead, Rejoining}: true, {Dead, Up}: true,
	{Rejoining, Up}: true, {Rejoining, Dead}: true,
	{Down, Validating}: true,
}

// FuzzPath drives a Path with a byte-encoded stream of events and checks its
// invariants after each one. The first two bytes choose the configuration
// (probe interval, rejoin probes); then 4 bytes an event:
//
//	ops[0]%8   event: 0 OnSent, 1 OnHeard, 2 MarkProbed, 3 OnLocalDown,
//	           4 OnLocalUp, 5 Tick, 6 probe if due, 7 Tick at NextEvent
//	ops[1]     time advance in ms
//	ops[2..3]  arguments: RTT (ms, 255: none), inflight, SRTT and RTTVAR
//
// Invariants: Usable ⇔ Up; a reported transition starts at the previous
// state, ends at the current one and is Changed exactly when they differ (so
// never Up→Up as a change); only allowed transitions; Down is left only via
// OnLocalUp; OnSent and MarkProbed never change the state; a Down path
// wants no probe and no timer, any other path has a timer.
func FuzzPath(f *testing.F) {
	f.Add([]byte{0, 0, 6, 0, 0, 0, 1, 20, 20, 0, 0, 1, 0, 0, 5, 200, 1, 20})
	f.Add([]byte{3, 2, 6, 0, 0, 0, 1, 30, 30, 0, 3, 10, 0, 0, 1, 10, 30, 0, 4, 10, 0, 0, 6, 0, 0, 0, 1, 30, 30, 0})
	f.Fuzz(func(t *testing.T, ops []byte) {
		if len(ops) < 2 {
			return
		}
		cfg := Config{
			ProbeInterval: time.Duration(ops[0]%20+1) * 10 * time.Millisecond,
			RejoinProbes:  int(ops[1]%5) + 1,
		}
		ops = ops[2:]
		now := t0
		p := New(cfg, now)
		for ; len(ops) >= 4; ops = ops[4:] {
			kind, b, c := ops[0]%8, ops[2], ops[3]
			now = now.Add(time.Duration(ops[1]) * time.Millisecond)
			prev := p.State()
			var tr Transition
			reported := true
			switch kind {
			case 0:
				p.OnSent(now)
				reported = false
			case 1:
				rtt := time.Duration(b) * time.Millisecond
				if b == 255 {
					rtt = -1
				}
				tr = p.OnHeard(now, rtt)
			case 2:
				p.MarkProbed(now)
				reported = false
			case 3:
				tr = p.OnLocalDown(now, "fuzz")
				if p.State() != Down {
					t.Fatalf("OnLocalDown: state %v", p.State())
				}
			case 4:
				tr = p.OnLocalUp(now)
			case 5:
				tr = p.Tick(now, b&1 == 1, time.Duration(c)*4*time.Millisecond, time.Duration(b>>1)*time.Millisecond)
			case 6:
				if p.ProbeDue(now) {
					p.MarkProbed(now)
				}
				reported = false
			case 7:
				if next := p.NextEvent(); !next.IsZero() && next.After(now) {
					now = next
				}
				tr = p.Tick(now, b&1 == 1, time.Duration(c)*4*time.Millisecond, time.Duration(b>>1)*time.Millisecond)
			}
			s := p.State()
			if s > Down {
				t.Fatalf("invalid state %d", s)
			}
			if p.Usable() != (s == Up) {
				t.Fatalf("Usable %v in state %v", p.Usable(), s)
			}
			if !reported && s != prev {
				t.Fatalf("event %d changed %v to %v without a transition", kind, prev, s)
			}
			if reported {
				if tr.From != prev || tr.To != s || tr.Changed != (prev != s) {
					t.Fatalf("event %d: transition %+v, state %v → %v", kind, tr, prev, s)
				}
				if tr.Changed && tr.To != Down && !allowed[[2]State{tr.From, tr.To}] {
					t.Fatalf("event %d: transition %v→%v not allowed", kind, tr.From, tr.To)
				}
			}
			if prev == Down && s != Down && kind != 4 {
				t.Fatalf("event %d left Down", kind)
			}
			if s == Down && (p.ProbeDue(now) || !p.NextEvent().IsZero()) {
				t.Fatal("a Down path wants a probe or a timer")
			}
			if s != Down && p.NextEvent().IsZero() {
				t.Fatalf("state %v without a timer", s)
			}
		}
	})
}
