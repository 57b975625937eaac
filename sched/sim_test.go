package sched

import (
	"testing"
	"time"
)

// simulate offers size-byte packets at offered bytes/s for dur to s over
// paths, with an injected clock. Each path is a bottleneck of its Rate: a
// packet leaves it once the packets ahead of it have, arrives OWD later, and is
// acknowledged MinRTT after it left, so Inflight counts both the queue and the
// bytes travelling, as the session's feedback does. It returns the bytes sent
// per path counted after warmup, the sequence of picks, and the reorder spread
// after warmup: the most by which a packet arrives before one sent earlier, so
// the time the receiver's reorder buffer must hold.
func simulate(s Scheduler, paths []Path, offered float64, size int, dur, warmup time.Duration) (bytes []float64, picks []int, spread time.Duration) {
	paths = append([]Path(nil), paths...)
	bytes = make([]float64, len(paths))
	interval := time.Duration(float64(size) / offered * float64(time.Second))
	type unacked struct {
		ack  time.Duration
		size int
	}
	pending := make([][]unacked, len(paths))
	lastDepart := make([]time.Duration, len(paths))
	var latest time.Duration // latest arrival of any packet sent so far
	for t := time.Duration(0); t < dur; t += interval {
		for i := range paths {
			for len(pending[i]) > 0 && pending[i][0].ack <= t {
				paths[i].Inflight -= pending[i][0].size
				pending[i] = pending[i][1:]
			}
		}
		i := s.Pick(t0.Add(t), size, paths)
		picks = append(picks, i)
		if i < 0 {
			continue
		}
		p := &paths[i]
		depart := max(t, lastDepart[i]) + time.Duration(float64(size)/p.Rate*float64(time.Second))
		lastDepart[i] = depart
		p.Inflight += size
		pending[i] = append(pending[i], unacked{depart + p.MinRTT, size})
		arrive := depart + p.OWD
		if t >= warmup {
			bytes[i] += float64(size)
			spread = max(spread, latest-arrive)
		}
		latest = max(latest, arrive)
	}
	return bytes, picks, spread
}

func TestScenarioHSplit(t *testing.T) {
	const mbit = 1e6 / 8
	tests := []struct {
		name      string
		mk        func() Scheduler
		offered   float64 // bytes/s
		wantRatio float64 // cable bytes / DSL bytes; 0 means "DSL unused"
		tolerance float64
		// Most the receiver must hold a packet to restore send order.
		maxSpread time.Duration
	}{
		// EAT: the cable keeps at most QueueTarget (10 ms) of queue, so a DSL
		// packet can arrive up to ΔOWD − QueueTarget = 10 ms after cable packets
		// sent after it (plus one DSL packet time, 0.5 ms); DRR makes every
		// cable packet wait ≈ ΔOWD = 20 ms.
		{"EAT at 70 Mbit/s splits 5:2", NewEAT, 70 * mbit, 2.5, 0.10, 20*time.Millisecond - QueueTarget + time.Millisecond},
		{"EAT at 49 Mbit/s uses only cable", NewEAT, 49 * mbit, 0, 0, 0},
		{"EAT at 30 Mbit/s uses only cable", NewEAT, 30 * mbit, 0, 0, 0},
		{"DRR at 70 Mbit/s splits 5:2", NewDRR, 70 * mbit, 2.5, 0.05, 25 * time.Millisecond},
		{"DRR at 30 Mbit/s still splits 5:2", NewDRR, 30 * mbit, 2.5, 0.05, 25 * time.Millisecond},
	}
	for _, tc := range tests {
		t.Run(tc.name, func(t *testing.T) {
			got, _, spread := simulate(tc.mk(), []Path{cable(), dsl()}, tc.offered, 1250, 6*time.Second, 2*time.Second)
			t.Logf("reorder spread %v", spread)
			if spread > tc.maxSpread {
				t.Errorf("reorder spread = %v, want ≤ %v", spread, tc.maxSpread)
			}
			if tc.wantRatio == 0 {
				if got[1] != 0 || got[0] == 0 {
					t.Errorf("bytes cable=%.0f dsl=%.0f, want all on cable", got[0], got[1])
				}
				return
			}
			ratio := got[0] / got[1]
			t.Logf("cable %.0f B, dsl %.0f B, ratio %.3f", got[0], got[1], ratio)
			if ratio < tc.wantRatio*(1-tc.tolerance) || ratio > tc.wantRatio*(1+tc.tolerance) {
				t.Errorf("split cable:DSL = %.3f, want %.2f ±%.0f%%", ratio, tc.wantRatio, tc.tolerance*100)
			}
		})
	}
}

