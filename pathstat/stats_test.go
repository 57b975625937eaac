package pathstat

import (
	"testing"
	"time"
)

func TestRTTFromEcho(t *testing.T) {
	tests := []struct {
		name             string
		now, echo, delay uint16
		want             time.Duration
	}{
		{"simple", 300, 100, 0, 20 * time.Millisecond},
		{"with delay", 300, 100, 50, 15 * time.Millisecond},
		{"zero", 100, 100, 0, 0},
		{"delay equals elapsed", 300, 100, 200, 0},
		{"wrapped", 100, 65500, 0, 136 * StampUnit},
		{"wrapped with delay", 10, 65530, 6, 10 * StampUnit},
		{"now at max", 65535, 0, 0, 65535 * StampUnit},
		{"negative rejected", 300, 100, 201, NoRTT},
		{"negative across wrap rejected", 5, 65530, 12, NoRTT},
		{"max delay rejected", 0, 0, 65535, NoRTT},
	}
	for _, tc := range tests {
		t.Run(tc.name, func(t *testing.T) {
			if got := RTTFromEcho(tc.now, tc.echo, tc.delay); got != tc.want {
				t.Errorf("RTTFromEcho(%d, %d, %d) = %v, want %v", tc.now, tc.echo, tc.delay, got, tc.want)
			}
		})
	}
}

func TestStamp(t *testing.T) {
	tests := []struct {
		name string
		d    time.Duration
		want uint16
	}{
		{"zero", 0, 0},
		{"truncates", 199 * time.Microsecond, 1},
		{"one second", time.Second, 10000},
		{"wraps", 65536 * StampUnit, 0},
		{"wraps plus", 65537*StampUnit + 50*time.Microsecond, 1},
	}
	for _, tc := range tests {
		t.Run(tc.name, func(t *testing.T) {
			if got := Stamp(tc.d); got != tc.want {
				t.Errorf("Stamp(%v) = %d, want %d", tc.d, got, tc.want)
			}
		})
	}
}

func TestInitialValues(t *testing.T) {
	tests := []struct {
		name     string
		cfg      Config
		wantRate float64
		wantRTT  time.Duration
	}{
		{"defaults", Config{}, 1.25e6, 100 * time.Millisecond},
		{"configured", Config{InitialRate: 5e6, InitialRTT: 40 * time.Millisecond}, 5e6, 40 * time.Millisecond},
		{"negative means default", Config{InitialRate: -1, InitialRTT: -1}, 1.25e6, 100 * time.Millisecond},
	}
	for _, tc := range tests {
		t.Run(tc.name, func(t *testing.T) {
			s := NewWithConfig(simStart, tc.cfg)
			if got := s.DeliveryRate(); got != tc.wantRate {
				t.Errorf("DeliveryRate = %v, want %v", got, tc.wantRate)
			}
			if got := s.SRTT(); got != tc.wantRTT {
				t.Errorf("SRTT = %v, want %v", got, tc.wantRTT)
			}
			if got := s.MinRTT(); got != tc.wantRTT {
				t.Errorf("MinRTT = %v, want %v", got, tc.wantRTT)
			}
			if got := s.RTTVar(); got != tc.wantRTT/2 {
				t.Errorf("RTTVar = %v, want %v", got, tc.wantRTT/2)
			}
			if got := s.LastHeard(); !got.Equal(simStart) {
				t.Errorf("LastHeard = %v, want creation time", got)
			}
		})
	}
}

