package pathstat

import (
	"testing"
	"time"
)

// simLink is a scripted one-path network for tests: a FIFO bottleneck of
// rate bytes/s followed by a fixed one-way delay, in both directions, with a
// receiver that sends FEEDBACK every feedbackEvery. Time advances in fixed
// ticks from an injected clock; nothing here reads the wall clock.
type simLink struct {
	rate          float64       // bottleneck, bytes/s
	owd           time.Duration // one-way propagation delay, each direction
	feedbackEvery time.Duration
	drop          func(pn uint64) bool // scripted loss; nil means none
	queueLimit    time.Duration        // drop-tail when the backlog exceeds it; 0 means unlimited
	// onArrival: FEEDBACK only when something arrived since the last one, on a fixed grid
	// of feedbackEvery (as the session sends it: its reports follow the busiest path, so a
	// quiet path's arrival waits 0 to feedbackEvery for one), instead of every
	// feedbackEvery regardless.
	onArrival bool
	jitter    func(pn uint64) time.Duration // extra one-way delay of packet pn; FIFO is kept

	start    time.Time
	now      time.Duration // the clock, as an offset from start
	pn       uint64        // next packet number
	linkFree time.Duration // when the bottleneck is next idle

	// Packets in flight towards the receiver, in FIFO order.
	toRcv []simPacket
	// Receiver state.
	haveRcv   bool
	dirty     bool // arrivals since the last FEEDBACK
	highest   uint64
	highestAt time.Duration
	highestTS uint16
	packets   uint32
	bytes     uint64
	nextFB    time.Duration
	// Feedback frames in flight towards the sender.
	toSnd []simFeedback
}

type simPacket struct {
	pn     uint64
	size   int
	stamp  uint16
	arrive time.Duration
}

type simFeedback struct {
	arrive   time.Duration
	highest  uint64
	packets  uint32
	bytes    uint64
	echo     uint16
	delayStp uint16
}

// send puts datagram pn on the link at offset t.
func (l *simLink) send(t time.Duration, pn uint64, size int) {
	if l.drop != nil && l.drop(pn) || l.queueLimit > 0 && l.linkFree-t > l.queueLimit {
		return
	}
	startTx := max(t, l.linkFree)
	l.linkFree = startTx + time.Duration(float64(size)/l.rate*float64(time.Second))
	arrive := l.linkFree + l.owd
	if l.jitter != nil {
		arrive += l.jitter(pn)
		if n := len(l.toRcv); n > 0 {
			arrive = max(arrive, l.toRcv[n-1].arrive)
		}
	}
	l.toRcv = append(l.toRcv, simPacket{pn, size, Stamp(t), arrive})
}

// step delivers everything due at offset t to the receiver and to s.
func (l *simLink) step(t time.Duration, s *Stats) {
	for len(l.toRcv) > 0 && l.toRcv[0].arrive <= t {
		p := l.toRcv[0]
		l.toRcv = l.toRcv[1:]
		l.haveRcv, l.dirty, l.highest, l.highestAt, l.highestTS = true, true, p.pn, p.arrive, p.stamp
		l.packets++
		l.bytes += uint64(p.size)
	}
	if l.haveRcv && t >= l.nextFB && (l.dirty || !l.onArrival) {
		l.nextFB, l.dirty = t+l.feedbackEvery, false
		if l.onArrival {
			l.nextFB = t.Truncate(l.feedbackEvery) + l.feedbackEvery
		}
		l.toSnd = append(l.toSnd, simFeedback{
			arrive: t + l.owd, highest: l.highest, packets: l.packets, bytes: l.bytes,
			echo: l.highestTS, delayStp: Stamp(t - l.highestAt),
		})
	}
	for len(l.toSnd) > 0 && l.toSnd[0].arrive <= t {
		f := l.toSnd[0]
		l.toSnd = l.toSnd[1:]
		rtt := RTTFromEcho(Stamp(t), f.echo, f.delayStp)
		s.OnFeedback(l.start.Add(t), f.highest, f.packets, f.bytes, rtt, time.Duration(f.delayStp)*StampUnit)
	}
}

// run sends size-byte packets every interval for sendFor, then keeps the
// clock going for drainFor so all feedback comes back. It continues from the
// clock and packet number a previous run left, and returns the number of
// packets it sent.
func (l *simLink) run(s *Stats, size int, interval, sendFor, drainFor time.Duration) uint64 {
	const tick = 50 * time.Microsecond
	first, begin := l.pn, l.now
	nextSend := begin
	for ; l.now <= begin+sendFor+drainFor; l.now += tick {
		for l.now < begin+sendFor && l.now >= nextSend {
			s.OnSent(l.start.Add(l.now), l.pn, size)
			l.send(l.now, l.pn, size)
			l.pn++
			nextSend += interval
		}
		l.step(l.now, s)
	}
	return l.pn - first
}

var simStart = time.Date(2026, 1, 1, 0, 0, 0, 0, time.UTC)

