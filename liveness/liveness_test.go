package liveness

import (
	"fmt"
	"strings"
	"testing"
	"time"
)

// TestScenarios drives a path through named event sequences against the
// model link of driver and checks its state at given times and the
// sequence of states it went through.
func TestScenarios(t *testing.T) {
	// Defaults: ProbeInterval 100 ms, suspect probes 50 ms, floor 150 ms,
	// 3 missed probes, dead after 1 s, 3 rejoin probes, factor 2.
	tests := []struct {
		name  string
		cfg   Config
		end   int
		evs   []ev
		path  string // the states gone through, "" not checked
		check func(t *testing.T, d *driver)
	}{
		{
			// SRTT 40, RTTVAR 10: SRTT + 4·max(RTTVAR, SRTT/2) = 120 < floor 150.
			// Last feedback and first unanswered data at 995 ms: suspect
			// 150 ms later, dead DeadAfter later.
			name: "loaded path cut",
			end:  2200,
			evs: []ev{rtt(0, 40, 40, 10), load(0, true), want(39, Validating), want(40, Up),
				link(1000, false), want(1144, Up), want(1145, Suspect),
				want(1994, Suspect), want(1995, Dead), want(2200, Dead)},
			path: "validating up suspect dead",
		},
		{
			// SRTT 100, RTTVAR 10: the RTTVAR floor SRTT/2 gives 100 + 4·50 = 300.
			name: "loaded path cut, steady RTT of 100 ms",
			end:  1500,
			evs: []ev{rtt(0, 100, 100, 10), load(0, true), want(100, Up),
				link(1000, false), want(1294, Up), want(1295, Suspect)},
			path: "validating up suspect",
		},
		{
			// SRTT 800, RTTVAR 300 (held at SRTT/2 = 400): threshold 2.4 s; a
			// 1 s stall under load is no failure.
			name: "bufferbloated LTE stalls 1 s under load",
			end:  5000,
			evs: []ev{rtt(0, 800, 800, 300), load(0, true), want(800, Up),
				link(2000, false), want(2999, Up), link(3000, true), want(3000, Up), want(5000, Up)},
			path: "validating up",
		},
		{
			// Last feedback and first unanswered data at 1995: suspect at
			// 1995 + 2400, dead at 1995 + 2·2400.
			name: "bufferbloated LTE cut",
			end:  7000,
			evs: []ev{rtt(0, 800, 800, 300), load(0, true), want(800, Up),
				link(2000, false), want(4394, Up), want(4395, Suspect), want(6794, Suspect), want(6795, Dead)},
			path: "validating up suspect dead",
		},
		{
			// Up at 30; a probe 100 ms after each answer: at 910 (answered
			// at 940), then 1040 is the first unanswered; suspect 300 ms
			// later, dead 1 s after it.
			name: "idle path cut",
			end:  2500,
			evs: []ev{rtt(0, 30, 30, 5), want(30, Up), link(1000, false),
				want(1339, Up), want(1340, Suspect), want(2039, Suspect), want(2040, Dead)},
			path: "validating up suspect dead",
		},
		{
			name: "local down at once, local up validates and rejoins",
			end:  2500,
			evs: []ev{rtt(0, 40, 40, 5), load(0, true), want(40, Up),
				down(500), want(500, Down), heard(600, 40), want(600, Down), want(1999, Down),
				up(2000), want(2000, Validating), want(2039, Validating), want(2040, Rejoining),
				want(2139, Rejoining), want(2140, Up), want(2500, Up)},
			path: "validating up down validating rejoining up",
		},
		{
			name: "local down while suspect",
			end:  1300,
			evs: []ev{rtt(0, 40, 40, 5), load(0, true), link(1000, false), want(1146, Suspect),
				down(1200), want(1200, Down), link(1250, true), want(1300, Down)},
			path: "validating up suspect down",
		},
		{
			// Suspect at 1146; the link is back at 1300, the next suspect
			// probe (every 50 ms) is answered 40 ms later.
			name: "restored while suspect",
			end:  2000,
			evs: []ev{rtt(0, 40, 40, 5), load(0, true), link(1000, false), want(1146, Suspect),
				link(1300, true), want(2000, Up)},
			path: "validating up suspect up",
			check: func(t *testing.T, d *driver) {
				if up := d.firstChange(Up, 1300); up < 1300 || up > 1400 {
					t.Errorf("up again at %d ms, want within 100 ms of the restore at 1300", up)
				}
			},
		},
		{
			// Dead at 1995. Restored at 2500 with answers at 200 ms, more than
			// 2 × the old SRTT of 40: it answers (Rejoining) but is not
			// trusted until answers are fast again. Probes sent from 3000 on
			// are answered in 40 ms, but slow answers to the probes sent
			// before keep arriving until 3200 and reset the count.
			name: "rejoin needs fast answers",
			end:  3500,
			evs: []ev{rtt(0, 40, 40, 5), load(0, true), link(1000, false), want(1995, Dead),
				probeRTT(2450, 200), link(2500, true), want(2999, Rejoining),
				probeRTT(3000, 40), want(3500, Up)},
			path: "validating up suspect dead rejoining up",
			check: func(t *testing.T, d *driver) {
				if up := d.firstChange(Up, 2000); up < 3300 || up > 3400 {
					t.Errorf("up at %d ms, want after three fast answers in a row (3300–3400)", up)
				}
			},
		},
		{
			name: "restored link carries traffic within 1 s",
			end:  4000,
			evs: []ev{rtt(0, 60, 60, 10), load(0, true), link(1000, false), want(2500, Dead),
				link(2500, true), want(3500, Up)},
			path: "validating up suspect dead rejoining up",
		},
		{
			// Outages of 20 ms under load are shorter than the floor.
			name: "flapping every 20 ms is ignored",
			end:  5000,
			evs:  flaps(1000, 5000, 20, 20),
			path: "validating up",
		},
		{
			// Metered backup: probes every second (at 1050, 2100, 3150), so
			// an idle cut is suspect 3 s after the first unanswered probe
			// and dead 6 s after it.
			name: "metered backup, idle cut",
			cfg:  Config{ProbeInterval: time.Second},
			end:  12000,
			evs: []ev{rtt(0, 50, 50, 5), want(50, Up), link(3000, false),
				want(6149, Up), want(6150, Suspect), want(9149, Suspect), want(9150, Dead)},
			path: "validating up suspect dead",
		},
		{
			name: "validating never answered",
			end:  3000,
			evs:  []ev{link(0, false), load(0, true), want(3000, Validating)},
			path: "validating",
		},
	}
	for _, tc := range tests {
		t.Run(tc.name, func(t *testing.T) {
			d := newDriver(tc.cfg)
			sortEvents(tc.evs)
			d.run(tc.evs, tc.end)
			for _, f := range d.fail {
				t.Error(f)
			}
			if tc.path != "" && d.path() != tc.path {
				t.Errorf("states %q, want %q", d.path(), tc.path)
			}
			if tc.check != nil {
				tc.check(t, d)
			}
			if t.Failed() {
				t.Logf("history: %s", d.history())
			}
		})
	}
}