func TestDRRSplitProportionalToRates(t *testing.T) {
	tests := []struct {
		name  string
		rates []float64
	}{
		{"5:2", []float64{6.25e6, 2.5e6}},
		{"equal", []float64{1e6, 1e6}},
		{"three paths 10:3:1", []float64{10e6, 3e6, 1e6}},
		{"slow path quantum below one packet", []float64{50e6, 1e6}},
	}
	for _, tc := range tests {
		t.Run(tc.name, func(t *testing.T) {
			paths := make([]Path, len(tc.rates))
			total := 0.0
			for i, r := range tc.rates {
				paths[i] = Path{ID: uint8(i), Usable: true, Rate: r, OWD: 10 * ms, MinRTT: 20 * ms}
				total += r
			}
			s := NewDRR()
			bytes := make([]float64, len(paths))
			sent := 0.0
			for range 20000 {
				// Inflight stays 0: this checks the quanta alone.
				i := s.Pick(t0, 1250, paths)
				bytes[i] += 1250
				sent += 1250
			}
			for i, r := range tc.rates {
				want := r / total
				if got := bytes[i] / sent; got < want*0.97 || got > want*1.03 {
					t.Errorf("path %d share = %.4f, want %.4f ±3%%", i, got, want)
				}
			}
		})
	}
}

func TestDeterminism(t *testing.T) {
	tests := []struct {
		name string
		mk   func() Scheduler
	}{
		{"eat", NewEAT},
		{"drr", NewDRR},
		{"lowlatency", NewLowLatency},
	}
	paths := []Path{cable(), dsl(), lte(), with(cable(), func(p *Path) { p.ID = 1 })}
	for _, tc := range tests {
		t.Run(tc.name, func(t *testing.T) {
			_, a, _ := simulate(tc.mk(), paths, 9e6, 1250, time.Second, 0)
			_, b, _ := simulate(tc.mk(), paths, 9e6, 1250, time.Second, 0)
			if len(a) != len(b) {
				t.Fatalf("runs made %d and %d picks", len(a), len(b))
			}
			for i := range a {
				if a[i] != b[i] {
					t.Fatalf("pick %d differs: %d vs %d", i, a[i], b[i])
				}
			}
		})
	}
}

func TestPickAllocs(t *testing.T) {
	if raceEnabled {
		t.Skip("allocation counts are not meaningful under the race detector")
	}
	paths := []Path{cable(), dsl(), lte()}
	tests := []struct {
		name string
		s    Scheduler
	}{
		{"eat", NewEAT()},
		{"drr", NewDRR()},
		{"lowlatency", NewLowLatency()},
	}
	for _, tc := range tests {
		t.Run(tc.name, func(t *testing.T) {
			a := testing.AllocsPerRun(1000, func() {
				if i := tc.s.Pick(t0, 1250, paths); i >= 0 {
					paths[i].Inflight = (paths[i].Inflight + 1250) % 200_000
				}
			})
			if a != 0 {
				t.Errorf("Pick allocates %.1f per call, want 0", a)
			}
		})
	}
}

func BenchmarkPick(b *testing.B) {
	for _, mk := range []func() Scheduler{NewEAT, NewDRR, NewLowLatency} {
		s := mk()
		b.Run(s.Name(), func(b *testing.B) {
			paths := []Path{cable(), dsl(), lte(), with(dsl(), func(p *Path) { p.ID = 0x11 })}
			b.ReportAllocs()
			for range b.N {
				if i := s.Pick(t0, 1250, paths); i >= 0 {
					paths[i].Inflight = (paths[i].Inflight + 1250) % 300_000
				}
			}
		})
	}
}
