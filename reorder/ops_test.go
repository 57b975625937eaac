package reorder

import (
	"testing"
	"time"
)

// opsMaxPackets is small so that overflow and far jumps happen often.
const opsMaxPackets = 16

// runOps decodes data into operations on a Buffer and checks invariants
// after each one, and returns the final Stats. data[0] even means a fixed 5 ms hold, and then every
// result is also compared with the model; odd means the adaptive hold.
//
// Each operation takes 4 bytes [kind, a, b, c]:
//
//	kind%8 0..3: Push lane a%8, seq near the lane's highest (b), path c%3,
//	             sent (10·path + c>>5)·0.5 ms before now
//	kind%8 4:    Drain
//	kind%8 5:    advance the clock by a·50 µs
//	kind%8 6:    SetLive path a%3, b&1
//	kind%8 7:    Seen on path a%3, sent b·100 µs before now; with a repair
//	             allowance and b ≥ 240, Expect instead
//
// data[0]%4 == 3 (adaptive) also sets a 3 ms repair allowance (SetRepair), which turns
// rule (b) off and lets Expect hold gaps.
func runOps(t *testing.T, data []byte) Stats {
	if len(data) == 0 {
		return Stats{}
	}
	fixed := data[0]%2 == 0
	cfg := Config{MaxPackets: opsMaxPackets}
	if fixed {
		cfg.MinHold, cfg.MaxHold = 5*time.Millisecond, 5*time.Millisecond
	}
	b := New[pkt](cfg)
	m := newModel(opsMaxPackets, 5*time.Millisecond)
	repair := data[0]%4 == 3
	if repair {
		b.SetRepair(t0, 3*time.Millisecond)
	}
	var (
		now       int64
		high      [8]uint64
		last      [8]uint64
		delivered [8]bool
		accepted  uint64
		got       []pkt
	)
	for i := range high {
		high[i] = 1000
	}
	check := func(out []pkt) {
		for _, p := range out {
			if delivered[p.lane] && p.seq <= last[p.lane] {
				t.Fatalf("lane %d delivered %d after %d", p.lane, p.seq, last[p.lane])
			}
			delivered[p.lane], last[p.lane] = true, p.seq
		}
	}
	drain := func() {
		got = b.Drain(t0.Add(time.Duration(now)), got[:0])
		check(got)
		if d, ok := b.NextDeadline(); ok && !d.After(t0.Add(time.Duration(now))) {
			t.Fatalf("after Drain at %v a deadline at %v is still pending", now, d.Sub(t0))
		}
		if fixed {
			want := m.drain(now)
			if !samePerLane(got, want) {
				t.Fatalf("Drain at %v = %v, model %v", now, got, want)
			}
		}
	}
	for ops := data[1:]; len(ops) >= 4; ops = ops[4:] {
		kind, a, c := ops[0]%8, ops[1], ops[3]
		at := t0.Add(time.Duration(now))
		switch kind {
		case 0, 1, 2, 3:
			lane, path := a%8, c%3
			seq := high[lane] + uint64(ops[2]%16) - 3
			if ops[2] >= 250 {
				seq = high[lane] + 40 // beyond MaxPackets: a far jump
			}
			high[lane] = max(high[lane], seq)
			// Path p is about 5·p ms slower than path 0, plus jitter.
			sent := now - (int64(path)*10+int64(c>>5))*int64(500*time.Microsecond)
			ok := b.Push(at, lane, seq, path, t0.Add(time.Duration(sent)), pkt{lane, seq})
			if ok {
				accepted++
			}
			if fixed {
				if want := m.push(now, lane, seq, path, sent); ok != want {
					t.Fatalf("Push(%d/%d) = %v, model %v", lane, seq, ok, want)
				}
			}
		case 4:
			drain()
		case 5:
			now += int64(a) * int64(50*time.Microsecond)
		case 6:
			b.SetLive(at, a%3, ops[2]&1 == 1)
			if fixed {
				m.setLive(now, a%3, ops[2]&1 == 1)
			}
		case 7:
			if repair && ops[2] >= 240 {
				b.Expect(at)
				break
			}
			sent := now - int64(ops[2])*int64(100*time.Microsecond)
			b.Seen(at, a%3, t0.Add(time.Duration(sent)))
			if fixed {
				m.seen(now, a%3, sent)
			}
		}
		if b.Len() > opsMaxPackets {
			t.Fatalf("Len = %d > MaxPackets", b.Len())
		}
		if fixed {
			if b.Len() != m.heldTotal() {
				t.Fatalf("Len = %d, model %d", b.Len(), m.heldTotal())
			}
			d, ok := b.NextDeadline()
			_, at, mok := m.oldest()
			if ok != mok || ok && d.Sub(t0) != time.Duration(at+m.hold) {
				t.Fatalf("NextDeadline = %v %v, model %v %v", d.Sub(t0), ok, time.Duration(at+m.hold), mok)
			}
		}
	}
	// With no live path left, everything held must come out (with a repair allowance,
	// which turns rule (b) off, once MaxHold has passed).
	if repair {
		now += int64(DefaultMaxHold) + 1
	}
	for p := range uint8(3) {
		b.SetLive(t0.Add(time.Duration(now)), p, false)
		if fixed {
			m.setLive(now, p, false)
		}
	}
	drain()
	if b.Len() != 0 {
		t.Fatalf("Len = %d after all paths died", b.Len())
	}
	s := b.Stats()
	if s.Delivered != accepted {
		t.Fatalf("delivered %d of %d accepted items", s.Delivered, accepted)
	}
	if fixed && s != m.stats {
		t.Fatalf("Stats = %+v, model %+v", s, m.stats)
	}
	return s
}

// samePerLane reports whether a and b hold the same sequence in each lane.
func samePerLane(a, b []pkt) bool {
	if len(a) != len(b) {
		return false
	}
	var la, lb [8][]uint64
	for _, p := range a {
		la[p.lane] = append(la[p.lane], p.seq)
	}
	for _, p := range b {
		lb[p.lane] = append(lb[p.lane], p.seq)
	}
	for i := range la {
		if len(la[i]) != len(lb[i]) {
			return false
		}
		for j := range la[i] {
			if la[i][j] != lb[i][j] {
				return false
			}
		}
	}
	return true
}

func FuzzBuffer(f *testing.F) {
	f.Add([]byte{0, 0, 0, 100, 0, 0, 0, 102, 0, 4, 0, 0, 0, 5, 200, 0, 0, 4, 0, 0, 0})
	f.Add([]byte{1, 6, 1, 1, 0, 0, 1, 101, 4, 0, 1, 103, 8, 7, 1, 50, 0, 4, 0, 0, 0})
	f.Fuzz(func(t *testing.T, data []byte) {
		if len(data) > 2048 {
			data = data[:2048] // keeps each run, and minimizing, fast
		}
		runOps(t, data)
	})
}
