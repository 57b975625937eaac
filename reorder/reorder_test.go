package reorder

import (
	"fmt"
	"strings"
	"testing"
	"time"
)

// pkt is the test item: it names its own lane and sequence.
type pkt struct {
	lane uint8
	seq  uint64
}

var t0 = time.Date(2026, 1, 1, 0, 0, 0, 0, time.UTC)

func ms(f float64) time.Time { return t0.Add(time.Duration(f * float64(time.Millisecond))) }

// harness drives a Buffer with an injected clock.
type harness struct {
	t *testing.T
	b *Buffer[pkt]
}

func newHarness(t *testing.T, cfg Config) *harness {
	return &harness{t: t, b: New[pkt](cfg)}
}

// push sends lane/seq on path, sent at sentMs and arriving at atMs.
func (h *harness) push(atMs float64, lane uint8, seq uint64, path uint8, sentMs float64, wantOK bool) {
	h.t.Helper()
	if ok := h.b.Push(ms(atMs), lane, seq, path, ms(sentMs), pkt{lane, seq}); ok != wantOK {
		h.t.Errorf("Push(%d/%d at %vms) = %v, want %v", lane, seq, atMs, ok, wantOK)
	}
}

// drain drains at atMs and compares with want, e.g. "0/1 0/2".
func (h *harness) drain(atMs float64, want string) {
	h.t.Helper()
	got := h.b.Drain(ms(atMs), nil)
	parts := make([]string, len(got))
	for i, p := range got {
		parts[i] = fmt.Sprintf("%d/%d", p.lane, p.seq)
	}
	if s := strings.Join(parts, " "); s != want {
		h.t.Errorf("Drain at %vms = %q, want %q", atMs, s, want)
	}
}

func (h *harness) live(atMs float64, path uint8, live bool) {
	h.b.SetLive(ms(atMs), path, live)
}

func (h *harness) wantLen(n int) {
	h.t.Helper()
	if got := h.b.Len(); got != n {
		h.t.Errorf("Len = %d, want %d", got, n)
	}
}

func (h *harness) wantDeadline(atMs float64) {
	h.t.Helper()
	d, ok := h.b.NextDeadline()
	if !ok || !d.Equal(ms(atMs)) {
		h.t.Errorf("NextDeadline = %v, %v; want %v", d.Sub(t0), ok, ms(atMs).Sub(t0))
	}
}

func (h *harness) wantHold(lo, hi time.Duration) {
	h.t.Helper()
	if got := h.b.Hold(); got < lo || got > hi {
		h.t.Errorf("Hold = %v, want in [%v, %v]", got, lo, hi)
	}
}

// wantStats compares the named counters; others are not checked.
func (h *harness) wantStats(want map[string]uint64) {
	h.t.Helper()
	s := h.b.Stats()
	got := map[string]uint64{
		"Delivered": s.Delivered, "InOrder": s.InOrder, "Filled": s.Filled,
		"PathsPast": s.PathsPast, "Deadline": s.Deadline, "Overflow": s.Overflow,
		"Jumps": s.Jumps, "Duplicates": s.Duplicates, "Late": s.Late, "HoldCount": s.HoldCount,
	}
	for k, v := range want {
		if got[k] != v {
			h.t.Errorf("Stats.%s = %d, want %d", k, got[k], v)
		}
	}
}

