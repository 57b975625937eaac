package sched

import (
	"testing"
	"time"
)

func TestPacer(t *testing.T) {
	const rate = 10e6 // bytes/s: paced at 12.5 MB/s, burst 2 ms = 25 kB
	t0 := time.Unix(1000, 0)
	type step struct {
		at   time.Duration // since t0
		size int
		want bool
	}
	tests := []struct {
		name  string
		rate  float64
		steps []step
	}{
		{"first burst, then nothing until refilled", rate, []step{
			{0, 20000, true}, {0, 4000, true}, {0, 2000, true}, // 26 kB: the last goes into debt
			{0, 1000, false},
			{40 * time.Microsecond, 1000, false}, // +500 B: still in debt (−1000 + 500)
			{200 * time.Microsecond, 1500, true}, // +2500 B by now
		}},
		{"a long pause refills one burst only", rate, []step{
			{0, 25000, true}, {0, 10, false},
			{time.Second, 25000, true}, {time.Second, 10, false},
		}},
		{"at the pacing rate (1500 B per 120 µs) every datagram passes", rate, []step{
			{0, 25000, true},
			{120 * time.Microsecond, 1500, true}, {240 * time.Microsecond, 1500, true}, {360 * time.Microsecond, 1500, true},
		}},
		{"at twice the pacing rate every other one waits", rate, []step{
			{0, 25000, true},
			{60 * time.Microsecond, 1500, true},   // 750 B of credit: goes, 750 in debt
			{120 * time.Microsecond, 1500, false}, // back to 0
			{180 * time.Microsecond, 1500, true},
		}},
		{"slow path keeps the minimum burst", 1e5, []step{
			{0, MinPacingBurst, true}, {0, 1, false},
		}},
		{"no rate, no pacing", 0, []step{{0, 1 << 20, true}, {0, 1 << 20, true}}},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			var p Pacer
			for i, s := range tt.steps {
				if got := p.Allow(t0.Add(s.at), PacingRate(tt.rate, false), s.size); got != s.want {
					t.Fatalf("step %d (%v, %d B): Allow = %v, want %v (tokens %.0f)", i, s.at, s.size, got, s.want, p.tokens)
				}
			}
		})
	}
}

func BenchmarkPacer(b *testing.B) {
	var p Pacer
	now := time.Unix(1000, 0)
	b.ReportAllocs()
	for i := 0; i < b.N; i++ {
		now = now.Add(time.Microsecond)
		p.Allow(now, PacingRate(12.5e6, false), 1500)
	}
}
