package linkemu

import (
	"math"
	"math/rand/v2"
	"testing"
	"time"
)

func TestLossRate(t *testing.T) {
	tests := []struct {
		name string
		loss float64
	}{
		{"none", 0}, {"one percent", 1}, {"ten percent", 10}, {"half", 50}, {"all", 100},
	}
	const n = 20000
	for _, tc := range tests {
		t.Run(tc.name, func(t *testing.T) {
			l := New(Params{Loss: tc.loss}, 4, 64, rand.New(rand.NewPCG(7, 7)))
			buf := make([]byte, 64)
			for range n {
				l.Enqueue(t0, buf)
				l.Pop(t0, buf)
			}
			st := l.Stats()
			p := tc.loss / 100
			sigma := math.Sqrt(n * p * (1 - p))
			if got := float64(st.DroppedLoss); math.Abs(got-n*p) > 4*sigma+0.5 {
				t.Errorf("lost %v of %d, want %v ± %.0f", got, n, n*p, 4*sigma)
			}
			if st.Enqueued != st.Delivered+st.Dropped()+st.Held {
				t.Errorf("conservation broken: %+v", st)
			}
		})
	}
}

func TestJitter(t *testing.T) {
	ms := time.Millisecond
	tests := []struct {
		name        string
		p           Params
		wantOrdered bool
		wantMin     time.Duration
		wantMax     time.Duration
	}{
		{"uniform keeps order", Params{Delay: 20 * ms, Jitter: 5 * ms}, true, 15 * ms, 25 * ms},
		{"normal keeps order", Params{Delay: 20 * ms, Jitter: 2 * ms, NormalJitter: true}, true, 0, time.Hour},
		{"uniform may reorder", Params{Delay: 20 * ms, Jitter: 5 * ms, Reorder: true}, false, 15 * ms, 25 * ms},
		{"never negative", Params{Delay: 1 * ms, Jitter: 5 * ms, Reorder: true}, false, 0, 6 * ms},
	}
	for _, tc := range tests {
		t.Run(tc.name, func(t *testing.T) {
			l := New(tc.p, 1000, 16, rand.New(rand.NewPCG(3, 4)))
			for i := range 1000 {
				b := []byte{byte(i), byte(i >> 8)}
				// one packet every 100 µs, much less than the jitter
				l.Enqueue(t0.Add(time.Duration(i)*100*time.Microsecond), b)
			}
			buf := make([]byte, 16)
			prev, reordered := -1, false
			distinct := map[time.Duration]bool{}
			for {
				due, ok := l.Next()
				if !ok {
					break
				}
				n, _ := l.Pop(due, buf)
				id := int(buf[0]) | int(buf[1])<<8
				if n != 2 {
					t.Fatalf("length %d", n)
				}
				if id < prev {
					reordered = true
				}
				prev = id
				delay := due.Sub(t0.Add(time.Duration(id) * 100 * time.Microsecond))
				distinct[delay] = true
				if !tc.wantOrdered && (delay < tc.wantMin || delay > tc.wantMax) {
					t.Errorf("packet %d delay %v outside [%v, %v]", id, delay, tc.wantMin, tc.wantMax)
				}
			}
			if reordered == tc.wantOrdered {
				t.Errorf("reordered = %v, want %v", reordered, !tc.wantOrdered)
			}
			if len(distinct) < 100 {
				t.Errorf("only %d distinct delays: jitter not applied", len(distinct))
			}
		})
	}
}

func TestCutRestore(t *testing.T) {
	ms := time.Millisecond
	l := newTestLink(Params{RateBps: 8e6, Delay: 10 * ms, QueueBytes: 1 << 20})
	for i := range 5 {
		l.Enqueue(t0, pkt(byte(i), 1000)) // due at 11..15 ms
	}
	buf := make([]byte, 2048)
	if _, ok := l.Pop(t0.Add(11*ms), buf); !ok {
		t.Fatal("first packet not delivered")
	}
	p := l.Params()
	p.Cut = true
	l.SetParams(t0.Add(12*ms), p) // packet 1 was due exactly now: still held, cut
	steps := []struct {
		name   string
		check  func() bool
		reason string
	}{
		{"nothing held after cut", func() bool { _, ok := l.Next(); return !ok }, "Next reports a packet"},
		{"enqueue refused while cut", func() bool { return !l.Enqueue(t0.Add(13*ms), pkt(9, 100)) }, "accepted"},
		{"cut counted", func() bool { s := l.Stats(); return s.DroppedCut == 5 && s.Delivered == 1 }, "wrong counts"},
	}
	for _, s := range steps {
		if !s.check() {
			t.Errorf("%s: %s; stats %+v", s.name, s.reason, l.Stats())
		}
	}
	p.Cut = false
	restore := t0.Add(100 * ms)
	l.SetParams(restore, p)
	if !l.Enqueue(restore, pkt(7, 1000)) {
		t.Fatal("enqueue after restore dropped")
	}
	due, ok := l.Next()
	if want := restore.Add(11 * ms); !ok || !due.Equal(want) {
		t.Errorf("after restore due %v, want %v (idle transmitter)", due.Sub(t0), want.Sub(t0))
	}
	st := l.Stats()
	if st.Enqueued != st.Delivered+st.Dropped()+st.Held {
		t.Errorf("conservation broken: %+v", st)
	}
}

