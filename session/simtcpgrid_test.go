package session

import (
	"testing"
	"testing/synctest"
	"time"

	"github.com/bondtun/bondtun/internal/memnet"
)

// TestSimTCPModel checks the inner TCP model itself, through the tunnel on one uplink: on
// a clean link it fills the link, and over a lossy one it still delivers the whole stream,
// in order, each segment where it belongs.
func TestSimTCPModel(t *testing.T) {
	t.Run("clean", func(t *testing.T) {
		synctest.Test(t, func(t *testing.T) {
			l := memnet.LinkConfig{Delay: 20 * time.Millisecond, RateBps: 20e6, Queue: 60 * time.Millisecond}
			st := newSimTCP(t, 1, []memnet.LinkConfig{l}, []memnet.LinkConfig{l}, 0)
			st.run(5 * time.Second)
			got := st.goodput(time.Second, 5*time.Second)
			st.stop()
			t.Logf("goodput %.2f Mbit/s of %.2f, retx %d rto %d", got/1e6, tcpCapacity(l)/1e6, st.snd.retransmits, st.snd.timeouts)
			if got < 0.85*tcpCapacity(l) {
				t.Errorf("the model carried %.2f Mbit/s over a clean link of %.2f", got/1e6, tcpCapacity(l)/1e6)
			}
		})
	})
	t.Run("direct", func(t *testing.T) {
		synctest.Test(t, func(t *testing.T) {
			l := memnet.LinkConfig{Delay: 20 * time.Millisecond, RateBps: 20e6, Queue: 60 * time.Millisecond}
			st := newSimTCPDirect(1, l, l, 0)
			st.run(5 * time.Second)
			got := st.goodput(time.Second, 5*time.Second)
			st.stop()
			// straight over the link, a segment's packet is tcpMTU bytes, without the framing
			capacity := l.RateBps * tcpMSS / tcpMTU
			t.Logf("goodput %.2f Mbit/s of %.2f, retx %d rto %d", got/1e6, capacity/1e6, st.snd.retransmits, st.snd.timeouts)
			if got < 0.85*capacity {
				t.Errorf("the model carried %.2f Mbit/s over a clean link of %.2f", got/1e6, capacity/1e6)
			}
		})
	})
	t.Run("lossy-direct", func(t *testing.T) {
		synctest.Test(t, func(t *testing.T) {
			l := memnet.LinkConfig{Delay: 15 * time.Millisecond, Jitter: 3 * time.Millisecond, RateBps: 20e6, Queue: 40 * time.Millisecond, Loss: 0.03}
			const n = 3000
			st := newSimTCPDirect(3, l, l, n)
			st.run(60 * time.Second)
			st.stop()
			t.Logf("%d segments: received %d, retx %d rto %d, dups %d", n, st.rcv.nxt, st.snd.retransmits, st.snd.timeouts, st.rcv.dups)
			if !st.snd.done() || st.rcv.nxt != n {
				t.Errorf("%d of %d segments delivered in order", st.rcv.nxt, n)
			}
			if st.rcv.bad != 0 {
				t.Errorf("%d segments did not carry their own offset", st.rcv.bad)
			}
			if st.snd.retransmits < n/50 {
				t.Errorf("%d retransmissions over a link losing 3 %% both ways", st.snd.retransmits)
			}
		})
	})
	t.Run("lossy", func(t *testing.T) {
		synctest.Test(t, func(t *testing.T) {
			l := memnet.LinkConfig{Delay: 15 * time.Millisecond, RateBps: 20e6, Queue: 40 * time.Millisecond, Loss: 0.03}
			const n = 3000
			st := newSimTCP(t, 2, []memnet.LinkConfig{l}, []memnet.LinkConfig{l}, n)
			st.run(30 * time.Second)
			st.stop()
			t.Logf("%d segments: received %d, retx %d rto %d, dups %d", n, st.rcv.nxt, st.snd.retransmits, st.snd.timeouts, st.rcv.dups)
			if !st.snd.done() || st.rcv.nxt != n {
				t.Errorf("%d of %d segments delivered in order", st.rcv.nxt, n)
			}
			if st.rcv.bad != 0 {
				t.Errorf("%d segments did not carry their own offset", st.rcv.bad)
			}
			if st.snd.retransmits == 0 {
				t.Error("nothing was retransmitted over a link losing 3 %")
			}
		})
	})
}