func TestRFC6298Smoothing(t *testing.T) {
	ms := time.Millisecond
	tests := []struct {
		name        string
		samples     []time.Duration
		srtt, rvar  time.Duration
		wantMinRTT  time.Duration
		sampleEvery time.Duration
	}{
		{"first sample", []time.Duration{40 * ms}, 40 * ms, 20 * ms, 40 * ms, time.Second},
		// srtt = 7/8·40 + 1/8·80 = 45; rttvar = 3/4·20 + 1/4·40 = 25
		{"second sample", []time.Duration{40 * ms, 80 * ms}, 45 * ms, 25 * ms, 40 * ms, time.Second},
		{"negative ignored", []time.Duration{40 * ms, NoRTT}, 40 * ms, 20 * ms, 40 * ms, time.Second},
		// The 10 ms sample is 12 s old by the last one: out of the window.
		// srtt: 10 → 15 → 19.375 → 23.203125; rttvar: 5 → 13.75 → 19.0625 → 21.953125.
		{"min expires", []time.Duration{10 * ms, 50 * ms, 50 * ms, 50 * ms}, 23203125 * time.Nanosecond, 21953125 * time.Nanosecond, 50 * ms, 4 * time.Second},
	}
	for _, tc := range tests {
		t.Run(tc.name, func(t *testing.T) {
			s := New(simStart)
			now := simStart
			for _, r := range tc.samples {
				now = now.Add(tc.sampleEvery)
				s.OnRTTSample(now, r)
			}
			if got := s.SRTT(); got != tc.srtt {
				t.Errorf("SRTT = %v, want %v", got, tc.srtt)
			}
			if got := s.RTTVar(); got != tc.rvar {
				t.Errorf("RTTVar = %v, want %v", got, tc.rvar)
			}
			if got := s.MinRTT(); got != tc.wantMinRTT {
				t.Errorf("MinRTT = %v, want %v", got, tc.wantMinRTT)
			}
			if got := s.LastHeard(); !got.Equal(now) {
				t.Errorf("LastHeard = %v, want %v", got, now)
			}
		})
	}
}

// TestRingWrap checks inflight accounting when more packets are outstanding
// than the ring holds, and when packet numbers run past the ring many times.
func TestRingWrap(t *testing.T) {
	tests := []struct {
		name         string
		sent         uint64
		acks         []uint64 // highest packet number of successive feedback
		wantInflight int
	}{
		{"within ring, no ack", 100, nil, 100 * 10},
		{"beyond ring, no ack", 20000, nil, DefaultRingSize * 10},
		{"beyond ring, ack old part", 20000, []uint64{5000}, DefaultRingSize * 10},
		{"beyond ring, ack into ring", 20000, []uint64{15000}, 4999 * 10},
		{"beyond ring, ack all", 20000, []uint64{19999}, 0},
		{"many wraps, stepwise acks", 50000, []uint64{9000, 30000, 45000, 49999}, 0},
		{"many wraps, partial", 50000, []uint64{9000, 49000}, 999 * 10},
		{"stale ack ignored", 1000, []uint64{900, 500}, 99 * 10},
		{"ack beyond sent ignored", 1000, []uint64{500, 1000}, 499 * 10},
	}
	for _, tc := range tests {
		t.Run(tc.name, func(t *testing.T) {
			s := New(simStart)
			now := simStart
			for pn := range tc.sent {
				now = now.Add(time.Microsecond)
				s.OnSent(now, pn, 10)
			}
			for _, h := range tc.acks {
				now = now.Add(time.Millisecond)
				s.OnFeedback(now, h, uint32(h+1), (h+1)*10, NoRTT, 0)
			}
			if got := s.Inflight(); got != tc.wantInflight {
				t.Errorf("Inflight = %d, want %d", got, tc.wantInflight)
			}
			if s.Lost() != 0 {
				t.Errorf("Lost = %d, want 0", s.Lost())
			}
		})
	}
}

func TestLossCounterWrap(t *testing.T) {
	tests := []struct {
		name     string
		highest  uint64
		packets  uint32
		wantLost uint64
	}{
		{"none", 99, 100, 0},
		{"some", 99, 90, 10},
		{"received counter wrapped", 1<<32 + 99, 95, 5},
		{"bogus count clamps", 9, 4000, 10},
	}
	for _, tc := range tests {
		t.Run(tc.name, func(t *testing.T) {
			s := New(simStart)
			// Jump the packet numbers: only the last ring's worth is sent.
			first := tc.highest - min(tc.highest, 50)
			for pn := first; pn <= tc.highest; pn++ {
				s.OnSent(simStart, pn, 100)
			}
			s.OnFeedback(simStart.Add(time.Second), tc.highest, tc.packets, 0, NoRTT, 0)
			if got := s.Lost(); got != tc.wantLost {
				t.Errorf("Lost = %d, want %d", got, tc.wantLost)
			}
		})
	}
}