// flaps returns a loaded scenario whose link is cut for off ms every on+off
// ms between from and to.
func flaps(from, to, on, off int) []ev {
	evs := []ev{rtt(0, 40, 40, 5), load(0, true)}
	for t := from; t < to; t += on + off {
		evs = append(evs, link(t, false), link(t+off, true))
	}
	return evs
}

// TestIdleDetectionWithin500ms cuts an idle path at every phase of its
// probe cycle: its failure is noticed within 0.5 s each time.
func TestIdleDetectionWithin500ms(t *testing.T) {
	for _, r := range []int{10, 30, 60, 100} {
		worst := 0
		for cut := 1000; cut < 1000+100+r; cut += 3 {
			d := newDriver(Config{})
			evs := []ev{rtt(0, r, r, r/4), link(cut, false)}
			d.run(evs, cut+1000)
			at := d.firstChange(Suspect, cut)
			if at < 0 {
				t.Fatalf("rtt %d, cut at %d: never suspect: %s", r, cut, d.history())
			}
			worst = max(worst, at-cut)
		}
		if worst > 500 {
			t.Errorf("rtt %d ms: idle cut noticed after %d ms, want ≤ 500", r, worst)
		}
		t.Logf("rtt %d ms: idle cut noticed within %d ms", r, worst)
	}
}