func TestScenarios(t *testing.T) {
	fixed := Config{MinHold: 5 * time.Millisecond, MaxHold: 5 * time.Millisecond}
	cases := []struct {
		name string
		cfg  Config
		run  func(h *harness)
	}{
		{"in order", Config{}, func(h *harness) {
			for i := range uint64(3) {
				h.push(float64(i), 0, i+1, 0, 0, true)
			}
			h.drain(3, "0/1 0/2 0/3")
			h.wantStats(map[string]uint64{"InOrder": 3, "Delivered": 3, "HoldCount": 0})
			if _, ok := h.b.NextDeadline(); ok {
				h.t.Error("NextDeadline pending with no gap")
			}
		}},
		{"first packet starts the lane", Config{}, func(h *harness) {
			h.push(0, 5, 1000, 0, 0, true)
			h.drain(0, "5/1000")
		}},
		{"single gap filled", fixed, func(h *harness) {
			h.live(0, 1, true) // path 1 never delivers: rule (b) cannot fire
			h.push(0, 0, 1, 0, 0, true)
			h.push(1, 0, 3, 0, 1, true)
			h.push(2, 0, 4, 0, 2, true)
			h.drain(2, "0/1")
			h.wantLen(2)
			h.wantDeadline(6) // arrival of 0/3 + 5 ms
			h.push(3, 0, 2, 1, 0.5, true)
			h.drain(3, "0/2 0/3 0/4")
			h.wantLen(0)
			h.wantStats(map[string]uint64{"Filled": 1, "HoldCount": 1, "Deadline": 0})
			if s := h.b.Stats(); s.HoldMax != 2*time.Millisecond {
				h.t.Errorf("HoldMax = %v, want 2ms", s.HoldMax)
			}
		}},
		{"gap of two filled in two steps", fixed, func(h *harness) {
			h.live(0, 1, true)
			h.push(0, 0, 1, 0, 0, true)
			h.push(1, 0, 4, 0, 1, true)
			h.push(2, 0, 3, 0, 1, true) // inside the gap: deadline keeps running from 1 ms
			h.wantDeadline(6)
			h.push(3, 0, 2, 1, 0, true)
			h.drain(3, "0/1 0/2 0/3 0/4")
			h.wantStats(map[string]uint64{"Filled": 1})
		}},
		{"rule b releases with two paths", Config{}, func(h *harness) {
			h.push(10, 0, 1, 0, 0, true)
			h.live(10, 1, true)
			h.push(12, 0, 3, 0, 2, true) // 0/2 was sent at 1 ms on path 1 and lost
			h.push(13, 0, 5, 0, 4, true)
			h.drain(13, "0/1")           // before the 2 ms deadline of 0/3
			h.push(31, 0, 4, 1, 3, true) // path 1 now delivered a packet sent after 0/3
			h.drain(31, "0/3 0/4 0/5")
			h.wantStats(map[string]uint64{"PathsPast": 1, "Deadline": 0})
		}},
		{"rule b needs strictly later send time", Config{MinHold: time.Second, MaxHold: time.Second}, func(h *harness) {
			h.push(0, 0, 1, 0, 0, true)
			h.push(1, 0, 3, 0, 1, true)
			h.push(2, 1, 1, 0, 1, true) // same send time as 0/3: 0/2 may still come
			h.drain(2, "0/1 1/1")
			h.push(3, 1, 2, 0, 1.1, true)
			h.drain(3, "1/2 0/3")
			h.wantStats(map[string]uint64{"PathsPast": 1})
		}},
		{"deadline releases", fixed, func(h *harness) {
			h.live(0, 1, true)
			h.push(0, 0, 1, 0, 0, true)
			h.push(1, 0, 3, 0, 1, true)
			h.wantDeadline(6)
			h.drain(5.999, "0/1")
			h.drain(6, "0/3")
			h.wantStats(map[string]uint64{"Deadline": 1})
			if s := h.b.Stats(); s.HoldMax != 5*time.Millisecond {
				h.t.Errorf("HoldMax = %v, want 5ms", s.HoldMax)
			}
		}},
		{"hold adapts to two paths and back", Config{}, func(h *harness) {
			// Path 0: 10 ms OWD. Path 1: 30 ms ± 1 ms. One packet per ms each.
			for i := range 200 {
				sent := float64(i)
				h.b.Seen(ms(sent+10), 0, ms(sent))
				j := 1.0
				if i%2 == 0 {
					j = -1
				}
				h.b.Seen(ms(sent+30+j), 1, ms(sent))
			}
			h.wantHold(20*time.Millisecond, 26*time.Millisecond)
			h.live(300, 1, false)
			h.wantHold(DefaultMinHold, DefaultMinHold)
			h.live(300, 1, true)
			h.wantHold(20*time.Millisecond, 26*time.Millisecond)
			h.b.SetMaxHold(15 * time.Millisecond)
			h.wantHold(15*time.Millisecond, 15*time.Millisecond)
			h.b.SetMaxHold(0)
			h.wantHold(20*time.Millisecond, 26*time.Millisecond)
		}},
		{"windowed minimum forgets a route change", Config{}, func(h *harness) {
			// Path 0 is 10 ms for 1 s, then 40 ms; path 1 is 30 ms throughout.
			// After 10 s the old 10 ms minimum is gone and path 0's delay
			// is the base, so the hold falls back to the minimum.
			for i := 0; i < 12000; i += 10 {
				owd := 10.0
				if i >= 1000 {
					owd = 30
				}
				h.b.Seen(ms(float64(i)+owd), 0, ms(float64(i)))
				h.b.Seen(ms(float64(i)+30), 1, ms(float64(i)))
			}
			h.wantHold(DefaultMinHold, DefaultMinHold)
		}},
		{"lanes are independent", fixed, func(h *harness) {
			h.live(0, 1, true)
			h.push(0, 3, 1, 0, 0, true)
			h.push(1, 3, 3, 0, 1, true)
			h.push(2, 7, 1, 0, 2, true)
			h.push(3, 7, 2, 0, 3, true)
			h.drain(3, "3/1 7/1 7/2")
			h.drain(6, "3/3")
		}},
		{"duplicate", fixed, func(h *harness) {
			h.live(0, 1, true)
			h.push(0, 0, 1, 0, 0, true)
			h.push(1, 0, 3, 0, 1, true)
			h.push(2, 0, 3, 0, 1, false)
			h.push(3, 0, 1, 0, 0, false) // already delivered
			h.wantStats(map[string]uint64{"Duplicates": 1, "Late": 1})
			h.wantLen(1)
		}},
		{"late packet after release", fixed, func(h *harness) {
			h.live(0, 1, true)
			h.push(0, 0, 1, 0, 0, true)
			h.push(1, 0, 3, 0, 1, true)
			h.drain(6, "0/1 0/3")
			h.push(7, 0, 2, 1, 0.5, false)
			h.drain(7, "")
			h.wantStats(map[string]uint64{"Late": 1, "Deadline": 1})
		}},
		{"overflow passes through", Config{MaxPackets: 4, MinHold: time.Second, MaxHold: time.Second}, func(h *harness) {
			h.live(0, 1, true)
			for lane := range uint8(2) {
				h.push(0, lane, 1, 0, 0, true)
				h.push(1, lane, 3, 0, 1, true)
				h.push(1, lane, 4, 0, 1, true)
			}
			h.wantLen(4)
			h.push(2, 1, 6, 0, 2, true) // full: lane 1's gap goes, 1/6 stays held
			h.wantLen(3)
			h.drain(2, "0/1 1/1 1/3 1/4")
			h.wantStats(map[string]uint64{"Overflow": 1})
		}},
		{"far jump flushes the lane", Config{MaxPackets: 4, MinHold: time.Second, MaxHold: time.Second}, func(h *harness) {
			h.live(0, 1, true)
			h.push(0, 0, 1, 0, 0, true)
			h.push(1, 0, 3, 0, 1, true)
			h.push(2, 0, 100, 0, 2, true)
			h.push(3, 0, 101, 0, 3, true)
			h.push(4, 0, 2, 0, 3, false)
			h.drain(4, "0/1 0/3 0/100 0/101")
			h.wantLen(0)
			h.wantStats(map[string]uint64{"Jumps": 1, "Late": 1})
		}},
		{"path death releases at once", Config{MinHold: time.Second, MaxHold: time.Second}, func(h *harness) {
			h.live(0, 1, true)
			h.push(0, 0, 1, 0, 0, true)
			h.push(1, 0, 3, 0, 1, true)
			h.push(2, 0, 4, 0, 2, true)
			h.drain(2, "0/1")
			h.live(3, 1, false)
			h.drain(3, "0/3 0/4")
			h.wantStats(map[string]uint64{"PathsPast": 1})
			h.push(4, 0, 5, 1, 3, true) // a dead path's packets are still delivered
			h.drain(4, "0/5")
		}},
		{"no live path releases everything", Config{MinHold: time.Second, MaxHold: time.Second}, func(h *harness) {
			h.live(0, 0, false)
			h.push(0, 0, 1, 0, 0, true)
			h.push(1, 0, 3, 0, 1, true)
			h.drain(1, "0/1 0/3")
		}},
	}
	for _, c := range cases {
		t.Run(c.name, func(t *testing.T) { c.run(newHarness(t, c.cfg)) })
	}
}
