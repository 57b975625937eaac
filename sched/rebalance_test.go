package sched

import (
	"math"
	"testing"
)

// A thin path (0.8 Mbit/s) beside a fast one (50 Mbit/s), both 30 ms one way.
func thin() Path {
	return Path{ID: 0x20, Usable: true, Rate: 1e5, OWD: 30 * ms, MinRTT: 60 * ms, SRTT: 60 * ms}
}

func fast() Path {
	return Path{ID: 0x00, Usable: true, Rate: 6.25e6, OWD: 30 * ms, MinRTT: 60 * ms, SRTT: 60 * ms}
}

// queued sets p's local bulk queue to q bytes, on top of its bandwidth-delay product in
// flight.
func queued(q int) func(*Path) {
	return func(p *Path) {
		p.Queued = q
		p.Inflight = int(p.Rate*travelTime(p).Seconds()) + q
	}
}

func TestRebalance(t *testing.T) {
	tests := []struct {
		name     string
		paths    []Path
		from, to int
		moveMin  int // least bytes expected to move, 0: none
	}{
		{"no paths", nil, -1, -1, 0},
		{"one path", []Path{with(thin(), queued(150_000))}, -1, -1, 0},
		// 150 KB at 0.1 MB/s: 1.5 s of waiting beside an empty 50 Mbit/s path.
		{"thin path over-full", []Path{with(fast(), queued(0)), with(thin(), queued(150_000))}, 1, 0, 140_000},
		// 10 ms of queue on each: balanced, as EAT leaves them.
		{"balanced", []Path{with(fast(), queued(62_500)), with(thin(), queued(1_000))}, -1, -1, 0},
		// Within the margin: 15 ms more on the thin path.
		{"inside the margin", []Path{with(fast(), queued(0)), with(thin(), queued(1_500))}, -1, -1, 0},
		// Only the bulk queue moves: repairs and small packets stay.
		{"priority stays", []Path{with(fast(), queued(0)), with(with(thin(), queued(150_000)), func(p *Path) { p.PrioQueued = 150_000 })}, -1, -1, 0},
		// A backup takes nothing while a primary is usable.
		{"backup not a target", []Path{with(with(fast(), queued(0)), func(p *Path) { p.Backup = true }), with(thin(), queued(150_000))}, -1, -1, 0},
		{"unusable not a target", []Path{with(with(fast(), queued(0)), unusable), with(thin(), queued(150_000))}, -1, -1, 0},
	}
	for _, tt := range tests {
		from, to, bytes := Rebalance(tt.paths)
		if tt.moveMin == 0 {
			if bytes != 0 {
				t.Errorf("%s: moves %d bytes from %d to %d, want none", tt.name, bytes, from, to)
			}
			continue
		}
		if from != tt.from || to != tt.to || bytes < tt.moveMin {
			t.Errorf("%s: moves %d bytes from %d to %d, want ≥ %d from %d to %d", tt.name, bytes, from, to, tt.moveMin, tt.from, tt.to)
		}
		if q := tt.paths[from].Queued - tt.paths[from].PrioQueued; bytes > q {
			t.Errorf("%s: moves %d bytes, more than the %d queued", tt.name, bytes, q)
		}
	}
}

// TestRebalanceEqualises: moving what Rebalance says leaves the two tails' arrivals within
// one margin of each other, so a second call moves nothing.
func TestRebalanceEqualises(t *testing.T) {
	paths := []Path{with(fast(), queued(0)), with(thin(), queued(150_000))}
	from, to, bytes := Rebalance(paths)
	if bytes == 0 {
		t.Fatal("nothing to move")
	}
	paths[from].Queued -= bytes
	paths[from].Inflight -= bytes
	paths[to].Queued += bytes
	paths[to].Inflight += bytes
	if d := math.Abs(arrival(&paths[from], 0) - arrival(&paths[to], 0)); d > RebalanceMargin.Seconds() {
		t.Errorf("after the move the tails arrive %.1f ms apart", d*1e3)
	}
	if _, _, again := Rebalance(paths); again != 0 {
		t.Errorf("a second call moves %d bytes more", again)
	}
}