// TestFlappingHoldDown flaps the link 200 ms on, 200 ms off under load and
// idle: the path follows, but never improves sooner than one ProbeInterval
// after its last change, and never re-enters a state within one
// ProbeInterval.
func TestFlappingHoldDown(t *testing.T) {
	for _, loaded := range []bool{true, false} {
		for _, period := range []int{120, 200, 400, 1500} {
			evs := []ev{rtt(0, 40, 40, 5), load(0, loaded)}
			for t := 1000; t < 20000; t += 2 * period {
				evs = append(evs, link(t, false), link(t+period, true))
			}
			d := newDriver(Config{})
			d.run(evs, 21000)
			last := map[State]int{}
			for i, c := range d.changes {
				if i == 0 {
					continue
				}
				prev := d.changes[i-1]
				improving := c.to == Up || c.to == Rejoining
				if improving && c.at-prev.at < 100 {
					t.Errorf("loaded=%v period %d: %v only %d ms after %v", loaded, period, c, c.at-prev.at, prev)
				}
				if at, ok := last[c.to]; ok && c.at-at < 100 {
					t.Errorf("loaded=%v period %d: %v re-entered after %d ms", loaded, period, c, c.at-at)
				}
				last[c.to] = c.at
			}
			if d.p.State() != Up && d.p.State() != Rejoining {
				t.Errorf("loaded=%v period %d: ends %v, want up after the last restore", loaded, period, d.p.State())
			}
			t.Logf("loaded=%v period %d ms: %d changes", loaded, period, len(d.changes))
		}
	}
}

// TestRejoinCount drives OnHeard directly on a dead path whose SRTT was
// 50 ms: good answers (≤ 100 ms) in a row count, a slow one resets the
// count, answers without an RTT are neutral.
func TestRejoinCount(t *testing.T) {
	tests := []struct {
		name    string
		answers []int // RTT in ms, -1: none
		want    State
	}{
		{"three good", []int{60, 60, 60}, Up},
		{"two good", []int{60, 60}, Rejoining},
		{"exactly the factor is good", []int{100, 100, 100}, Up},
		{"slow resets", []int{60, 60, 101, 60, 60}, Rejoining},
		{"slow, then three good", []int{60, 60, 101, 60, 60, 60}, Up},
		{"slow first", []int{500, 60, 60, 60}, Up},
		{"no RTT is neutral", []int{60, -1, 60, -1, 60}, Up},
		{"only no RTT", []int{-1, -1, -1, -1}, Rejoining},
	}
	for _, tc := range tests {
		t.Run(tc.name, func(t *testing.T) {
			p, now := deadPath(t, ms(50))
			for _, r := range tc.answers {
				now = now.Add(ms(50))
				p.MarkProbed(now.Add(-ms(40)))
				p.OnHeard(now, time.Duration(r)*time.Millisecond)
				p.Tick(now, false, ms(50), ms(5))
			}
			if p.State() != tc.want {
				t.Errorf("state %v, want %v", p.State(), tc.want)
			}
		})
	}
}

// TestRejoinSlack: a sub-millisecond path (SRTT 0.1 ms, loopback or a LAN) whose
// answers come in a few ms while its hosts are busy rejoins; the factor alone (good up to
// 0.2 ms) kept it Rejoining. Beyond the slack (10 ms) an answer is slow again.
func TestRejoinSlack(t *testing.T) {
	for _, tc := range []struct {
		rtt  time.Duration
		want State
	}{
		{3 * time.Millisecond, Up},
		{10*time.Millisecond + 100*time.Microsecond, Up}, // exactly SRTT + slack
		{11 * time.Millisecond, Rejoining},
	} {
		p, now := deadPath(t, 100*time.Microsecond)
		for range 3 {
			now = now.Add(ms(50))
			p.MarkProbed(now.Add(-tc.rtt))
			p.OnHeard(now, tc.rtt)
			p.Tick(now, false, tc.rtt, tc.rtt/10)
		}
		if p.State() != tc.want {
			t.Errorf("answers in %v: state %v, want %v", tc.rtt, p.State(), tc.want)
		}
	}
}