// TestDeliveryRatePhases runs a 50 Mbit/s path at full load for a second,
// then changes the link or the load for two seconds (≈ 100 round trips).
func TestDeliveryRatePhases(t *testing.T) {
	const size = 1250
	tests := []struct {
		name      string
		rate2     float64       // link rate in the second phase, bytes/s
		interval2 time.Duration // send interval in the second phase
		onArrival bool          // FEEDBACK only after arrivals, as the session sends it
		want      float64
	}{
		// A capacity drop under load is followed within ten round trips.
		{"capacity drop, saturated", 2.5e6, 200 * time.Microsecond, false, 2.5e6},
		{"capacity rise, saturated", 12.5e6, 100 * time.Microsecond, false, 12.5e6},
		// Offered 10 Mbit/s, below the old estimate, but 2.5 × what the path
		// now carries: the path is the bottleneck, not the sender.
		{"capacity drop below a light load", 0.5e6, time.Millisecond, false, 0.5e6},
		// App-limited samples (the sender offers a fifth of the estimate, as
		// EAT does to an idle slow path) never lower the estimate.
		{"app-limited keeps estimate", 6.25e6, time.Millisecond, false, 6.25e6},
		{"probes only keeps estimate", 6.25e6, 100 * time.Millisecond, false, 6.25e6},
		// Sparse control datagrams (a FEEDBACK copy every 20 ms) with FEEDBACK sent only
		// after arrivals: a sample then spans a little more acknowledgement time than send
		// time, which looked like a path falling behind and drove a healthy DSL's estimate
		// to a few kB/s during a download (issue 12, the e2e upload that followed it
		// stayed on the cable).
		{"sparse control traffic keeps estimate", 6.25e6, 20 * time.Millisecond, true, 6.25e6},
		{"sparse traffic, 7 ms apart, keeps estimate", 6.25e6, 7 * time.Millisecond, true, 6.25e6},
	}
	for _, tc := range tests {
		t.Run(tc.name, func(t *testing.T) {
			l := &simLink{rate: 6.25e6, owd: 10 * time.Millisecond, feedbackEvery: 5 * time.Millisecond,
				queueLimit: 50 * time.Millisecond, start: simStart}
			s := New(simStart)
			l.run(s, size, 200*time.Microsecond, time.Second, 0)
			if got := s.DeliveryRate(); got < 6.25e6*0.95 || got > 6.25e6*1.05 {
				t.Fatalf("first phase DeliveryRate = %.0f, want 6250000 ±5%%", got)
			}
			l.rate, l.onArrival = tc.rate2, tc.onArrival
			l.run(s, size, tc.interval2, 2*time.Second, 0)
			if got := s.DeliveryRate(); got < tc.want*0.95 || got > tc.want*1.05 {
				t.Errorf("DeliveryRate = %.0f, want %.0f ±5%%", got, tc.want)
			}
		})
	}
}

func TestAllocs(t *testing.T) {
	if raceEnabled {
		t.Skip("allocation counts are not meaningful under the race detector")
	}
	s := New(simStart)
	now := simStart
	var pn uint64
	tests := []struct {
		name string
		fn   func()
	}{
		{"OnSent", func() { now = now.Add(time.Microsecond); s.OnSent(now, pn, 1400); pn++ }},
		{"OnFeedback", func() {
			now = now.Add(time.Millisecond)
			s.OnSent(now, pn, 1400)
			s.OnFeedback(now, pn, uint32(pn+1), (pn+1)*1400, 20*time.Millisecond, 0)
			pn++
		}},
		{"OnRTTSample", func() { now = now.Add(time.Millisecond); s.OnRTTSample(now, 20*time.Millisecond) }},
	}
	for _, tc := range tests {
		t.Run(tc.name, func(t *testing.T) {
			if a := testing.AllocsPerRun(1000, tc.fn); a != 0 {
				t.Errorf("%s allocates %.1f per call, want 0", tc.name, a)
			}
		})
	}
}

