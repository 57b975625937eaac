package reorder

import (
	"testing"
	"time"
)

// Postpone keeps a due gap from being released by deadline, within its bounds: MaxPostpone
// past the deadline, MaxHold after the gap's deadline clock started. The gap's packet
// arriving meanwhile fills it as usual.
func TestPostpone(t *testing.T) {
	// One path, a constant delay: the hold is MinHold, 2 ms. seq 1 is missing; seq 2
	// arrives at 1 ms, so the gap's deadline is 3 ms.
	setup := func(t *testing.T, cfg Config) *harness {
		h := newHarness(t, cfg)
		h.b.SetRepair(ms(0), 0)
		h.push(0, 0, 0, 0, 0, true)
		h.drain(0, "0/0")
		h.push(1, 0, 2, 0, 1, true)
		if d, ok := h.b.NextDeadline(); !ok || !d.Equal(ms(3)) {
			t.Fatalf("NextDeadline = %v, %v; want 3ms", d.Sub(t0), ok)
		}
		return h
	}
	wantDeadline := func(t *testing.T, h *harness, atMs float64) {
		t.Helper()
		if d, ok := h.b.NextDeadline(); !ok || !d.Equal(ms(atMs)) {
			t.Fatalf("NextDeadline = %v, %v; want %vms", d.Sub(t0), ok, atMs)
		}
	}
	cfg := Config{MaxHold: 100 * time.Millisecond, MaxPostpone: 30 * time.Millisecond}
	t.Run("filled while postponed", func(t *testing.T) {
		h := setup(t, cfg)
		h.b.Postpone(ms(5))
		wantDeadline(t, h, 5)
		h.drain(3, "")
		h.drain(4.9, "")
		h.b.Postpone(ms(6))
		h.push(5.5, 0, 1, 0, 0.5, true)
		h.drain(5.5, "0/1 0/2")
		if st := h.b.Stats(); st.Filled != 1 || st.Deadline != 0 || st.Late != 0 || st.Postponed != 2 {
			t.Fatalf("stats %+v", st)
		}
		if _, ok := h.b.NextDeadline(); ok {
			t.Fatal("a deadline with no gap")
		}
	})
	t.Run("released when no longer postponed", func(t *testing.T) {
		h := setup(t, cfg)
		h.b.Postpone(ms(5))
		h.drain(4.9, "")
		h.drain(5, "0/2")
		h.push(6, 0, 1, 0, 0.5, false) // late
	})
	t.Run("MaxPostpone bounds it", func(t *testing.T) {
		h := setup(t, cfg)
		h.b.Postpone(ms(1000))
		wantDeadline(t, h, 33)
		h.drain(32.9, "")
		h.drain(33, "0/2")
		if st := h.b.Stats(); st.Deadline != 1 {
			t.Fatalf("stats %+v", st)
		}
	})
	t.Run("MaxHold bounds it", func(t *testing.T) {
		h := setup(t, Config{MaxHold: 20 * time.Millisecond})
		h.b.Postpone(ms(1000))
		wantDeadline(t, h, 21)
		h.drain(20.9, "")
		h.drain(21, "0/2")
	})
	t.Run("a later gap keeps its own deadline", func(t *testing.T) {
		h := setup(t, cfg)
		h.b.Postpone(ms(10))
		h.drain(10, "0/2")
		// Lane 1's gap forms at 20 ms, after the postponement: deadline 22 ms.
		h.push(19, 1, 0, 0, 19, true)
		h.push(20, 1, 2, 0, 20, true)
		h.drain(20, "1/0")
		wantDeadline(t, h, 22)
		h.drain(22, "1/2")
	})
}