// deadPath returns a path that was Up with SRTT srtt and is now Dead, and
// the current time, long enough after its death for the hold-down.
func deadPath(t *testing.T, srtt time.Duration) (*Path, time.Time) {
	t.Helper()
	now := t0
	p := New(Config{}, now)
	p.MarkProbed(now)
	now = now.Add(srtt)
	p.OnHeard(now, srtt)
	p.Tick(now, false, srtt, srtt/10)
	p.OnSent(now)
	now = now.Add(5 * time.Second)
	if tr := p.Tick(now, true, srtt, srtt/10); tr.To != Dead || p.State() != Dead {
		t.Fatalf("not dead: %+v", tr)
	}
	return p, now.Add(time.Second)
}

// TestRejoinRTTMemory: long after the path died its old SRTT no longer
// judges the answers, so a path whose route got slower still rejoins.
func TestRejoinRTTMemory(t *testing.T) {
	p, now := deadPath(t, ms(50))
	now = now.Add(DefaultRejoinRTTMemory)
	for range 3 {
		now = now.Add(ms(50))
		p.OnHeard(now, ms(400))
		p.Tick(now, false, ms(400), ms(40))
	}
	if p.State() != Up {
		t.Errorf("state %v, want up", p.State())
	}
}

// TestRejoinAlone: a dead path answering at 8 × its old SRTT does not rejoin while another
// path is usable (the answers are slow), and rejoins on its first answer when it is alone:
// a slow path beats no tunnel.
func TestRejoinAlone(t *testing.T) {
	for _, alone := range []bool{false, true} {
		p, now := deadPath(t, ms(50))
		p.SetAlone(alone)
		for range 3 {
			now = now.Add(ms(120))
			p.OnHeard(now, ms(400))
			p.Tick(now, false, ms(400), ms(40))
			if alone {
				break
			}
		}
		if want := map[bool]State{false: Rejoining, true: Up}[alone]; p.State() != want {
			t.Errorf("alone %v: state %v, want %v", alone, p.State(), want)
		}
	}
}

func TestTransitionRestart(t *testing.T) {
	tests := []struct {
		tr   Transition
		want bool
	}{
		{Transition{Validating, Up, true}, true},
		{Transition{Rejoining, Up, true}, true},
		{Transition{Dead, Up, true}, true},
		{Transition{Suspect, Up, true}, false},
		{Transition{Up, Up, false}, false},
		{Transition{Up, Suspect, true}, false},
	}
	for _, tc := range tests {
		if got := tc.tr.Restart(); got != tc.want {
			t.Errorf("%+v: Restart %v, want %v", tc.tr, got, tc.want)
		}
	}
}

func TestConfigDefaults(t *testing.T) {
	got := New(Config{MissedProbes: -1, RejoinRTTFactor: -2}, t0).Config()
	want := Config{ProbeInterval: 100 * time.Millisecond, SuspectProbeInterval: 50 * time.Millisecond,
		SuspectFloor: 150 * time.Millisecond, MissedProbes: 3, DeadAfter: time.Second, RejoinProbes: 3,
		RejoinRTTFactor: 2, RejoinRTTSlack: 10 * time.Millisecond, RejoinRTTMemory: 10 * time.Second}
	if got != want {
		t.Errorf("defaults %+v, want %+v", got, want)
	}
	backup := New(Config{ProbeInterval: 2 * time.Second}, t0).Config()
	if backup.SuspectProbeInterval != time.Second {
		t.Errorf("backup suspect probe interval %v, want 1s", backup.SuspectProbeInterval)
	}
}

