package linkemu

import (
	"math/rand/v2"
	"testing"
	"time"
)

var t0 = time.Date(2026, 1, 1, 0, 0, 0, 0, time.UTC)

func newTestLink(p Params) *Link {
	return New(p, 256, 2048, rand.New(rand.NewPCG(1, 2)))
}

// popAll pops every packet up to until, in order, and returns the arrival
// time (the due time reported by Next) and first byte of each.
func popAll(t *testing.T, l *Link, until time.Time) (times []time.Duration, ids []byte) {
	t.Helper()
	buf := make([]byte, 2048)
	for {
		due, ok := l.Next()
		if !ok || due.After(until) {
			return times, ids
		}
		n, ok := l.Pop(due, buf)
		if !ok {
			t.Fatalf("Pop at Next()=%v failed", due)
		}
		times = append(times, due.Sub(t0))
		ids = append(ids, buf[:n][0])
	}
}

func pkt(id byte, size int) []byte {
	b := make([]byte, size)
	b[0] = id
	return b
}

func TestTiming(t *testing.T) {
	ms := time.Millisecond
	tests := []struct {
		name  string
		p     Params
		sizes []int           // packets offered back to back at t0
		at    []time.Duration // offset of each offer, nil = all at t0
		want  []time.Duration // due times
	}{
		{
			name:  "rate serializes back to back",
			p:     Params{RateBps: 8e6, QueueBytes: 1 << 20}, // 1 byte/µs
			sizes: []int{1000, 1000, 1000, 500},
			want:  []time.Duration{1 * ms, 2 * ms, 3 * ms, 3500 * time.Microsecond},
		},
		{
			name:  "delay after serialization",
			p:     Params{RateBps: 8e6, Delay: 10 * ms, QueueBytes: 1 << 20},
			sizes: []int{1000, 1000},
			want:  []time.Duration{11 * ms, 12 * ms},
		},
		{
			name:  "idle transmitter does not bank credit",
			p:     Params{RateBps: 8e6, QueueBytes: 1 << 20},
			sizes: []int{1000, 1000},
			at:    []time.Duration{0, 5 * ms},
			want:  []time.Duration{1 * ms, 6 * ms},
		},
		{
			name:  "unlimited rate is pure delay",
			p:     Params{Delay: 7 * ms},
			sizes: []int{1500, 1500, 1500},
			want:  []time.Duration{7 * ms, 7 * ms, 7 * ms},
		},
		{
			name:  "remainder carried: 3 bytes at 7 bit/ms",
			p:     Params{RateBps: 7000, QueueBytes: 1 << 20},
			sizes: []int{3, 3, 3, 3, 3, 3, 3},
			// 24 bits = 24/7 ms each; 7 packets take exactly 24 ms.
			want: []time.Duration{3428571, 6857142, 10285714, 13714285, 17142857, 20571428, 24 * ms},
		},
	}
	for _, tc := range tests {
		t.Run(tc.name, func(t *testing.T) {
			l := newTestLink(tc.p)
			for i, size := range tc.sizes {
				now := t0
				if tc.at != nil {
					now = t0.Add(tc.at[i])
				}
				if !l.Enqueue(now, pkt(byte(i), size)) {
					t.Fatalf("packet %d dropped", i)
				}
			}
			got, ids := popAll(t, l, t0.Add(time.Hour))
			if len(got) != len(tc.want) {
				t.Fatalf("got %d packets, want %d", len(got), len(tc.want))
			}
			for i := range got {
				if got[i] != tc.want[i] || ids[i] != byte(i) {
					t.Errorf("packet %d: id %d due %v, want id %d due %v", i, ids[i], got[i], i, tc.want[i])
				}
			}
		})
	}
}

func TestRateExactOverManyPackets(t *testing.T) {
	const n, size, rate = 10000, 1500, 50e6
	l := New(Params{RateBps: rate, QueueBytes: 1 << 30}, n, size, rand.New(rand.NewPCG(1, 1)))
	for i := range n {
		if !l.Enqueue(t0, make([]byte, size)) {
			t.Fatalf("packet %d dropped", i)
		}
	}
	var last time.Time
	buf := make([]byte, size)
	for {
		due, ok := l.Next()
		if !ok {
			break
		}
		l.Pop(due, buf)
		last = due
	}
	want := time.Duration(n * size * 8 * 1e9 / rate)
	if got := last.Sub(t0); got != want {
		t.Errorf("%d packets of %d B at %v bit/s took %v, want exactly %v", n, size, rate, got, want)
	}
}

func TestQueueBound(t *testing.T) {
	tests := []struct {
		name      string
		p         Params
		slots     int
		offers    int // 1000-byte packets at t0
		wantOK    int
		wantQueue uint64
		wantSlots uint64
	}{
		{"bytes bound tail drops", Params{RateBps: 8e6, QueueBytes: 5000}, 64, 10, 5, 5, 0},
		{"default bound", Params{RateBps: 8e6}, 128, 100, DefaultQueueBytes / 1000, 100 - DefaultQueueBytes/1000, 0},
		{"slots bound", Params{RateBps: 8e6, QueueBytes: 1 << 20}, 3, 10, 3, 0, 7},
		{"unlimited rate never queues", Params{QueueBytes: 1000, Delay: time.Second}, 64, 10, 10, 0, 0},
		{"unlimited rate, slots bound", Params{Delay: time.Second}, 4, 10, 4, 0, 6},
	}
	for _, tc := range tests {
		t.Run(tc.name, func(t *testing.T) {
			l := New(tc.p, tc.slots, 1500, rand.New(rand.NewPCG(1, 2)))
			ok := 0
			for i := range tc.offers {
				if l.Enqueue(t0, pkt(byte(i), 1000)) {
					ok++
				}
			}
			st := l.Stats()
			if ok != tc.wantOK || st.DroppedQueue != tc.wantQueue || st.DroppedSlots != tc.wantSlots {
				t.Errorf("accepted %d, dropped %d (queue) %d (slots); want %d, %d, %d",
					ok, st.DroppedQueue, st.DroppedSlots, tc.wantOK, tc.wantQueue, tc.wantSlots)
			}
		})
	}
}

func TestQueueDrainsWithTime(t *testing.T) {
	// 1 byte/µs, 3000-byte queue: after 1 ms one more 1000-byte packet fits.
	l := newTestLink(Params{RateBps: 8e6, QueueBytes: 3000})
	for i := range 3 {
		l.Enqueue(t0, pkt(byte(i), 1000))
	}
	steps := []struct {
		name string
		at   time.Duration
		want bool
	}{
		{"full", 0, false},
		{"still full just before", 999 * time.Microsecond, false},
		{"one serialized", time.Millisecond, true},
		{"full again", time.Millisecond, false},
	}
	for _, s := range steps {
		if got := l.Enqueue(t0.Add(s.at), pkt(9, 1000)); got != s.want {
			t.Errorf("%s: Enqueue at %v = %v, want %v", s.name, s.at, got, s.want)
		}
	}
}

func TestTooBig(t *testing.T) {
	l := New(Params{}, 4, 100, rand.New(rand.NewPCG(1, 2)))
	if l.Enqueue(t0, make([]byte, 101)) {
		t.Fatal("101-byte packet accepted into 100-byte slots")
	}
	if st := l.Stats(); st.DroppedBig != 1 || st.DroppedBytes != 101 {
		t.Errorf("stats %+v", st)
	}
}
