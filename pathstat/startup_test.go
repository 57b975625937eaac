package pathstat

import (
	"testing"
	"time"
)

// ramp drives l with a sender that keeps rate·(MinRTT + allowance) in flight, the
// allowance 10 ms, or MinRTT while the path is in startup when startup is set (the rule of
// sched.Window), and returns when the estimate first reached frac of the link's rate (or
// max if it never did) and whether the path left startup by then.
func ramp(l *simLink, s *Stats, startup bool, frac float64, limit time.Duration) (time.Duration, bool) {
	const tick, size = 50 * time.Microsecond, 1400
	for ; l.now <= limit; l.now += tick {
		if s.DeliveryRate() >= frac*l.rate {
			return l.now, !s.Startup()
		}
		allowance := 10 * time.Millisecond
		if startup && s.Startup() {
			allowance = max(allowance, s.MinRTT())
		}
		if float64(s.Inflight()) < s.DeliveryRate()*(s.MinRTT()+allowance).Seconds() {
			s.OnSent(l.start.Add(l.now), l.pn, size)
			l.send(l.now, l.pn, size)
			l.pn++
		} else {
			s.OnLimited() // it always has more to send
		}
		l.step(l.now, s)
	}
	return limit, !s.Startup()
}

// TestStartupRampsLongPath: a 20 Mbit/s path with 60 ms each way, starting from the
// initial 10 Mbit/s estimate. With a 10 ms allowance the window lets the estimate grow by
// 8 % per round trip; in startup it may double.
func TestStartupRampsLongPath(t *testing.T) {
	newLink := func() *simLink {
		return &simLink{rate: 2.5e6, owd: 60 * time.Millisecond, feedbackEvery: 5 * time.Millisecond, queueLimit: 120 * time.Millisecond, start: simStart}
	}
	const limit = 10 * time.Second
	slow, _ := ramp(newLink(), New(simStart), false, 0.9, limit)
	s := New(simStart)
	fast, _ := ramp(newLink(), s, true, 0.9, limit)
	t.Logf("90 %% of the link's rate after %v with startup, %v without", fast, slow)
	if fast > time.Second {
		t.Errorf("with startup the estimate reached 90 %% after %v, want ≤ 1 s", fast)
	}
	if 2*fast > slow {
		t.Errorf("startup %v is not twice as fast as without (%v)", fast, slow)
	}
	// Once the link is full, the estimate stops growing and startup ends.
	l := newLink()
	s = New(simStart)
	if _, full := ramp(l, s, true, 2, 3*time.Second); !full {
		t.Errorf("still in startup after 3 s on a full link (estimate %.2f MB/s)", s.DeliveryRate()/1e6)
	}
	// The queue building in the link ends startup (the delay rule) before the buffer, one
	// BDP, overflows.
	l = newLink()
	s = New(simStart)
	for l.now < 3*time.Second && s.Startup() {
		ramp(l, s, true, 2, l.now+time.Millisecond)
	}
	t.Logf("startup ended at %v, %d datagrams lost", l.now, s.Lost())
	if s.Startup() || s.Lost() > 0 {
		t.Errorf("startup still %v at %v, %d datagrams lost; want it over before any loss", s.Startup(), l.now, s.Lost())
	}
}

// TestOfferedLoadStaysInStartup: a path offered a steady 2 MB/s (EAT giving a slower path
// what its estimate promises), never held back by its window, delivers just that; flat
// as its estimate is, it says nothing about the link, and startup goes on.
func TestOfferedLoadStaysInStartup(t *testing.T) {
	l := &simLink{rate: 6.25e6, owd: 30 * time.Millisecond, feedbackEvery: 5 * time.Millisecond, start: simStart}
	s := New(simStart)
	l.run(s, 1400, 700*time.Microsecond, 3*time.Second, 100*time.Millisecond)
	if !s.Startup() {
		t.Errorf("an offered load the path kept up with ended startup (estimate %.2f MB/s)", s.DeliveryRate()/1e6)
	}
}

// TestSparseTrafficStaysInStartup: probes and keepalives measure nothing about the path, so
// they do not end startup; the first real transfer still ramps fast.
func TestSparseTrafficStaysInStartup(t *testing.T) {
	l := &simLink{rate: 2.5e6, owd: 20 * time.Millisecond, feedbackEvery: 5 * time.Millisecond, onArrival: true, start: simStart}
	s := New(simStart)
	l.run(s, 200, 50*time.Millisecond, 10*time.Second, 200*time.Millisecond)
	if !s.Startup() {
		t.Errorf("sparse traffic ended startup (estimate %.2f MB/s)", s.DeliveryRate()/1e6)
	}
}

// TestStartupOnJitteryLink: a 52 Mbit/s link of 18 ms ± 9 ms each way (a packet's extra
// delay uniform in [0, 9 ms), FIFO kept, so a busy round's packets wait for their
// predecessors' extra delay). Its smallest RTT under load lies ≈ 8 ms above the minimum seen
// while it was sparse; without the jitter term in the delay rule that ended startup at about
// a quarter of the link's rate, and the estimate then needed seconds to climb.
func TestStartupOnJitteryLink(t *testing.T) {
	for _, seed := range []uint32{3, 17, 2024, 5, 77, 31337} {
		x := seed
		jitter := func(uint64) time.Duration {
			x ^= x << 13
			x ^= x >> 17
			x ^= x << 5
			return time.Duration(x%9000) * time.Microsecond
		}
		l := &simLink{rate: 6.5e6, owd: 18 * time.Millisecond, feedbackEvery: 5 * time.Millisecond, queueLimit: 200 * time.Millisecond, jitter: jitter, start: simStart}
		s := New(simStart)
		at, _ := ramp(l, s, true, 0.9, 5*time.Second)
		t.Logf("seed %d: 90 %% of the link's rate after %v", seed, at)
		if at > 500*time.Millisecond {
			t.Errorf("seed %d: the estimate reached 90 %% of the link's rate after %v, want ≤ 0.5 s", seed, at)
		}
	}
}

