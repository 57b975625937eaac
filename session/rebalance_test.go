package session

import (
	"testing"
	"testing/synctest"
	"time"

	"github.com/bondtun/bondtun/internal/memnet"
)

// TestRebalanceMovesStrandedQueue: a greedy message stream over a fast and a slow path,
// and the slow link's rate falls to a twentieth. What EAT had queued on it by the old
// estimate would wait seconds there; rebalance moves the queue's tail to the fast path,
// counted in TxRebalanced, and the receiver still gets every lane in order, none twice
// (check), with the stream going on.
func TestRebalanceMovesStrandedQueue(t *testing.T) {
	synctest.Test(t, func(t *testing.T) {
		a := memnet.LinkConfig{Delay: 10 * time.Millisecond, RateBps: 40e6, Queue: 50 * time.Millisecond}
		b := memnet.LinkConfig{Delay: 20 * time.Millisecond, RateBps: 20e6, Queue: 300 * time.Millisecond}
		sn := newSimN(t, 1, []memnet.LinkConfig{a, b}, []memnet.LinkConfig{a, b})
		defer sn.stop()
		const size = 1200
		sn.sendGreedy(2*time.Second, size)
		s := sn.client.Session()
		slow := b
		slow.RateBps = 1e6
		sn.net.SetLink(simUplink(1), simS, slow)
		cut := time.Now()
		sn.sendGreedy(3*time.Second, size)
		end := time.Now()
		time.Sleep(3 * time.Second) // what is queued drains
		r := sn.check()
		moved := s.Counters().TxRebalanced.Load()
		rate := sn.goodput(cut.Add(time.Second), end, size)
		t.Logf("moved %d, delivered %d lost %d, max gap %v, %.1f Mbit/s after the drop", moved, r.delivered, r.lost, r.maxGap, rate/1e6)
		if moved == 0 {
			t.Error("nothing was moved off the path whose rate fell")
		}
		if want := 0.8 * simCapacity(a, size); rate < want {
			t.Errorf("%.1f Mbit/s after the slow link's drop, want ≥ %.1f (most of the fast link)", rate/1e6, want/1e6)
		}
		if r.maxGap > time.Second {
			t.Errorf("deliveries stalled for %v", r.maxGap)
		}
	})
}
