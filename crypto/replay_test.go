package crypto

import (
	"fmt"
	"testing"
)

// replayStep is one packet offered to the window and whether it must pass.
type replayStep struct {
	pn   uint64
	want bool
}

// runReplay feeds steps to w; each step runs Check then Update, which in a
// single-threaded receiver must agree. Failures name the step's number.
func runReplay(t *testing.T, w *ReplayWindow, steps []replayStep) {
	t.Helper()
	for i, s := range steps {
		if got := w.Check(s.pn); got != s.want {
			t.Fatalf("step %d: Check(%d) = %v, want %v", i+1, s.pn, got, s.want)
		}
		if got := w.Update(s.pn); got != s.want {
			t.Fatalf("step %d: Update(%d) = %v, want %v", i+1, s.pn, got, s.want)
		}
	}
}

// Constants of the vectors ported from wireguard-go replay/replay_test.go
// (itself ported from the Linux kernel). There the window accepts counters
// up to windowSize behind the highest and T_LIM is windowSize+1; here
// packets up to ReplayWindowSize-1 behind are accepted, so T_LIM is
// ReplayWindowSize. The reject limit is the first packet number past 48 bits.
const (
	maxBehind = ReplayWindowSize - 1
	tLim      = ReplayWindowSize
	pnLimit   = MaxPacketNumber + 1
)

func TestReplayVectors(t *testing.T) {
	var w ReplayWindow
	runReplay(t, &w, []replayStep{
		{0, true},                       // 1
		{1, true},                       // 2
		{1, false},                      // 3 duplicate
		{9, true},                       // 4 jump
		{8, true},                       // 5 late
		{7, true},                       // 6
		{7, false},                      // 7 duplicate of late
		{tLim, true},                    // 8
		{tLim - 1, true},                // 9
		{tLim - 1, false},               // 10
		{tLim - 2, true},                // 11
		{2, true},                       // 12 oldest still inside
		{2, false},                      // 13
		{tLim + 16, true},               // 14
		{3, false},                      // 15 now outside
		{tLim + 16, false},              // 16
		{tLim * 4, true},                // 17 far jump
		{tLim*4 - (tLim - 1), true},     // 18 window edge, inside
		{10, false},                     // 19
		{tLim*4 - tLim, false},          // 20 window edge, outside
		{tLim*4 - (tLim + 1), false},    // 21
		{tLim*4 - (tLim - 2), true},     // 22
		{tLim*4 + 1 - tLim, false},      // 23 same as 18
		{0, false},                      // 24
		{pnLimit, false},                // 25 past 48 bits
		{pnLimit - 1, true},             // 26 the largest packet number
		{pnLimit, false},                // 27
		{pnLimit - 1, false},            // 28
		{pnLimit - 2, true},             // 29
		{pnLimit + 1, false},            // 30
		{pnLimit + 2, false},            // 31
		{pnLimit - 2, false},            // 32
		{pnLimit - 3, true},             // 33
		{0, false},                      // 34
		{1<<64 - 1, false},              // 35 nowhere near 48 bits
		{pnLimit - 1 - maxBehind, true}, // 36 edge below the largest
	})
}

// seq returns steps for from..to (inclusive, either direction), all want.
func seq(from, to uint64, want bool) []replayStep {
	var s []replayStep
	for i := from; ; {
		s = append(s, replayStep{i, want})
		if i == to {
			return s
		}
		if from < to {
			i++
		} else {
			i--
		}
	}
}

func cat(parts ...[]replayStep) []replayStep {
	var s []replayStep
	for _, p := range parts {
		s = append(s, p...)
	}
	return s
}

func TestReplayBulk(t *testing.T) {
	ring := uint64(replayRingBlocks * replayBlockBits)
	tests := []struct {
		name  string
		steps []replayStep
	}{
		// Bulk tests 1–6 of wireguard-go, with windowSize = maxBehind.
		{"in order then oldest", cat(seq(1, maxBehind, true), []replayStep{{0, true}, {0, false}})},
		{"in order from 2 then edge", cat(seq(2, maxBehind+1, true), []replayStep{{1, true}, {0, false}})},
		{"descending full window", seq(maxBehind+1, 1, true)},
		{"descending then too old", cat(seq(maxBehind+2, 2, true), []replayStep{{0, false}})},
		{"descending then advance", cat(seq(maxBehind, 1, true), []replayStep{{maxBehind + 1, true}, {0, false}})},
		{"descending then zero then advance", cat(seq(maxBehind, 1, true), []replayStep{{0, true}, {maxBehind + 1, true}})},
		// Ring wrap: several trips round the ring in order, then the whole
		// window replayed (all rejected) and one step past its edge.
		{"ring wraps in order", cat(seq(0, 3*ring+100, true),
			seq(3*ring+100, 3*ring+100-maxBehind, false),
			[]replayStep{{3*ring + 100 - tLim, false}})},
		// After a jump of exactly one ring, stale bits of the old window
		// must not reject the new window's packets.
		{"jump of one ring", cat(seq(0, 200, true), seq(ring+200, ring+1, true), seq(ring+200, ring+1, false))},
		// A jump of less than a window keeps the overlap's history.
		{"jump inside window", cat(seq(0, 100, true), []replayStep{{2000, true}, {50, false}, {101, true}, {1999, true}, {1999, false}})},
		// Jumps that land on block boundaries.
		{"block boundaries", []replayStep{{63, true}, {64, true}, {127, true}, {128, true}, {64, false}, {65, true}, {0, true}, {0, false}}},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			var w ReplayWindow
			runReplay(t, &w, tt.steps)
		})
	}
}