func TestParamsChange(t *testing.T) {
	ms := time.Millisecond
	l := newTestLink(Params{RateBps: 8e6, Delay: 10 * ms, QueueBytes: 1 << 20})
	l.Enqueue(t0, pkt(0, 1000)) // 1 ms + 10 ms
	l.SetParams(t0, Params{RateBps: 4e6, Delay: 30 * ms, QueueBytes: 1 << 20})
	l.Enqueue(t0, pkt(1, 1000)) // waits for packet 0 (1 ms), 2 ms at the new rate, + 30 ms
	l.SetParams(t0, Params{Delay: 1 * ms})
	l.Enqueue(t0, pkt(2, 1000)) // unlimited rate, but FIFO: not before packet 1
	got, ids := popAll(t, l, t0.Add(time.Hour))
	want := []time.Duration{11 * ms, 33 * ms, 33 * ms}
	for i := range want {
		if i >= len(got) || got[i] != want[i] || ids[i] != byte(i) {
			t.Fatalf("got %v %v, want %v in order", got, ids, want)
		}
	}
}

func TestPopNotDue(t *testing.T) {
	l := newTestLink(Params{Delay: time.Millisecond})
	l.Enqueue(t0, pkt(1, 10))
	buf := make([]byte, 4)
	tests := []struct {
		name  string
		at    time.Duration
		wantN int
		ok    bool
	}{
		{"early", 999 * time.Microsecond, 0, false},
		{"due, truncated to dst", time.Millisecond, 4, true},
		{"empty", time.Second, 0, false},
	}
	for _, tc := range tests {
		n, ok := l.Pop(t0.Add(tc.at), buf)
		if n != tc.wantN || ok != tc.ok {
			t.Errorf("%s: Pop = %d, %v; want %d, %v", tc.name, n, ok, tc.wantN, tc.ok)
		}
	}
}

func TestAutoQueueBytes(t *testing.T) {
	tests := []struct {
		name string
		rate int64
		d    time.Duration
		want int
	}{
		{"cable", 50e6, 10 * time.Millisecond, 125000},
		{"dsl", 20e6, 30 * time.Millisecond, 150000},
		{"floor", 1e6, time.Millisecond, MinAutoQueueBytes},
	}
	for _, tc := range tests {
		if got := AutoQueueBytes(tc.rate, tc.d); got != tc.want {
			t.Errorf("%s: %d, want %d", tc.name, got, tc.want)
		}
	}
}

// steadyState runs one packet through a link with rate, delay and jitter.
func steadyState(l *Link, now *time.Time, pkt, buf []byte) {
	*now = now.Add(200 * time.Microsecond)
	l.Enqueue(*now, pkt)
	for {
		if _, ok := l.Pop(*now, buf); !ok {
			return
		}
	}
}

func steadyLink() *Link {
	p := Params{RateBps: 100e6, Delay: 10 * time.Millisecond, Jitter: time.Millisecond, Loss: 1}
	return New(p, 1024, 1500, rand.New(rand.NewPCG(1, 2)))
}

func TestZeroAllocs(t *testing.T) {
	if raceEnabled {
		t.Skip("allocation counts are not meaningful under -race")
	}
	l := steadyLink()
	now, p, buf := t0, make([]byte, 1400), make([]byte, 1500)
	allocs := testing.AllocsPerRun(10000, func() { steadyState(l, &now, p, buf) })
	if allocs != 0 {
		t.Errorf("%v allocations per packet, want 0", allocs)
	}
	if l.Stats().Delivered == 0 {
		t.Error("no packet delivered")
	}
}

func BenchmarkEnqueuePop(b *testing.B) {
	l := steadyLink()
	now, p, buf := t0, make([]byte, 1400), make([]byte, 1500)
	b.ReportAllocs()
	b.SetBytes(int64(len(p)))
	for b.Loop() {
		steadyState(l, &now, p, buf)
	}
}
