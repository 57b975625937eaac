package pathstat

import (
	"testing"
	"time"
)

// windowSender drives l for d with a sender that keeps min(window, max(ceiling, bdp)) bytes
// in flight (the rule of sched.Window), sending at most one datagram per 50 µs tick. It
// returns the datagrams sent and lost in the last half of the run.
func windowSender(l *simLink, s *Stats, window, bdp int, d time.Duration) (sent, lost uint64) {
	const tick, size = 50 * time.Microsecond, 1400
	half := l.now + d/2
	var sentAtHalf, lostAtHalf uint64
	for end := l.now + d; l.now <= end; l.now += tick {
		if l.now >= half && sentAtHalf == 0 {
			sentAtHalf, lostAtHalf = s.Sent(), s.Lost()
		}
		w := window
		if c := s.InflightCeiling(); c > 0 {
			w = min(w, max(c, bdp+int(l.rate*0.005)))
		}
		if s.Inflight() < w {
			s.OnSent(l.start.Add(l.now), l.pn, size)
			l.send(l.now, l.pn, size)
			l.pn++
		}
		l.step(l.now, s)
	}
	return s.Sent() - sentAtHalf, s.Lost() - lostAtHalf
}

// TestCeilingStopsOverflowOfShallowBuffer: a 50 Mbit/s, 20 ms path whose bottleneck
// buffer holds 5 ms, under a window of BDP + 10 ms. Without the ceiling the link dropped
// about a tenth of the datagrams; with it, the second half of the run loses no more than
// random loss could (ceilingBaseLoss: the ceiling cannot tell an overrun of 1–2 % of a
// round from a lossy link's random loss, and holds there) and the link stays busy.
func TestCeilingStopsOverflowOfShallowBuffer(t *testing.T) {
	const rate = 6.25e6
	l := &simLink{rate: rate, owd: 10 * time.Millisecond, feedbackEvery: 5 * time.Millisecond, queueLimit: 5 * time.Millisecond, start: simStart}
	s := New(simStart)
	bdp := int(rate * 0.020)
	window := int(rate * 0.030)
	sent, lost := windowSender(l, s, window, bdp, 4*time.Second)
	t.Logf("second half: %d of %d lost, ceiling %d (BDP %d, BDP + buffer %d)", lost, sent, s.InflightCeiling(), bdp, bdp+int(rate*0.005))
	if s.InflightCeiling() == 0 {
		t.Fatalf("no ceiling after %d losses", s.Lost())
	}
	if frac := float64(lost) / float64(sent); frac > ceilingBaseLoss {
		t.Errorf("second half lost %d of %d datagrams (%.1f %%), want ≤ %.0f %%", lost, sent, 100*frac, 100*ceilingBaseLoss)
	}
	if got := float64(sent*1400) / 2; got < 0.9*rate {
		t.Errorf("second half sent %.2f MB/s, want ≥ 0.9 × the link's %.2f", got/1e6, rate/1e6)
	}
	if c := s.InflightCeiling(); c < bdp || c > window {
		t.Errorf("ceiling %d, want between the BDP %d and the window %d", c, bdp, window)
	}
}

// TestRandomLossSetsNoCeiling: 1.5 % random loss on a path with a deep buffer is not taken
// for an overrun buffer.
func TestRandomLossSetsNoCeiling(t *testing.T) {
	const rate = 2.5e6
	x := uint32(12345)
	drop := func(uint64) bool { // xorshift: deterministic, 1.5 %
		x ^= x << 13
		x ^= x >> 17
		x ^= x << 5
		return x%1000 < 15
	}
	l := &simLink{rate: rate, owd: 30 * time.Millisecond, feedbackEvery: 5 * time.Millisecond, queueLimit: 60 * time.Millisecond, drop: drop, start: simStart}
	s := New(simStart)
	windowSender(l, s, int(rate*0.070), int(rate*0.060), 6*time.Second)
	if s.Lost() < 100 {
		t.Fatalf("only %d datagrams lost; the test needs random loss", s.Lost())
	}
	if c := s.InflightCeiling(); c != 0 {
		t.Errorf("ceiling %d after %d random losses of %d datagrams, want none", c, s.Lost(), s.Sent())
	}
}