// TestBurstyOverOfferEndsStartup: a 20 Mbit/s path of 60 ms each way with a 120 ms buffer
// is handed bursts (a scheduler giving it a share now and then): on for a part of each
// period, keeping 1.6 × its estimated bandwidth-delay product in flight, paced at twice the
// estimate as in startup; then nothing. Its window never holds data back, and the queue
// drains between bursts, so every round has samples near the minimum RTT and the delay
// rule does not see the queue. When the bursts fill the link, the samples of the packets
// sent beyond the estimate's BDP show a queue, the estimate stays flat, and startup ends
// (the over-offer rule) before a burst sized from a startup window (twice the BDP)
// overflows the buffer: on the two-link sweep combination "eq-far-60ms" such a path stayed
// in startup for 3 s, until 23 datagrams were lost. When the bursts are too short to fill
// it, the estimate stays at what they offer, no queue forms, and startup goes on: the link
// could carry more. A round over-offered that shows a queue counts even if all its rate
// samples were app-limited (a burst sent in less than half a round trip is): required to
// have one that was not, the 150-of-300 ms case ended startup after 2.9 s instead of 1.5 s,
// and in the sweep's combination a path stayed in startup for 3 s.
func TestBurstyOverOfferEndsStartup(t *testing.T) {
	const tick, size = 50 * time.Microsecond, 1400
	for _, c := range []struct {
		period, on time.Duration
		wantFull   bool
	}{
		{150 * time.Millisecond, 100 * time.Millisecond, true},
		{100 * time.Millisecond, 60 * time.Millisecond, true},
		{300 * time.Millisecond, 150 * time.Millisecond, true},
		{200 * time.Millisecond, 40 * time.Millisecond, false},
		{200 * time.Millisecond, 100 * time.Millisecond, false},
	} {
		l := &simLink{rate: 2.5e6, owd: 60 * time.Millisecond, feedbackEvery: 5 * time.Millisecond, queueLimit: 120 * time.Millisecond, start: simStart}
		s := New(simStart)
		paced := time.Duration(0)
		for ; l.now < 4*time.Second && s.Startup(); l.now += tick {
			if l.now%c.period < c.on && l.now >= paced && float64(s.Inflight()) < 1.6*s.DeliveryRate()*s.MinRTT().Seconds() {
				paced = max(paced, l.now-tick) + time.Duration(size/(2*s.DeliveryRate())*float64(time.Second))
				s.OnSent(l.start.Add(l.now), l.pn, size)
				l.send(l.now, l.pn, size)
				l.pn++
			}
			l.step(l.now, s)
		}
		t.Logf("%v on of %v: startup %v at %v, estimate %.2f MB/s, %d lost", c.on, c.period, s.Startup(), l.now, s.DeliveryRate()/1e6, s.Lost())
		if s.Lost() > 0 {
			t.Errorf("%v on of %v: %d datagrams lost in startup", c.on, c.period, s.Lost())
		}
		if full := !s.Startup(); full != c.wantFull {
			t.Errorf("%v on of %v: startup over %v after %v at %.2f MB/s of 2.5, want %v", c.on, c.period, full, l.now, s.DeliveryRate()/1e6, c.wantFull)
		}
		if c.wantFull && l.now > 2*time.Second {
			t.Errorf("%v on of %v: startup ended after %v, want ≤ 2 s", c.on, c.period, l.now)
		}
		if c.wantFull && s.DeliveryRate() < 0.9*l.rate {
			t.Errorf("%v on of %v: startup ended at %.2f MB/s of 2.5", c.on, c.period, s.DeliveryRate()/1e6)
		}
	}
}

// TestDelayRuleEndsStartupMidRound: as RFC 9406 §4.2 checks it, the delay rule fires at the
// sample that gives the round its delayMinSamples-th RTT above the threshold, not at the
// round's end: waiting for the end let a window of twice the BDP go on filling the link's
// buffer for another round trip. Fewer samples, or one of them below the threshold, do not.
func TestDelayRuleEndsStartupMidRound(t *testing.T) {
	const minRTT = 120 * time.Millisecond
	thresh := delayThresh(minRTT, 0) // 135 ms
	var f fullPipe
	for i := 0; i < delayMinSamples-1; i++ {
		f.onRTT(thresh+time.Millisecond, false, minRTT, 0)
	}
	if f.full {
		t.Fatalf("startup ended after %d samples, want %d", delayMinSamples-1, delayMinSamples)
	}
	f.onRTT(thresh+time.Millisecond, false, minRTT, 0)
	if !f.full {
		t.Fatalf("%d samples above %v in the round did not end startup", delayMinSamples, thresh)
	}

	var g fullPipe
	g.onRTT(thresh-time.Millisecond, false, minRTT, 0)
	for i := 0; i < 2*delayMinSamples; i++ {
		g.onRTT(thresh+time.Millisecond, false, minRTT, 0)
	}
	if g.full {
		t.Errorf("startup ended although the round's smallest RTT (%v) is below the threshold", thresh-time.Millisecond)
	}
	// The next round starts over: its samples above the threshold end it.
	g.endRound(2.5e6, false, minRTT, 0)
	for i := 0; i < delayMinSamples; i++ {
		g.onRTT(thresh+time.Millisecond, false, minRTT, 0)
	}
	if !g.full {
		t.Errorf("a new round of %d samples above the threshold did not end startup", delayMinSamples)
	}
}
