package pathstat

import "time"

// StampUnit is the resolution of the 16-bit send-time stamps carried in
// datagrams and echoed in PROBE_ACK and FEEDBACK frames (docs/PROTOCOL.md §3).
const StampUnit = 100 * time.Microsecond

// NoRTT is returned by [RTTFromEcho] when the echo gives no valid sample, and
// may be passed to [Stats.OnFeedback] when a feedback frame carries none.
const NoRTT time.Duration = -1

// Stamp converts a monotonic offset (for example time.Since(start)) into the
// wire's 16-bit send-time stamp: 100 µs units, mod 2^16.
func Stamp(d time.Duration) uint16 { return uint16(d / StampUnit) }

// RTTFromEcho computes a round-trip time from the local stamp now, the echoed
// send stamp of the acknowledged packet, and the peer's delay between that
// packet's arrival and its acknowledgement, all in 100 µs units mod 2^16.
//
// The subtraction is modular, so a stamp that wrapped between send and echo
// (every 6.5536 s) still gives the right answer; RTTs of 6.5536 s or more
// cannot be told apart from shorter ones. If the peer's delay exceeds the
// elapsed time, the echo is bogus (or from an older wrap) and NoRTT is
// returned instead of a negative duration.
func RTTFromEcho(nowStamp, echo, delay uint16) time.Duration {
	elapsed := nowStamp - echo // modular: wrap-aware
	if delay > elapsed {
		return NoRTT
	}
	return time.Duration(elapsed-delay) * StampUnit
}

// rttEstimator is the RFC 6298 smoother plus a windowed minimum.
type rttEstimator struct {
	srtt, rttvar time.Duration
	jitter       time.Duration // smoothed |difference| of consecutive samples (RFC 3550 §6.4.1)
	last         time.Duration // the previous sample
	min          maxFilter     // holds -rtt in nanoseconds, so its max is the min RTT
	sampled      bool
}

// minRTTWindow is how long one low RTT sample is remembered. Ten seconds, as
// in BBR: long enough to span bursts of queueing, short enough to follow a
// route change.
const minRTTWindow = 10 * time.Second

func (e *rttEstimator) add(now time.Duration, rtt time.Duration) {
	if !e.sampled {
		e.srtt, e.rttvar, e.sampled = rtt, rtt/2, true
	} else {
		d := rtt - e.last
		if d < 0 {
			d = -d
		}
		e.jitter += (d - e.jitter) / 16
		diff := e.srtt - rtt
		if diff < 0 {
			diff = -diff
		}
		e.rttvar = (3*e.rttvar + diff) / 4 // β = 1/4
		e.srtt = (7*e.srtt + rtt) / 8      // α = 1/8
	}
	e.last = rtt
	e.min.update(int64(minRTTWindow), int64(now), -float64(rtt))
}