// TestReplayTwoStep covers the split use: Check passes for both copies of a
// replayed datagram, then only the first Update may succeed; and a packet
// whose Check passed is refused by Update if the window moved past it.
func TestReplayTwoStep(t *testing.T) {
	tests := []struct {
		name string
		run  func(w *ReplayWindow) error
	}{
		{"duplicate between check and update", func(w *ReplayWindow) error {
			// Two copies of datagram 5 both pass the cheap check.
			for range 2 {
				if !w.Check(5) {
					return fmt.Errorf("Check(5) failed on an empty window")
				}
			}
			if !w.Update(5) {
				return fmt.Errorf("first Update(5) failed")
			}
			if w.Update(5) {
				return fmt.Errorf("second Update(5) succeeded")
			}
			return nil
		}},
		{"window moved between check and update", func(w *ReplayWindow) error {
			w.Update(10)
			if !w.Check(9) {
				return fmt.Errorf("Check(9) failed")
			}
			w.Update(10 + ReplayWindowSize)
			if w.Update(9) {
				return fmt.Errorf("Update(9) succeeded after the window moved past it")
			}
			return nil
		}},
		{"check changes nothing", func(w *ReplayWindow) error {
			for range 3 {
				if !w.Check(1 << 40) {
					return fmt.Errorf("Check(1<<40) failed")
				}
			}
			if !w.Update(0) {
				return fmt.Errorf("Update(0) failed: Check moved the window")
			}
			return nil
		}},
		{"reset forgets", func(w *ReplayWindow) error {
			w.Update(7)
			w.Update(100000)
			w.Reset()
			if !w.Update(7) || !w.Update(0) {
				return fmt.Errorf("Reset kept state")
			}
			return nil
		}},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			var w ReplayWindow
			if err := tt.run(&w); err != nil {
				t.Fatal(err)
			}
		})
	}
}

func TestReplayAllocs(t *testing.T) {
	if raceEnabled {
		t.Skip("allocation counts are meaningless under the race detector")
	}
	var w ReplayWindow
	var pn uint64
	allocs := testing.AllocsPerRun(1000, func() {
		pn += 3
		if w.Check(pn) {
			w.Update(pn)
		}
		w.Check(pn - 1)
	})
	if allocs != 0 {
		t.Fatalf("Check+Update allocate %v times", allocs)
	}
}

func BenchmarkReplay(b *testing.B) {
	var w ReplayWindow
	b.ReportAllocs()
	var pn uint64
	for b.Loop() {
		pn++
		// Mild reordering: each pair arrives swapped.
		p := pn ^ 1
		if w.Check(p) {
			w.Update(p)
		}
	}
}

// replayModel is the reference: a set of every accepted packet number and
// the highest one, with the window rule stated directly.
type replayModel struct {
	seen map[uint64]bool
	last uint64
}

func (m *replayModel) inWindow(pn uint64) bool {
	return pn <= MaxPacketNumber && (pn > m.last || m.last-pn < ReplayWindowSize)
}

func (m *replayModel) check(pn uint64) bool { return m.inWindow(pn) && !m.seen[pn] }

func (m *replayModel) update(pn uint64) bool {
	if !m.check(pn) {
		return false
	}
	m.seen[pn] = true
	m.last = max(m.last, pn)
	return true
}

// FuzzReplayWindow decodes data as operations, each two bytes (op, arg):
// op%4 picks Check, Update, Check+Update or (rarely) Reset; op/4%8 picks how
// the packet number is derived from the model's highest one (small step
// forward or back, window edge, far jump, absolute, ...). Window and model
// must agree on every result.
func FuzzReplayWindow(f *testing.F) {
	f.Add([]byte{1, 0, 1, 1, 1, 0, 5, 9, 13, 200, 21, 3})
	f.Add([]byte{9, 1, 25, 0, 29, 0, 1, 2, 2, 2, 17, 4, 3, 0, 1, 0})
	f.Fuzz(func(t *testing.T, data []byte) {
		var w ReplayWindow
		m := replayModel{seen: map[uint64]bool{}}
		for i := 0; i+1 < len(data); i += 2 {
			op, arg := data[i], uint64(data[i+1])
			pn := fuzzPN(m.last, op/4%8, arg)
			switch op % 4 {
			case 0:
				if got, want := w.Check(pn), m.check(pn); got != want {
					t.Fatalf("op %d: Check(%d) = %v, model %v (last %d)", i/2, pn, got, want, m.last)
				}
			case 1, 2:
				if op%4 == 2 {
					if got, want := w.Check(pn), m.check(pn); got != want {
						t.Fatalf("op %d: Check(%d) = %v, model %v (last %d)", i/2, pn, got, want, m.last)
					}
				}
				if got, want := w.Update(pn), m.update(pn); got != want {
					t.Fatalf("op %d: Update(%d) = %v, model %v (last %d)", i/2, pn, got, want, m.last)
				}
			case 3:
				if arg == 0 { // rare, so sequences build up state
					w.Reset()
					m = replayModel{seen: map[uint64]bool{}}
				}
			}
		}
	})
}

// fuzzPN derives a packet number from the highest one seen.
func fuzzPN(last uint64, mode byte, arg uint64) uint64 {
	switch mode {
	case 0:
		return last + arg // forward, small
	case 1:
		return last - arg // back, small (wraps below 0 to huge: rejected)
	case 2:
		return last - ReplayWindowSize + arg%8 // around the window edge
	case 3:
		return last + arg*replayBlockBits // forward by blocks
	case 4:
		return last + arg<<12 // forward by windows, past the ring
	case 5:
		return arg // absolute, near zero
	case 6:
		return MaxPacketNumber - arg%4 + 2 // around the 48-bit limit
	default:
		return last - arg*37 // back, within or past the window
	}
}
