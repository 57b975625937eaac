package reorder

import (
	"testing"
	"time"
)

// With repair on, a loss that rule (b) would release at once waits for the
// re-sent copy, which fills the gap; without a copy the (longer) deadline
// still releases it.
func TestRepairWaitsForCopy(t *testing.T) {
	setup := func(t *testing.T, repair bool) *harness {
		h := newHarness(t, Config{})
		// Two paths, both delivering: path 0 at 10 ms, path 1 at 30 ms one way.
		h.push(10, 0, 0, 0, 0, true)
		h.push(30, 0, 1, 1, 0, true)
		h.drain(30, "0/0 0/1")
		if repair {
			h.b.SetRepair(ms(30), 20*time.Millisecond)
		}
		// seq 2 (on path 1) is lost; seq 3 on path 0 and seq 4 on path 1 arrive:
		// every live path has delivered something sent after seq 3.
		h.push(12, 0, 3, 0, 2, true)
		h.push(35, 0, 4, 1, 5, true)
		return h
	}
	t.Run("without repair rule (b) releases", func(t *testing.T) {
		h := setup(t, false)
		h.drain(35, "0/3 0/4")
	})
	t.Run("with repair the copy fills the gap", func(t *testing.T) {
		h := setup(t, true)
		h.drain(35, "")
		if hold := h.b.Hold(); hold < 20*time.Millisecond {
			t.Fatalf("hold = %v, want at least the 20 ms repair allowance", hold)
		}
		h.push(45, 0, 2, 0, 35, true) // the re-sent copy, on the fast path
		h.drain(45, "0/2 0/3 0/4")
	})
	t.Run("with repair and no copy the deadline releases", func(t *testing.T) {
		h := setup(t, true)
		d, ok := h.b.NextDeadline()
		if !ok {
			t.Fatal("no deadline")
		}
		h.drain(float64(d.Sub(t0))/1e6-0.1, "")
		h.drain(float64(d.Sub(t0))/1e6, "0/3 0/4")
	})
}

// TestExpectHoldsForARepairInTurn: a gap due at its deadline waits while the receiver has
// just seen another loss (Expect), since the copy of a lost repair may be what fills it,
// until the repair allowance after that loss has passed, and never past MaxHold.
func TestExpectHoldsForARepairInTurn(t *testing.T) {
	setup := func(t *testing.T, cfg Config) *harness {
		h := newHarness(t, cfg)
		h.push(10, 0, 0, 0, 0, true)
		h.push(30, 0, 1, 1, 0, true)
		h.drain(30, "0/0 0/1")
		h.b.SetRepair(ms(30), 20*time.Millisecond)
		h.push(12, 0, 3, 0, 2, true) // seq 2 lost
		h.push(35, 0, 4, 1, 5, true)
		return h
	}
	t.Run("the gap waits for the allowance after the last loss seen", func(t *testing.T) {
		h := setup(t, Config{})
		d, ok := h.b.NextDeadline()
		if !ok {
			t.Fatal("no deadline")
		}
		due := float64(d.Sub(t0)) / 1e6
		h.b.Expect(ms(due - 1)) // the repair of seq 2 was lost too, and seen lost
		if d2, _ := h.b.NextDeadline(); !d2.Equal(ms(due - 1 + 20)) {
			t.Errorf("NextDeadline = %v after Expect, want %v", d2.Sub(t0), ms(due-1+20).Sub(t0))
		}
		h.drain(due, "")
		h.drain(due+18, "")
		h.push(due+18.5, 0, 2, 0, due+10, true) // the second copy
		h.drain(due+18.5, "0/2 0/3 0/4")
	})
	t.Run("without the copy it is released after the allowance", func(t *testing.T) {
		h := setup(t, Config{})
		d, _ := h.b.NextDeadline()
		due := float64(d.Sub(t0)) / 1e6
		h.b.Expect(ms(due - 1))
		h.drain(due+18.9, "")
		h.drain(due+19, "0/3 0/4")
	})
	t.Run("never past MaxHold", func(t *testing.T) {
		h := setup(t, Config{MaxHold: 60 * time.Millisecond})
		// The gap formed at 12 ms; a loss seen at 70 ms would hold it to 90 ms.
		h.b.Expect(ms(70))
		if d, _ := h.b.NextDeadline(); d.After(ms(72)) {
			t.Errorf("NextDeadline = %v, want at most the gap's MaxHold (72 ms)", d.Sub(t0))
		}
		h.drain(72, "0/3 0/4")
	})
}