// TestProbeDue checks the probe schedule by state.
func TestProbeDue(t *testing.T) {
	p := New(Config{}, t0)
	if !p.ProbeDue(t0) {
		t.Fatal("a new path should probe at once")
	}
	p.MarkProbed(t0)
	if p.ProbeDue(t0.Add(ms(99))) || !p.ProbeDue(t0.Add(ms(100))) {
		t.Error("validating: want a probe every 100 ms")
	}
	p.OnHeard(t0.Add(ms(20)), ms(20))
	// Up and busy: no probe while feedback keeps coming.
	for i := 20; i < 1000; i += 5 {
		now := t0.Add(ms(i))
		p.OnSent(now)
		p.OnHeard(now, ms(20))
		if p.ProbeDue(now) {
			t.Fatalf("busy up path: probe due at %d ms", i)
		}
	}
	// Idle: due 100 ms after the last answer.
	if p.ProbeDue(t0.Add(ms(1094))) || !p.ProbeDue(t0.Add(ms(1095))) {
		t.Error("idle up path: want a probe 100 ms after the last answer")
	}
	p.OnLocalDown(t0.Add(ms(1100)), "ENETUNREACH")
	if p.ProbeDue(t0.Add(ms(5000))) || !p.NextEvent().IsZero() {
		t.Error("down path: want no probes and no timer")
	}
	if p.Reason() != "ENETUNREACH" {
		t.Errorf("reason %q", p.Reason())
	}
}

// TestNextEvent checks that a caller that sleeps until NextEvent, and
// otherwise only reacts to sends and answers, sees the same transitions as
// one that ticks every millisecond.
func TestNextEvent(t *testing.T) {
	for _, tc := range []struct {
		name     string
		inflight bool
	}{{"loaded", true}, {"idle", false}} {
		t.Run(tc.name, func(t *testing.T) {
			every := New(Config{}, t0)
			timer := New(Config{}, t0)
			var seqEvery, seqTimer []string
			next := t0
			for i := 0; i <= 4000; i++ {
				now := t0.Add(ms(i))
				linkUp := i < 1000 || i >= 2500
				for _, p := range []*Path{every, timer} {
					feedback := tc.inflight && linkUp && i%5 == 0
					if p == timer && now.Before(next) && !feedback {
						continue
					}
					if tc.inflight && p.Usable() {
						p.OnSent(now)
					}
					if feedback {
						p.OnHeard(now, ms(30))
					}
					if p.ProbeDue(now) {
						p.MarkProbed(now)
						if linkUp { // answered at once
							p.OnHeard(now, ms(30))
						}
					}
					tr := p.Tick(now, tc.inflight, ms(30), ms(5))
					if tr.Changed {
						s := tr.From.String() + "→" + tr.To.String()
						if p == every {
							seqEvery = append(seqEvery, s)
						} else {
							seqTimer = append(seqTimer, s)
						}
					}
					if p == timer {
						next = p.NextDeadline()
						if !next.After(now) {
							next = now.Add(time.Millisecond)
						}
					}
				}
			}
			a, b := strings.Join(seqEvery, " "), strings.Join(seqTimer, " ")
			if a != b {
				t.Errorf("ticked every ms: %s\nticked at NextEvent: %s", a, b)
			}
			if !strings.Contains(a, "suspect→dead") {
				t.Errorf("scenario did not reach dead: %s", a)
			}
		})
	}
}

