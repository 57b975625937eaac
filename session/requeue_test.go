package session

// The local queues' upkeep (requeue.go): rebalance and a suspect path's queue.

import (
	"testing"
	"testing/synctest"
	"time"

	"github.com/bondtun/bondtun/internal/memnet"
)

// TestSlowedPathKeepsTheStream: a greedy message stream over a fast and a slow path, and
// the slow link's rate falls to a twentieth. What EAT had placed on it by the old estimate
// must not hold the stream: most of the fast link's capacity still gets through, with no
// long stall, every lane in order and none twice (check). Rebalance (the tail of a stranded
// local queue moved) usually takes part (39–165 packets moved in 12 runs) but not always
// (none in 1 of 8 runs under -race, 8 at once; why no stranded local queue formed there is
// not established), so the count is logged, not asserted; sched's TestRebalance* hold the
// rule itself.
func TestSlowedPathKeepsTheStream(t *testing.T) {
	synctest.Test(t, func(t *testing.T) {
		a := memnet.LinkConfig{Delay: 10 * time.Millisecond, RateBps: 40e6, Queue: 50 * time.Millisecond}
		b := memnet.LinkConfig{Delay: 20 * time.Millisecond, RateBps: 20e6, Queue: 300 * time.Millisecond}
		sn := greedyPair(t, a, b, 2*time.Second)
		defer sn.stop()
		s := sn.client.Session()
		slow := b
		slow.RateBps = 1e6
		sn.net.SetLink(simUplink(1), simS, slow)
		cut := time.Now()
		sn.sendGreedy(3*time.Second, simMsgSize)
		end := time.Now()
		time.Sleep(3 * time.Second) // what is queued drains
		r := sn.check()
		moved := s.Counters().TxRebalanced.Load()
		rate := sn.goodput(cut.Add(time.Second), end, simMsgSize)
		t.Logf("moved %d, delivered %d lost %d, max gap %v, %.1f Mbit/s after the drop", moved, r.delivered, r.lost, r.maxGap, rate/1e6)
		if want := 0.8 * simCapacity(a, simMsgSize); rate < want {
			t.Errorf("%.1f Mbit/s after the slow link's drop, want ≥ %.1f (most of the fast link)", rate/1e6, want/1e6)
		}
		if r.maxGap > time.Second {
			t.Errorf("deliveries stalled for %v", r.maxGap)
		}
	})
}

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
		sn := greedyPair(t, fast, slow, 1500*time.Millisecond)
		defer sn.stop()
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
				sn.sendGreedy(10*time.Millisecond, simMsgSize)
				watch()
			}
			sn.net.SetLink(simUplink(0), simS, fast)
			sn.net.SetLink(simS, simUplink(0), fast)
			for range 50 {
				sn.sendGreedy(10*time.Millisecond, simMsgSize)
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

// simMsgSize is the message size of the queue tests' greedy streams.
const simMsgSize = 1200

// greedyPair starts a client with uplinks on links a and b (the same both ways) and runs a
// greedy stream of simMsgSize messages over them for warm. It must run in a synctest bubble.
func greedyPair(t *testing.T, a, b memnet.LinkConfig, warm time.Duration) *simNode {
	t.Helper()
	sn := newSimN(t, 1, []memnet.LinkConfig{a, b}, []memnet.LinkConfig{a, b})
	sn.sendGreedy(warm, simMsgSize)
	return sn
}
