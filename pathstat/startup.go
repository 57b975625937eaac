package pathstat

import "time"

// Startup, after BBR's (draft-cardwell-iccrg-bbr-congestion-control, "Startup" and
// "full pipe"): a fresh path's estimate starts at the initial rate and, held to a window of
// rate·(RTT + a 7–10 ms allowance), grows by only 1 + allowance/RTT per round trip: on a
// 120 ms path, 8 % per round, so a 20 Mbit/s link took 3–4 s to reach its rate while the
// inner TCP's slow start overran the local queue (docs/DECISIONS.md). Until the pipe is
// full, the scheduler gives the path a round trip of queue allowance and a pacing gain of 2,
// so the estimate can double per round. The pipe is full once three packet-timed rounds
// that measured the path raised the estimate by less than a quarter, or once a round lost
// enough datagrams to set the loss ceiling. It stays full: later growth is the ordinary
// probing of PacingGain. The pipe is also full once a round's smallest RTT sample lies
// clamp(MinRTT/8, 4 ms, 16 ms) above the path's minimum (HyStart++'s delay increase,
// RFC 9406 §4.2, checked at every sample once the round has eight, not at its end): a
// queue is building in the link, and a window of twice the BDP would fill a buffer of one
// BDP (two 60 ms links with 120 ms buffers lost 5 % of a round's datagrams before the
// flat estimate ended startup three round trips later). On a link whose
// delay varies from packet to packet the threshold also has 5 × the path's jitter (its
// typical spread; sched's window counts up to 10 × (jitter − 1 ms) for it): behind a FIFO radio link the packets of a busy
// round wait for their predecessors' extra delay, so the round's smallest RTT under load
// lies most of the jitter's range above the minimum seen while the path was sparse (a 52
// Mbit/s link of 18 ms ± 9 ms: 45 against 37.5 ms), and that ended startup at 13 Mbit/s,
// after which the path needed 2 s to reach its rate (issue 12). A round measured the path when it took a sample that was not
// app-limited and the sender reported ([Stats.OnLimited]) that the path's window held back
// data it had for it (not its pacer: bursts a scheduler hands a path now and then meet
// the pacer too, at any average rate): a path offered only what its estimate promised (EAT gives
// a slower path no more than that) delivers what it was given, and the estimate, flat,
// said nothing about the link; counted, it ended a 50 Mbit/s path's startup at 15.
//
// A round also measured the path when it was over-offered and that showed a queue (the
// over-offer rule): at least two RTT samples of packets sent while more than 1.25 × the
// estimate's bandwidth-delay product (over MinRTT + 5 × jitter) was in flight, all above the
// delay rule's threshold. A path a scheduler hands bursts is never window-limited, and
// between bursts its queue drains, so every round has samples near the minimum and the
// delay rule does not fire: on two 60 ms links with 120 ms buffers one path stayed in
// startup for 3 s at its link's rate, its window twice the BDP, until a burst overflowed the
// buffer (23 datagrams lost, the inner TCP halved). Offered beyond the estimate but not
// queued (paced at twice the estimate, the link has room), the path's estimate grows or the
// round does not count, as before.
const (
	fullPipeGrowth = 1.25
	fullPipeRounds = 3
	// RFC 9406's MIN_RTT_THRESH, MAX_RTT_THRESH, MIN_RTT_DIVISOR and N_RTT_SAMPLE.
	delayThreshMin  = 4 * time.Millisecond
	delayThreshMax  = 16 * time.Millisecond
	delayThreshDiv  = 8
	delayMinSamples = 8
	delayJitterMult = 5
	// overMinSamples: the over-offered RTT samples a round needs to show a queue.
	overMinSamples = 2
)

type fullPipe struct {
	full    bool
	bw      float64 // the estimate at the last round that grew it by a quarter
	flat    int     // rounds since then that measured the path
	sampled bool    // this round took a sample that was not app-limited
	limited bool    // this round, the sender held data back for the window

	roundMinRTT time.Duration // the smallest RTT sample of this round
	rttSamples  int           // RTT samples this round
	// The same for the samples of packets sent over-offered (the over-offer rule).
	overMinRTT  time.Duration
	overSamples int
}

// delayThresh is the delay rule's threshold: the RTT above which a round's smallest sample
// shows a queue building in the link.
func delayThresh(minRTT, jitter time.Duration) time.Duration {
	return minRTT + min(max(minRTT/delayThreshDiv, delayThreshMin), delayThreshMax) + delayJitterMult*jitter
}

// onRTT takes an RTT sample of this round; over says its packet was sent over-offered. As
// RFC 9406 §4.2 does, the delay rule is checked at every sample once the round has
// delayMinSamples of them, not only when the round ends: a round's smallest RTT can only
// fall as more samples come, and waited for, the exit came a round late, while the window
// of twice the BDP went on filling the link's buffer; where the scheduler moved the load
// between paths, every round held a sample from a drained moment and the round-end check
// never fired (two 20 Mbit/s 60 ms links with 120 ms buffers: a path still in startup 1.3 s
// after its queue began, SRTT up to 234 ms, 18 datagrams lost; docs/DECISIONS.md).
func (f *fullPipe) onRTT(rtt time.Duration, over bool, minRTT, jitter time.Duration) {
	if f.rttSamples == 0 || rtt < f.roundMinRTT {
		f.roundMinRTT = rtt
	}
	f.rttSamples++
	if !f.full && f.rttSamples >= delayMinSamples && f.roundMinRTT > delayThresh(minRTT, jitter) {
		f.full = true
	}
	if over {
		if f.overSamples == 0 || rtt < f.overMinRTT {
			f.overMinRTT = rtt
		}
		f.overSamples++
	}
}

// overOffered reports whether a packet sent now, with s.inflight in flight including it,
// is sent over-offered: in startup, with more than fullPipeGrowth × the estimate's
// bandwidth-delay product (over the minimum RTT and the jitter's typical spread) in flight.
func (s *Stats) overOffered() bool {
	if s.pipe.full {
		return false
	}
	rtt := s.MinRTT()
	if rtt <= 0 {
		return false
	}
	travel := rtt + delayJitterMult*s.Jitter()
	return float64(s.inflight) > fullPipeGrowth*s.DeliveryRate()*travel.Seconds()
}

// endRound closes a packet-timed round trip with the current estimate, whether the loss
// ceiling is set, and the path's minimum RTT and jitter.
func (f *fullPipe) endRound(estimate float64, lossCeiling bool, minRTT, jitter time.Duration) {
	thresh := delayThresh(minRTT, jitter)
	queueing := f.rttSamples >= delayMinSamples && f.roundMinRTT > thresh
	overQueued := f.overSamples >= overMinSamples && f.overMinRTT > thresh
	f.rttSamples, f.overSamples = 0, 0
	if f.full {
		return
	}
	if lossCeiling || queueing {
		f.full = true
		return
	}
	measured := (f.sampled && f.limited) || overQueued
	f.sampled, f.limited = false, false
	if !measured {
		return
	}
	if estimate >= fullPipeGrowth*f.bw {
		f.bw, f.flat = estimate, 0
		return
	}
	f.flat++
	f.full = f.flat >= fullPipeRounds
}

// OnLimited tells the statistics that the sender had data for the path and held it back
// because the path's window was full: the rounds it falls in measure the path.
func (s *Stats) OnLimited() { s.pipe.limited = true }

// Startup reports whether the path is still in startup: its delivery rate has not yet
// been seen to stop growing (see the package's startup rule above).
func (s *Stats) Startup() bool { return !s.pipe.full }