func TestSimulationConverges(t *testing.T) {
	tests := []struct {
		name     string
		rateMbit float64
		owd      time.Duration
		offered  float64 // fraction of the link rate the sender offers
		wantRate float64 // bytes/s
		wantRTT  time.Duration
	}{
		{"50Mbit 20ms at link rate", 50, 10 * time.Millisecond, 1.0, 6.25e6, 20 * time.Millisecond},
		{"50Mbit 20ms oversubscribed 5%", 50, 10 * time.Millisecond, 1.05, 6.25e6, 20 * time.Millisecond},
		{"20Mbit 60ms at link rate", 20, 30 * time.Millisecond, 1.0, 2.5e6, 60 * time.Millisecond},
	}
	for _, tc := range tests {
		t.Run(tc.name, func(t *testing.T) {
			const size = 1250
			rate := tc.rateMbit * 1e6 / 8
			l := &simLink{rate: rate, owd: tc.owd, feedbackEvery: 5 * time.Millisecond, start: simStart}
			s := New(simStart)
			interval := time.Duration(float64(size) / (rate * tc.offered) * float64(time.Second))
			l.run(s, size, interval, 2*time.Second, 0)
			t.Logf("rate %.0f B/s, minRTT %v, SRTT %v, RTTVar %v, inflight %d", s.DeliveryRate(), s.MinRTT(), s.SRTT(), s.RTTVar(), s.Inflight())

			if got := s.DeliveryRate(); got < tc.wantRate*0.95 || got > tc.wantRate*1.05 {
				t.Errorf("DeliveryRate = %.0f B/s, want %.0f ±5%%", got, tc.wantRate)
			}
			// The bottleneck adds one serialization time (200 µs at 50 Mbit/s).
			if got := s.MinRTT(); got < tc.wantRTT-time.Millisecond || got > tc.wantRTT+time.Millisecond {
				t.Errorf("MinRTT = %v, want %v ±1ms", got, tc.wantRTT)
			}
			if tc.offered == 1.0 {
				if got := s.SRTT(); got < tc.wantRTT-time.Millisecond || got > tc.wantRTT+time.Millisecond {
					t.Errorf("SRTT = %v, want %v ±1ms", got, tc.wantRTT)
				}
			}
		})
	}
}

func TestSimulationLossAndInflight(t *testing.T) {
	tests := []struct {
		name     string
		packets  int // sent, one per ms
		drop     func(pn uint64) bool
		wantLost uint64
	}{
		{"no loss", 500, nil, 0},
		{"every tenth", 1000, func(pn uint64) bool { return pn%10 == 3 }, 100},
		{"burst of five", 1000, func(pn uint64) bool { return pn >= 50 && pn < 55 }, 5},
		{"burst plus singles", 1000, func(pn uint64) bool { return pn >= 200 && pn < 230 || pn == 7 || pn == 998 }, 32},
	}
	for _, tc := range tests {
		t.Run(tc.name, func(t *testing.T) {
			l := &simLink{rate: 6.25e6, owd: 10 * time.Millisecond, feedbackEvery: 5 * time.Millisecond,
				drop: tc.drop, start: simStart}
			s := New(simStart)
			sendFor := time.Duration(tc.packets) * time.Millisecond
			if n := l.run(s, 1000, time.Millisecond, sendFor, 100*time.Millisecond); n != uint64(tc.packets) {
				t.Fatalf("sent %d packets, want %d", n, tc.packets)
			}
			if got := s.Sent(); got != uint64(tc.packets) {
				t.Errorf("Sent = %d, want %d", got, tc.packets)
			}
			if got := s.Lost(); got != tc.wantLost {
				t.Errorf("Lost = %d, want %d", got, tc.wantLost)
			}
			if got := s.Inflight(); got != 0 {
				t.Errorf("Inflight after full feedback = %d, want 0", got)
			}
			if !s.LastHeard().After(simStart.Add(sendFor)) {
				t.Errorf("LastHeard = %v, want after the last send", s.LastHeard())
			}
		})
	}
}

func TestLossRateEWMA(t *testing.T) {
	tests := []struct {
		name string
		drop func(pn uint64) bool
		want float64
	}{
		{"none", nil, 0},
		{"ten percent", func(pn uint64) bool { return pn%10 == 0 }, 0.10},
		{"half", func(pn uint64) bool { return pn%2 == 0 }, 0.5},
	}
	for _, tc := range tests {
		t.Run(tc.name, func(t *testing.T) {
			l := &simLink{rate: 6.25e6, owd: 10 * time.Millisecond, feedbackEvery: 5 * time.Millisecond,
				drop: tc.drop, start: simStart}
			s := New(simStart)
			l.run(s, 1000, 500*time.Microsecond, time.Second, 50*time.Millisecond)
			if got := s.LossRate(); got < tc.want-0.02 || got > tc.want+0.02 {
				t.Errorf("LossRate = %.3f, want %.2f ±0.02", got, tc.want)
			}
		})
	}
}
