package session

import (
	"testing"
	"testing/synctest"
	"time"

	"github.com/bondtun/bondtun/internal/memnet"
)

// TestFlappingPathDoesNotClogTheOther: a greedy stream over a 100 and a 20 Mbit/s link, and
// the fast link stalls three times for 300 ms (long enough to make its path suspect) and
// recovers. Each time the fast path's local queue moved to the slow one whole, 440 ms at
// the slow path's rate ahead of its own packets; moved only as far as failoverQueueBudget
// allows, the slow path's local queue stays near that budget (the rest waits for the fast
// path's recovery), and the stream goes on in order with no more loss.
func TestFlappingPathDoesNotClogTheOther(t *testing.T) {
	synctest.Test(t, func(t *testing.T) {
		fast := memnet.LinkConfig{Delay: 5 * time.Millisecond, RateBps: 100e6, Queue: 20 * time.Millisecond}
		slow := memnet.LinkConfig{Delay: 40 * time.Millisecond, RateBps: 20e6, Queue: 250 * time.Millisecond}
		sn := newSimN(t, 1, []memnet.LinkConfig{fast, slow}, []memnet.LinkConfig{fast, slow})
		defer sn.stop()
		const size = 1200
		sn.sendGreedy(1500*time.Millisecond, size)
		s := sn.client.Session()
		var worst time.Duration
		watch := func() {
			for _, pi := range s.Paths() {
				if pi.ID>>4 == 1 && pi.RateBps > 0 {
					worst = max(worst, time.Duration(float64(pi.QueuedB*8)/float64(pi.RateBps)*float64(time.Second)))
				}
			}
		}
		stalled := fast
		stalled.Down = true
		for range 3 {
			sn.net.SetLink(simUplink(0), simS, stalled)
			sn.net.SetLink(simS, simUplink(0), stalled)
			for range 30 {
				sn.sendGreedy(10*time.Millisecond, size)
				watch()
			}
			sn.net.SetLink(simUplink(0), simS, fast)
			sn.net.SetLink(simS, simUplink(0), fast)
			for range 50 {
				sn.sendGreedy(10*time.Millisecond, size)
				watch()
			}
		}
		time.Sleep(2 * time.Second)
		r := sn.check()
		t.Logf("slow path's local queue at most %v of its rate; repaired %d, delivered %d lost %d, max gap %v",
			worst, s.Counters().TxRepaired.Load(), r.delivered, r.lost, r.maxGap)
		if worst > 250*time.Millisecond {
			t.Errorf("the slow path's local queue reached %v of its rate", worst)
		}
	})
}
