package liveness

import (
	"fmt"
	"math/rand/v2"
	"testing"
	"time"
)

// profile is a saturated path of the simulation: a base RTT, a standing
// queue that wanders between 0 and maxQueue (bufferbloat), per-datagram
// jitter, feedback loss, and now and then a delay spike that holds back
// the feedback (and, the path being FIFO, everything behind it) so that the
// sender hears nothing for up to 3 × SRTT.
type profile struct {
	name     string
	base     time.Duration // RTT without queue
	maxQueue time.Duration
	jitter   time.Duration // uniform 0..jitter per direction
	loss     float64       // feedback loss probability
	spike    float64       // probability per feedback of a spike
}

var profiles = []profile{
	{"cable 20 ms", 20 * time.Millisecond, 30 * time.Millisecond, 2 * time.Millisecond, 0.01, 0.002},
	{"DSL 60 ms", 60 * time.Millisecond, 80 * time.Millisecond, 5 * time.Millisecond, 0.01, 0.002},
	{"LTE bufferbloat", 50 * time.Millisecond, 900 * time.Millisecond, 20 * time.Millisecond, 0.03, 0.002},
}

// simResult summarizes one simulated run.
type simResult struct {
	changes    []string
	feedbacks  int
	spikes     int
	maxGapSRTT float64 // longest silence between feedbacks over the SRTT of the moment
	maxRatio   float64 // longest silence over the suspect threshold of the moment
	plain      int     // silences a plain max(SRTT + 4·RTTVAR, floor) would have suspected
}

// saturated simulates dur of a saturated path under pr: data sent every
// millisecond, FEEDBACK every 5 ms from the receiver, SRTT and RTTVAR
// computed per sample as pathstat does (RFC 6298), Tick every millisecond.
func saturated(pr profile, seed uint64, dur time.Duration) simResult {
	rng := rand.New(rand.NewPCG(seed, 1))
	var res simResult
	p := New(Config{}, t0)
	// Validated by a first probe.
	p.MarkProbed(t0)
	p.OnHeard(t0.Add(pr.base), pr.base)
	srtt, rttvar := pr.base, pr.base/2
	queue := time.Duration(0)
	start := pr.base.Milliseconds() + 1
	nextFB := time.Duration(start) * time.Millisecond // receiver's next feedback
	var lastArrival time.Duration                     // FIFO: no overtaking
	var pending []answer                              // feedback on its way back
	var spikeLeft time.Duration                       // extra delay still to apply
	inPlain := false
	lostRun := 0 // feedbacks lost in a row
	prevHeard := pr.base
	jit := func() time.Duration { return time.Duration(rng.Int64N(int64(pr.jitter) + 1)) }
	for t := time.Duration(start) * time.Millisecond; t < dur; t += time.Millisecond {
		now := t0.Add(t)
		// The standing queue wanders: a random walk of at most ±1 ms a ms
		// (a queue's delay cannot grow faster than time passes, nor drain
		// faster than the link sends).
		step := min(pr.maxQueue/50, time.Millisecond)
		queue += time.Duration(rng.Int64N(int64(2*step)+1)) - step
		queue = min(max(queue, 0), pr.maxQueue)
		// The receiver sends feedback every 5 ms about data that took
		// half the RTT to reach it.
		for nextFB <= t {
			owd := (pr.base+queue)/2 + jit()
			if spikeLeft == 0 && rng.Float64() < pr.spike {
				// A gap of up to 3 × SRTT: the extra delay, plus the
				// feedback spacing (longer by the feedbacks lost just
				// before), the jitter of both directions and what the
				// queue can grow in 5 ms. 3 × the lower of SRTT and the
				// RTT of the moment, because SRTT still moves with
				// the samples of earlier feedback while the spike is on its
				// way.
				bound := 3*min(srtt, pr.base+queue) - 10*time.Millisecond - 2*pr.jitter - time.Duration(lostRun)*5*time.Millisecond
				spikeLeft = time.Duration(rng.Int64N(int64(max(bound, 1))))
				res.spikes++
			}
			arrive := max(nextFB+owd+spikeLeft, lastArrival)
			lastArrival = arrive
			lostRun++
			if spikeLeft > 0 || rng.Float64() >= pr.loss {
				lostRun = 0
				sample := arrive - nextFB + (pr.base+queue)/2 + jit()
				pending = append(pending, answer{arrive, sample})
			}
			spikeLeft = 0
			nextFB += 5 * time.Millisecond
		}
		n := 0
		for _, a := range pending {
			if a.at > t {
				pending[n] = a
				n++
				continue
			}
			res.feedbacks++
			gap := a.at - prevHeard
			prevHeard = a.at
			res.maxGapSRTT = max(res.maxGapSRTT, float64(gap)/float64(srtt))
			if s, ok := p.silenceStart(); ok {
				res.maxRatio = max(res.maxRatio, float64(t0.Add(a.at).Sub(s))/float64(p.loadThreshold()))
			}
			// RFC 6298, per sample, as pathstat does.
			diff := srtt - a.rtt
			if diff < 0 {
				diff = -diff
			}
			rttvar = (3*rttvar + diff) / 4
			srtt = (7*srtt + a.rtt) / 8
			if tr := p.OnHeard(t0.Add(a.at), a.rtt); tr.Changed {
				res.changes = append(res.changes, fmt.Sprintf("%v %v→%v", a.at, tr.From, tr.To))
			}
		}
		pending = pending[:n]
		if p.Usable() {
			p.OnSent(now)
		}
		// Compare with the plain formula, per-sample RTTVAR, no hold.
		if s, ok := p.silenceStart(); ok && now.Sub(s) >= max(srtt+4*rttvar, DefaultSuspectFloor) {
			if !inPlain {
				res.plain++
			}
			inPlain = true
		} else {
			inPlain = false
		}
		if tr := p.Tick(now, true, srtt, rttvar); tr.Changed {
			res.changes = append(res.changes, fmt.Sprintf("%v %v→%v", t, tr.From, tr.To))
		}
	}
	return res
}