func BenchmarkOnSentOnFeedback(b *testing.B) {
	s := New(simStart)
	now := simStart
	b.ReportAllocs()
	b.ResetTimer()
	for i := range b.N {
		pn := uint64(i)
		now = now.Add(10 * time.Microsecond)
		s.OnSent(now, pn, 1400)
		if pn%16 == 15 { // one feedback per 16 datagrams
			s.OnFeedback(now, pn-8, uint32(pn-7), (pn-7)*1400, 20*time.Millisecond, 0)
		}
	}
}

func TestRingSizeConfig(t *testing.T) {
	tests := []struct {
		name         string
		ringSize     int
		wantInflight int // after 5000 unacknowledged 10-byte packets
	}{
		{"default", 0, 5000 * 10},
		{"rounded up to a power of two", 100, 128 * 10},
		{"floor", 3, 64 * 10},
		{"exact power of two", 1024, 1024 * 10},
	}
	for _, tc := range tests {
		t.Run(tc.name, func(t *testing.T) {
			s := NewWithConfig(simStart, Config{RingSize: tc.ringSize})
			for pn := range uint64(5000) {
				s.OnSent(simStart, pn, 10)
			}
			if got := s.Inflight(); got != tc.wantInflight {
				t.Errorf("Inflight = %d, want %d", got, tc.wantInflight)
			}
			s.OnFeedback(simStart.Add(time.Second), 4999, 5000, 50000, NoRTT, 0)
			if got := s.Inflight(); got != 0 {
				t.Errorf("Inflight after full ack = %d, want 0", got)
			}
		})
	}
}

func TestSentAt(t *testing.T) {
	t0 := time.Date(2026, 1, 1, 0, 0, 0, 0, time.UTC)
	s := New(t0)
	const n = DefaultRingSize + 40
	for pn := uint64(0); pn < n; pn++ {
		s.OnSent(t0.Add(time.Duration(pn)*time.Millisecond), pn, 1000)
	}
	if at, ok := s.SentAt(n - 1); !ok || !at.Equal(t0.Add((n-1)*time.Millisecond)) {
		t.Fatalf("SentAt(%d) = %v, %v", n-1, at, ok)
	}
	if _, ok := s.SentAt(10); ok {
		t.Fatal("SentAt(10) found a packet the ring has overwritten")
	}
	if _, ok := s.SentAt(n); ok {
		t.Fatal("SentAt(n) found a packet never sent")
	}
}

func TestResetMinRTT(t *testing.T) {
	t0 := time.Date(2026, 1, 1, 0, 0, 0, 0, time.UTC)
	s := New(t0)
	s.OnRTTSample(t0, 20*time.Millisecond)
	for i := 1; i <= 300; i++ { // 3 s of samples at 60 ms (the return path changed)
		s.OnRTTSample(t0.Add(time.Duration(i)*10*time.Millisecond), 60*time.Millisecond)
	}
	if got := s.MinRTT(); got != 20*time.Millisecond {
		t.Fatalf("MinRTT = %v, want the 10 s minimum 20ms", got)
	}
	s.ResetMinRTT()
	if got := s.MinRTT(); got != DefaultInitialRTT {
		t.Errorf("MinRTT after reset, before a sample = %v, want the initial %v", got, DefaultInitialRTT)
	}
	s.OnRTTSample(t0.Add(3100*time.Millisecond), 61*time.Millisecond)
	s.OnRTTSample(t0.Add(3110*time.Millisecond), 60*time.Millisecond)
	if got := s.MinRTT(); got != 60*time.Millisecond {
		t.Errorf("MinRTT after reset = %v, want 60ms", got)
	}
}

