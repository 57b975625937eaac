package session

import (
	"fmt"
	"testing"
	"testing/synctest"
	"time"

	"github.com/bondtun/bondtun/internal/memnet"
)

// TestTailLossRepaired: the last packets of a burst are lost on both paths and no data
// follows them, so no later data packet reveals the gap to the receiver. The reports the
// ends exchange for a while after data (reportElicitWindow, with a copy on a spare path)
// carry packet numbers on every path and reveal it, and liveness probes a path whose data
// goes unanswered: the burst is delivered whole, within a few round trips, with no
// separate tail-loss probe.
func TestTailLossRepaired(t *testing.T) {
	for _, tail := range []int{1, 3, 20} {
		t.Run(fmt.Sprintf("tail=%d", tail), func(t *testing.T) {
			synctest.Test(t, func(t *testing.T) {
				links := []memnet.LinkConfig{cable(), dsl()}
				sn := newSimN(t, 1, links, links)
				defer sn.stop()
				sn.send(10, 1000)
				time.Sleep(200 * time.Millisecond)
				if r := sn.check(); r.lost != 0 {
					t.Fatalf("%d of the first 10 messages lost on a clean link", r.lost)
				}
				for i, l := range links {
					l.Down = true
					sn.net.SetLink(simUplink(i), simS, l)
				}
				sn.send(tail, 1000)
				time.Sleep(3 * time.Millisecond) // the pacer lets the tail out
				for i, l := range links {
					sn.net.SetLink(simUplink(i), simS, l)
				}
				begin := time.Now()
				for sn.check().lost > 0 && time.Since(begin) < 2*time.Second {
					time.Sleep(time.Millisecond)
				}
				took := time.Since(begin)
				r := sn.check()
				c := sn.client.Session().Counters()
				t.Logf("lost %d, took %v, repaired %d", r.lost, took, c.TxRepaired.Load())
				if r.lost != 0 {
					t.Fatalf("%d of the %d tail messages never arrived", r.lost, tail)
				}
				// A probe one RTT (20 ms) and a little after the tail, its NACK, and the
				// copies' own trip.
				if took > 150*time.Millisecond {
					t.Errorf("the tail took %v to arrive", took)
				}
			})
		})
	}
}
