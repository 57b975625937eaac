package reorder

import (
	"testing"
	"time"
)

// workload replays a steady packet stream into a Buffer: one packet every
// 10 µs over 8 lanes. With skew, every other packet takes a path 20 ms
// slower, so the fast path's packets wait behind the slow path's gaps.
type workload struct {
	b       *Buffer[*[1500]byte]
	item    *[1500]byte
	out     []*[1500]byte
	now     time.Time
	seq     [8]uint64
	skew    bool
	delayed [4096]delayedPkt // ring of slow-path packets in flight
	head    int
	tail    int
}

type delayedPkt struct {
	arrival, sent time.Time
	lane          uint8
	seq           uint64
}

const (
	wlInterval = 10 * time.Microsecond
	wlSkew     = 20 * time.Millisecond
	wlOWD      = 10 * time.Millisecond
)

func newWorkload(skew bool) *workload {
	return &workload{
		b:    New[*[1500]byte](Config{}),
		item: new([1500]byte),
		out:  make([]*[1500]byte, 0, 4096),
		now:  t0,
		skew: skew,
	}
}

// step sends one packet, delivers whatever arrived by now, and drains
// every 64 packets as the receive loop does after a batch.
func (w *workload) step(i int) {
	w.now = w.now.Add(wlInterval)
	sent := w.now.Add(-wlOWD)
	lane := uint8(i / 2 % 8) // each lane alternates between the two paths
	seq := w.seq[lane]
	w.seq[lane]++
	if w.skew && i%2 == 1 {
		w.delayed[w.tail%len(w.delayed)] = delayedPkt{sent.Add(wlOWD + wlSkew), sent, lane, seq}
		w.tail++
	} else {
		w.b.Push(w.now, lane, seq, 0, sent, w.item)
	}
	for w.head < w.tail {
		d := &w.delayed[w.head%len(w.delayed)]
		if d.arrival.After(w.now) {
			break
		}
		w.b.Push(d.arrival, d.lane, d.seq, 1, d.sent, w.item)
		w.head++
	}
	if i%64 == 63 {
		w.out = w.b.Drain(w.now, w.out[:0])
	}
}

func benchmarkPushDrain(b *testing.B, skew bool) {
	w := newWorkload(skew)
	for i := range 10000 { // warm up: rings and queues reach their size
		w.step(i)
	}
	b.ReportAllocs()
	b.ResetTimer()
	for i := 0; b.Loop(); i++ {
		w.step(10000 + i)
	}
}

func BenchmarkPushDrain(b *testing.B) {
	b.Run("InOrder", func(b *testing.B) { benchmarkPushDrain(b, false) })
	b.Run("TwoPathSkew", func(b *testing.B) { benchmarkPushDrain(b, true) })
}

func TestPushDrainAllocs(t *testing.T) {
	if raceEnabled {
		t.Skip("the race detector allocates")
	}
	cases := []struct {
		name string
		skew bool
	}{
		{"in order", false},
		{"two-path skew", true},
	}
	for _, c := range cases {
		t.Run(c.name, func(t *testing.T) {
			w := newWorkload(c.skew)
			i := 0
			for ; i < 10000; i++ {
				w.step(i)
			}
			allocs := testing.AllocsPerRun(5000, func() {
				w.step(i)
				i++
			})
			if allocs != 0 {
				t.Errorf("%v allocs per packet, want 0", allocs)
			}
			if c.skew && w.b.Stats().Filled == 0 {
				t.Error("skewed workload filled no gap: it does not exercise reordering")
			}
		})
	}
}