// TestRandomLossInSmallRoundsSetsNoCeiling: 2 % random loss on a path whose rounds resolve
// only 20–40 datagrams (10 Mbit/s, 15 ms each way), the start of any path. Judged round by
// round (3 losses and 5 %), a round set the ceiling in the first second of such a path;
// the accumulated evidence (CUSUM) does not in 20 s.
func TestRandomLossInSmallRoundsSetsNoCeiling(t *testing.T) {
	const rate = 1.25e6
	for _, seed := range []uint32{1, 7, 12345, 99991} {
		x := seed
		drop := func(uint64) bool { // xorshift: deterministic, 2 %
			x ^= x << 13
			x ^= x >> 17
			x ^= x << 5
			return x%1000 < 20
		}
		l := &simLink{rate: rate, owd: 15 * time.Millisecond, feedbackEvery: 5 * time.Millisecond, queueLimit: 200 * time.Millisecond, drop: drop, start: simStart}
		s := New(simStart)
		windowSender(l, s, int(rate*0.030), int(rate*0.030), 20*time.Second)
		if s.Lost() < 200 {
			t.Fatalf("seed %d: only %d datagrams lost; the test needs random loss", seed, s.Lost())
		}
		if c := s.InflightCeiling(); c != 0 {
			t.Errorf("seed %d: ceiling %d after %d random losses of %d datagrams, want none", seed, c, s.Lost(), s.Sent())
		}
	}
}

// TestCeilingEvidence: the CUSUM passes its bound on a round that loses a fifth of its
// datagrams at once (an overrun), not on rounds at the random-loss rate however many.
func TestCeilingEvidence(t *testing.T) {
	var c lossCeiling
	for range 1000 {
		c.onSent(50_000)
		c.onResolved(1, 50) // 2 %
		c.endRound(50_000)
	}
	if c.bytes != 0 {
		t.Fatalf("ceiling %.0f after 1000 rounds at 2 %% loss", c.bytes)
	}
	c.onSent(80_000)
	c.onResolved(10, 50)
	c.endRound(50_000)
	if want := ceilingBeta * 80_000; c.bytes != want {
		t.Errorf("ceiling %.0f after a round that lost 20 %%, want %.0f", c.bytes, want)
	}
	if c.evidence != 0 {
		t.Errorf("evidence %.2f after the cut, want 0", c.evidence)
	}
}

// TestCeilingGrowsBack: once the loss stops, the ceiling rises by about 1/64 per round
// trip, so a link whose buffer grew gets its full window back within a few seconds.
func TestCeilingGrowsBack(t *testing.T) {
	var c lossCeiling
	c.onSent(100_000)
	c.onResolved(20, 70)
	c.endRound(50_000)
	if got := c.bytes; got != ceilingBeta*100_000 {
		t.Fatalf("ceiling %.0f after a lossy round, want %.0f", got, ceilingBeta*100_000)
	}
	c.onResolved(1, 70) // one loss: random, not the buffer
	c.endRound(50_000)
	if c.bytes <= ceilingBeta*100_000 {
		t.Fatalf("ceiling %.0f did not grow after a round with one loss", c.bytes)
	}
	before := c.bytes
	c.onResolved(2, 70) // a few losses, more than 2 %: trimmed by 2 datagrams per loss beyond 2 %
	c.endRound(50_000)
	if want := before - ceilingTrim*(2-ceilingBaseLoss*70)*ceilingMinGrowth; c.bytes != want {
		t.Fatalf("ceiling %.0f after a round with 2 losses, want %.0f", c.bytes, want)
	}
	for range 100 {
		c.onResolved(0, 70)
		c.endRound(50_000)
	}
	if c.bytes < 300_000 {
		t.Errorf("ceiling %.0f after 100 clean rounds, want ≥ 300 000 (1/64 per round)", c.bytes)
	}
	c.onSent(60_000)
	c.onResolved(20, 70)
	c.endRound(0)
	if want := ceilingBeta * 60_000; c.bytes != want {
		t.Errorf("ceiling %.0f after another lossy round, want %.0f", c.bytes, want)
	}
}

// TestRandomLossKeepsCeiling: on a link with 1.5 % random loss a path with 340 kB in flight
// loses about 4 of the 270 datagrams of every round. Once a ceiling is set, those rounds
// are within random loss: the ceiling grows back rather than being trimmed to nothing,
// which would pin the window at the bandwidth-delay product for good.
func TestRandomLossKeepsCeiling(t *testing.T) {
	var c lossCeiling
	c.onSent(400_000)
	c.onResolved(60, 270) // an overrun
	c.endRound(340_000)
	set := c.bytes
	if set == 0 {
		t.Fatal("no ceiling after a round that lost 22 %")
	}
	for range 50 {
		c.onSent(340_000)
		c.onResolved(4, 270)
		c.endRound(340_000)
	}
	if c.bytes < set {
		t.Errorf("ceiling %.0f after 50 rounds of 1.5 %% random loss, down from %.0f", c.bytes, set)
	}
}