// TestSparseTrafficKeepsRate sends only sparse control datagrams (as a path carrying
// FEEDBACK copies and probes does) over paths of several delays, with FEEDBACK on a 5 ms
// grid and some return jitter: the delivery-rate estimate must stay where saturated
// traffic left it (issue 12).
func TestSparseTrafficKeepsRate(t *testing.T) {
	for _, owd := range []time.Duration{5 * time.Millisecond, 12 * time.Millisecond, 22 * time.Millisecond, 31 * time.Millisecond} {
		for _, interval := range []time.Duration{3 * time.Millisecond, 7 * time.Millisecond, 20 * time.Millisecond, 45 * time.Millisecond} {
			l := &simLink{rate: 6.25e6, owd: owd, feedbackEvery: 5 * time.Millisecond,
				queueLimit: 50 * time.Millisecond, start: simStart}
			s := New(simStart)
			l.run(s, 1250, 200*time.Microsecond, time.Second, 0)
			l.onArrival = true
			l.jitter = func(pn uint64) time.Duration { return time.Duration(pn*7919%3000) * time.Microsecond }
			l.run(s, 110, interval, 3*time.Second, 0)
			if got := s.DeliveryRate(); got < 6.25e6*0.9 {
				t.Errorf("owd %v, a datagram every %v: DeliveryRate = %.0f, want ≥ 90 %% of 6250000", owd, interval, got)
			}
		}
	}
}

// TestUnknownSendTimesKeepInitialRate: when a report's packets were sent before the
// statistics were restarted (a path that comes up restarts them, and the peer's first
// reports name packets the new ring never saw), the send rate is unknown; such a sample
// must not be taken for a path falling behind. It set fresh paths' estimates to a few kB/s
// (issue 12), and a 60 ms path then needed seconds to climb back.
func TestUnknownSendTimesKeepInitialRate(t *testing.T) {
	t0 := time.Date(2026, 1, 1, 0, 0, 0, 0, time.UTC)
	s := New(t0)
	s.OnSent(t0, 10, 100) // packets 0..9 went out before the restart
	s.OnSent(t0.Add(time.Millisecond), 11, 100)
	s.OnFeedback(t0.Add(20*time.Millisecond), 9, 10, 1000, 20*time.Millisecond, 0)
	s.OnFeedback(t0.Add(45*time.Millisecond), 11, 12, 1200, 20*time.Millisecond, 0)
	if got := s.DeliveryRate(); got < DefaultInitialRate {
		t.Errorf("DeliveryRate = %.0f after a sample with unknown send times, want the initial %.0f", got, float64(DefaultInitialRate))
	}
}

// TestRingGrows: the ring starts small and doubles while packets in flight fill it, up to
// RingSize, so inflight counts every unacknowledged packet; past RingSize the oldest are
// forgotten as before.
func TestRingGrows(t *testing.T) {
	t0 := time.Unix(100, 0)
	s := NewWithConfig(t0, Config{RingSize: 1024})
	if len(s.ring) != initialRingSize {
		t.Fatalf("new ring of %d entries, want %d", len(s.ring), initialRingSize)
	}
	for pn := range uint64(1000) {
		s.OnSent(t0, pn, 100)
	}
	if len(s.ring) != 1024 || s.Inflight() != 100000 {
		t.Fatalf("after 1000 unacknowledged packets: ring %d, inflight %d; want 1024, 100000", len(s.ring), s.Inflight())
	}
	for pn := range uint64(1000) {
		if _, ok := s.SentAt(pn); !ok {
			t.Fatalf("packet %d forgotten while the ring had room", pn)
		}
	}
	for pn := uint64(1000); pn < 1100; pn++ {
		s.OnSent(t0, pn, 100)
	}
	if len(s.ring) != 1024 || s.Inflight() != 1024*100 {
		t.Errorf("past RingSize: ring %d, inflight %d; want 1024, %d", len(s.ring), s.Inflight(), 1024*100)
	}
}
