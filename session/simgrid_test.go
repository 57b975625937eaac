package session

import (
	"fmt"
	"math/rand/v2"
	"os"
	"path/filepath"
	"slices"
	"strconv"
	"testing"
	"testing/synctest"
	"time"

	"github.com/bondtun/bondtun/framing"
	"github.com/bondtun/bondtun/internal/memnet"
)

// sendGreedy offers messages of size bytes as fast as the session takes them (the
// library's writer rule: wait while Session.Backlog is at its limit) for d.
func (sn *simNode) sendGreedy(d time.Duration, size int) {
	begin := time.Now()
	for time.Since(begin) < d {
		s := sn.client.Session()
		if s != nil {
			if queued, limit := s.Backlog(); queued < limit {
				sn.send(16, size)
				continue
			}
		}
		time.Sleep(500 * time.Microsecond)
	}
}

// goodput is the payload rate (bit/s) of what was delivered between from and to.
func (sn *simNode) goodput(from, to time.Time, size int) float64 {
	_, at := sn.rec.snapshot()
	n := 0
	for _, t := range at {
		if !t.Before(from) && t.Before(to) {
			n++
		}
	}
	return float64(n*size*8) / to.Sub(from).Seconds()
}

// simCapacity is the payload rate a link carries for messages of size bytes: its rate,
// less the session's framing and the link's loss.
func simCapacity(l memnet.LinkConfig, size int) float64 {
	return l.RateBps * float64(size) / float64(size+framing.Overhead) * (1 - l.Loss)
}

// TestSimAggregationGrid is the sweep of link kinds on the fake clock: random two- and
// three-link combinations (rate ratios up to 10:1, one-way delays 2–60 ms, jitter 0–10 ms,
// queues 5–300 ms, loss 0–2 % on any link, asymmetric return links), each carrying a
// greedy message stream for 4 s. The stream through the bond must never be slower than the
// best link alone could carry (the product's promise, docs/DECISIONS.md), here measured
// against the link's exact capacity for the stream; the ratio to the links' sum is logged.
//
// It is a benchmark of the link classes, not part of the suite: run it with
// BONDTUN_SIMGRID=1 (scripts/bench-simgrid.sh repeats it and sums up). It still fails now
// and then: one inner flow over a jittery, lossy fast link beside a slower one sometimes
// collapses to half of the best link (issue 12), and the grid shows it in seconds.
func TestSimAggregationGrid(t *testing.T) {
	if os.Getenv("BONDTUN_SIMGRID") == "" {
		t.Skip("a benchmark: set BONDTUN_SIMGRID=1 (scripts/bench-simgrid.sh)")
	}
	const size = 1200
	combos := 24
	if n, err := strconv.Atoi(os.Getenv("BONDTUN_SIMGRID_COMBOS")); err == nil && n > 0 {
		combos = n
	}
	var ratios []float64
	worstBest := 10.0
	for seed := range uint64(combos) {
		rng := rand.New(rand.NewPCG(seed, 12))
		nLinks := 2 + rng.IntN(2)
		base := float64(5+rng.IntN(96)) * 1e6
		var up, down []memnet.LinkConfig
		for i := range nLinks {
			rate := base / float64(1+rng.IntN(10))
			if i == 0 {
				rate = base
			}
			l := memnet.LinkConfig{
				Delay:   time.Duration(2+rng.IntN(59)) * time.Millisecond,
				Jitter:  time.Duration(rng.IntN(11)) * time.Millisecond,
				RateBps: rate,
				Queue:   time.Duration(5+rng.IntN(296)) * time.Millisecond,
			}
			if rng.IntN(3) == 0 {
				l.Loss = float64(rng.IntN(21)) / 1000
			}
			back := l
			back.Loss = 0
			back.RateBps = rate * float64(1+rng.IntN(4)) // return links at least as fast
			up, down = append(up, l), append(down, back)
		}
		name := fmt.Sprintf("seed%d-%dlinks", seed, nLinks)
		t.Run(name, func(t *testing.T) {
			synctest.Test(t, func(t *testing.T) {
				sn := newSimN(t, seed, up, down)
				start := time.Now()
				sn.sendGreedy(4*time.Second, size)
				time.Sleep(500 * time.Millisecond)
				got := sn.goodput(start.Add(1500*time.Millisecond), start.Add(4*time.Second), size)
				var sum, best float64
				for _, l := range up {
					c := simCapacity(l, size)
					sum += c
					best = max(best, c)
				}
				r := sn.check()
				fmt.Printf("GRID combo=%s mbps=%.1f sum_ratio=%.2f best_link_ratio=%.2f lost=%d sent=%d\n", name,
					got/1e6, got/sum, got/best, r.lost, sn.sent)
				if ss := sn.server.Snapshot().Sessions; len(ss) == 1 {
					t.Logf("  server reorder %v counters rx_lost %d", ss[0].Reorder, ss[0].Counters["rx_lost"])
				}
				cc := sn.client.Snapshot().Sessions[0].Counters
				t.Logf("  client tx_dropped %d tx_queue_dropped %d tx_repaired %d", cc["tx_dropped"], cc["tx_queue_dropped"], cc["tx_repaired"])
				for i, l := range up {
					t.Logf("  link %d: %.1f Mbit/s %v jitter %v queue %v loss %.3f", i, l.RateBps/1e6, l.Delay, l.Jitter, l.Queue, l.Loss)
				}
				ratios = append(ratios, got/sum)
				worstBest = min(worstBest, got/best)
				if dir := os.Getenv("SIMGRID_TRACE"); dir != "" {
					f, err := os.Create(filepath.Join(dir, name+".csv"))
					if err == nil {
						sn.client.WriteTrace(f)
						f.Close()
					}
				}
				if got < 0.95*best {
					t.Errorf("the bond carried %.1f Mbit/s, below the best link alone (%.1f)", got/1e6, best/1e6)
				}
				sn.stop()
			})
		})
	}
	slices.Sort(ratios)
	if len(ratios) > 0 {
		fmt.Printf("GRID combos=%d min_ratio=%.2f median_ratio=%.2f worst_best_link_ratio=%.2f\n",
			len(ratios), ratios[0], ratios[len(ratios)/2], worstBest)
	}
}
