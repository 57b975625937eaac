package linkemu

import (
	"bytes"
	"encoding/binary"
	"math/rand/v2"
	"strings"
	"testing"
	"time"
)

func splitFields(s string) []string { return strings.Fields(s) }

func FuzzParseRate(f *testing.F) {
	for _, s := range []string{"50mbit", "1.5gbit", "0", "unlimited", "8kbps", "-1bit", "1e300"} {
		f.Add(s)
	}
	f.Fuzz(func(t *testing.T, s string) {
		r, err := ParseRate(s)
		if err != nil {
			return
		}
		if r < 0 {
			t.Fatalf("ParseRate(%q) = %d", s, r)
		}
		if back, err := ParseRate(FormatRate(r)); err != nil || back != r {
			t.Fatalf("%d -> %q -> %d, %v", r, FormatRate(r), back, err)
		}
	})
}

func FuzzParamsSet(f *testing.F) {
	for _, s := range []string{"rate=20mbit", "delay=30ms", "loss=1%", "dist=normal", "cut=true", "x", "queue=-1"} {
		f.Add(s)
	}
	f.Fuzz(func(t *testing.T, kv string) {
		p := Params{RateBps: 1, Delay: 2}
		before := p
		if err := p.Set(kv); err != nil && p != before {
			t.Fatalf("failed Set(%q) changed params: %+v", kv, p)
		}
	})
}

// FuzzLink runs a random sequence of operations and checks the invariants:
// no panic, FIFO order when Reorder is off, delivered bytes are the bytes
// offered, and Enqueued == Delivered + Dropped + Held.
func FuzzLink(f *testing.F) {
	f.Add(uint64(1), []byte{0, 10, 0, 20, 1, 5, 2, 0, 3, 1, 0, 7, 4, 0, 1, 200})
	f.Add(uint64(2), []byte{5, 50, 0, 255, 0, 255, 0, 255, 1, 255, 1, 255})
	f.Fuzz(func(t *testing.T, seed uint64, ops []byte) {
		const slotSize = 64
		p := Params{RateBps: 64e3, QueueBytes: 256, Delay: time.Millisecond}
		l := New(p, 8, slotSize, rand.New(rand.NewPCG(seed, seed)))
		now := t0
		var id uint32
		var lastID uint32
		dst := make([]byte, slotSize)
		for len(ops) >= 2 {
			op, arg := ops[0], ops[1]
			ops = ops[2:]
			switch op % 6 {
			case 0: // enqueue a packet of arg%80 bytes (some too big), tagged with id
				n := max(int(arg)%80, 4)
				b := bytes.Repeat([]byte{byte(id)}, n)
				binary.BigEndian.PutUint32(b, id)
				id++
				l.Enqueue(now, b)
			case 1: // advance the clock
				now = now.Add(time.Duration(arg) * 100 * time.Microsecond)
			case 2, 3: // pop everything due
				for {
					n, ok := l.Pop(now, dst)
					if !ok {
						break
					}
					got := binary.BigEndian.Uint32(dst)
					if !p.Reorder && got < lastID {
						t.Fatalf("packet %d delivered after %d", got, lastID)
					}
					lastID = got
					for _, c := range dst[4:n] {
						if c != byte(got) {
							t.Fatalf("packet %d corrupted", got)
						}
					}
				}
			case 4: // change parameters
				p = Params{RateBps: int64(arg) * 1000, QueueBytes: int(arg) * 4, Delay: time.Duration(arg%16) * time.Millisecond,
					Jitter: time.Duration(arg%5) * time.Millisecond, Loss: float64(arg % 30), NormalJitter: arg&1 == 1}
				l.SetParams(now, p)
			case 5: // cut or restore
				p.Cut = arg&1 == 1
				l.SetParams(now, p)
			}
			st := l.Stats()
			if st.Enqueued != st.Delivered+st.Dropped()+st.Held ||
				st.EnqueuedBytes != st.DeliveredBytes+st.DroppedBytes+st.HeldBytes {
				t.Fatalf("conservation broken: %+v", st)
			}
			if due, ok := l.Next(); ok && due.Before(t0) {
				t.Fatalf("due %v before start", due)
			}
		}
	})
}