// TestNextDeadline: an idle path's caller that sleeps until NextDeadline (and ticks after
// every answer) sees the same transitions as one that ticks every millisecond, with an
// RTTVAR that jumps and falls (so the held RTTVAR decays), through a cut; and wakes less
// often than at NextEvent. (A loaded path's caller ticks after every send, so it ticks
// every millisecond in this model.)
func TestNextDeadline(t *testing.T) {
	for _, tc := range []struct {
		name     string
		inflight bool
	}{{"idle", false}} {
		t.Run(tc.name, func(t *testing.T) {
			every := New(Config{}, t0)
			timer := New(Config{}, t0)
			var seqEvery, seqTimer []string
			next := t0
			wakes := 0
			rttvar := ms(2)
			for i := 0; i <= 4000; i++ {
				now := t0.Add(ms(i))
				linkUp := i < 1000 || i >= 2500
				if linkUp && i%5 == 0 { // the estimate moves only with feedback, as pathstat's
					rttvar = ms(2)
					if i%300 < 20 {
						rttvar = ms(25)
					}
				}
				for _, p := range []*Path{every, timer} {
					feedback := tc.inflight && linkUp && i%5 == 0
					if p == timer && now.Before(next) && !feedback {
						continue
					}
					if p == timer {
						wakes++
					}
					if tc.inflight && p.Usable() {
						p.OnSent(now)
					}
					if feedback {
						p.OnHeard(now, ms(30))
					}
					if p.ProbeDue(now) {
						p.MarkProbed(now)
						if linkUp { // answered at once
							p.OnHeard(now, ms(30))
						}
					}
					tr := p.Tick(now, tc.inflight, ms(30), rttvar)
					if tr.Changed {
						s := fmt.Sprintf("%d:%v→%v", i, tr.From, tr.To)
						if p == every {
							seqEvery = append(seqEvery, s)
						} else {
							seqTimer = append(seqTimer, s)
						}
					}
					if p == timer {
						next = p.NextDeadline()
						if !next.After(now) {
							next = now.Add(time.Millisecond)
						}
					}
				}
			}
			a, b := strings.Join(seqEvery, " "), strings.Join(seqTimer, " ")
			if a != b {
				t.Errorf("ticked every ms: %s\nticked at NextDeadline: %s", a, b)
			}
			if !strings.Contains(a, "suspect→dead") {
				t.Errorf("scenario did not reach dead: %s", a)
			}
			if wakes > 60 { // NextEvent: 97, for its RTTVAR decays
				t.Errorf("%d wakeups in 4 s, want at most 60 (one per probe, and the cut's)", wakes)
			}
		})
	}
}

// TestIdleProbeInterval: an idle Up path probes at the interval SetIdleProbeInterval gives,
// tolerates that many missed probes before it is suspect, and probes at ProbeInterval again
// once it is reset.
func TestIdleProbeInterval(t *testing.T) {
	t0 := time.Unix(1000, 0)
	p := New(Config{}, t0)
	p.MarkProbed(t0)
	p.OnHeard(t0.Add(10*time.Millisecond), 10*time.Millisecond)
	p.Tick(t0.Add(150*time.Millisecond), false, 10*time.Millisecond, 5*time.Millisecond)
	if p.State() != Up {
		t.Fatalf("state %v after an answer and the hold-down, want up", p.State())
	}
	p.SetIdleProbeInterval(5 * time.Second)
	heard := t0.Add(10 * time.Millisecond)
	if p.ProbeDue(heard.Add(4 * time.Second)) {
		t.Error("probe due 4 s after the last answer with a 5 s idle interval")
	}
	at := heard.Add(5 * time.Second)
	if !p.ProbeDue(at) {
		t.Fatal("no probe due 5 s after the last answer")
	}
	p.MarkProbed(at)
	// Unanswered: still up after 2 idle intervals, suspect after 3.
	if tr := p.Tick(at.Add(10*time.Second), false, 10*time.Millisecond, 5*time.Millisecond); tr.Changed {
		t.Errorf("left up after 10 s of a 15 s missed-probe threshold: %v", tr)
	}
	if p.Tick(at.Add(15*time.Second), false, 10*time.Millisecond, 5*time.Millisecond); p.State() != Suspect {
		t.Errorf("state %v after 3 missed idle probes, want suspect", p.State())
	}
	q := New(Config{}, t0)
	q.SetIdleProbeInterval(5 * time.Second)
	q.SetIdleProbeInterval(0)
	q.MarkProbed(t0)
	q.OnHeard(t0.Add(time.Millisecond), time.Millisecond)
	q.Tick(t0.Add(150*time.Millisecond), false, time.Millisecond, time.Millisecond)
	if !q.ProbeDue(t0.Add(250 * time.Millisecond)) {
		t.Error("after SetIdleProbeInterval(0) an idle path does not probe every ProbeInterval")
	}
}