// TestSaturatedNoSpuriousFailover runs ten simulated minutes of each
// saturated profile: no transition out of Up.
func TestSaturatedNoSpuriousFailover(t *testing.T) {
	dur := 10 * time.Minute
	if testing.Short() {
		dur = time.Minute
	}
	for _, pr := range profiles {
		t.Run(pr.name, func(t *testing.T) {
			res := saturated(pr, 1, dur)
			if len(res.changes) > 0 {
				t.Errorf("%d spurious transitions, first: %v", len(res.changes), res.changes[:min(5, len(res.changes))])
			}
			if res.feedbacks < int(dur/(6*time.Millisecond)) {
				t.Errorf("only %d feedbacks", res.feedbacks)
			}
			if res.maxGapSRTT < 2.5 {
				t.Errorf("longest feedback gap only %.2f × SRTT: the jitter model is too tame", res.maxGapSRTT)
			}
			t.Logf("%v: %d feedbacks, %d spikes, longest gap %.2f × SRTT, longest silence %.2f × threshold; "+
				"the plain max(SRTT + 4·RTTVAR, floor) would have suspected %d times",
				dur, res.feedbacks, res.spikes, res.maxGapSRTT, res.maxRatio, res.plain)
		})
	}
}

// TestDeterminism: the same inputs give the same transitions, at the same
// times.
func TestDeterminism(t *testing.T) {
	for _, pr := range profiles {
		a := saturated(pr, 7, 20*time.Second)
		b := saturated(pr, 7, 20*time.Second)
		if fmt.Sprint(a) != fmt.Sprint(b) {
			t.Errorf("%s: two runs differ:\n%v\n%v", pr.name, a, b)
		}
	}
	run := func() string {
		d := newDriver(Config{})
		evs := flaps(1000, 8000, 170, 230)
		d.run(evs, 9000)
		return d.history()
	}
	if a, b := run(), run(); a != b || a == "" {
		t.Errorf("flapping scenario differs between runs:\n%s\n%s", a, b)
	}
}
