package pathstat

import (
	"math"
	"testing"
	"time"
)

// FuzzStats drives Stats with a byte-encoded stream of events, 4 bytes an
// event, and checks its invariants against a simple reference model after
// each one. Packet numbers are consecutive, as the protocol requires;
// feedback may name any packet, including ones never sent.
func FuzzStats(f *testing.F) {
	f.Add([]byte{0, 1, 5, 0xdc, 0, 1, 5, 0xdc, 1, 0, 1, 0, 2, 0, 200, 0})
	f.Add([]byte{0, 255, 255, 255, 1, 0, 0, 1, 1, 255, 255, 0, 1, 0, 0, 0})
	f.Fuzz(func(t *testing.T, ops []byte) {
		now := simStart
		s := New(now)
		var sizes []int // model: size of every packet sent, by packet number
		var cum []uint64
		acked, hasAcked := uint64(0), false
		for ; len(ops) >= 4; ops = ops[4:] {
			kind, a, b, c := ops[0]%3, uint64(ops[1]), uint64(ops[2]), ops[3]
			now = now.Add(time.Duration(a) * 10 * time.Microsecond)
			switch kind {
			case 0:
				size := int(b<<8 | uint64(c))
				s.OnSent(now, uint64(len(sizes)), size)
				sizes = append(sizes, size)
				prev := uint64(0)
				if len(cum) > 0 {
					prev = cum[len(cum)-1]
				}
				cum = append(cum, prev+uint64(size))
			case 1:
				highest := a<<8 | b
				lostN := min(uint64(c), highest+1)
				var bytes uint64
				if highest < uint64(len(cum)) {
					bytes = cum[highest]
				}
				s.OnFeedback(now, highest, uint32(highest+1-lostN), bytes, time.Duration(c)*time.Millisecond, time.Duration(c%7)*time.Millisecond)
				if highest < uint64(len(sizes)) && (!hasAcked || highest > acked) {
					acked, hasAcked = highest, true
				}
			case 2:
				s.OnRTTSample(now, time.Duration(int64(a<<8|b)-100)*time.Microsecond)
			}
			checkInvariants(t, s, sizes, acked, hasAcked)
		}
	})
}

func checkInvariants(t *testing.T, s *Stats, sizes []int, acked uint64, hasAcked bool) {
	t.Helper()
	want := 0
	for pn := len(sizes) - 1; pn >= 0 && pn >= len(sizes)-DefaultRingSize; pn-- {
		if hasAcked && uint64(pn) <= acked {
			break
		}
		want += sizes[pn]
	}
	if got := s.Inflight(); got != want {
		t.Fatalf("Inflight = %d, model %d", got, want)
	}
	if s.Sent() != uint64(len(sizes)) {
		t.Fatalf("Sent = %d, model %d", s.Sent(), len(sizes))
	}
	if hasAcked && s.Lost() > acked+1 || !hasAcked && s.Lost() != 0 {
		t.Fatalf("Lost = %d with highest acked %d (%v)", s.Lost(), acked, hasAcked)
	}
	if r := s.LossRate(); !(r >= 0 && r <= 1) {
		t.Fatalf("LossRate = %v", r)
	}
	if r := s.DeliveryRate(); !(r >= 0) || math.IsInf(r, 0) {
		t.Fatalf("DeliveryRate = %v", r)
	}
	if s.SRTT() < 0 || s.RTTVar() < 0 || s.MinRTT() < 0 {
		t.Fatalf("SRTT %v RTTVar %v MinRTT %v", s.SRTT(), s.RTTVar(), s.MinRTT())
	}
}
