package session

import (
	"math/rand/v2"
	"slices"
	"testing"
	"time"
)

// queueOrders returns the order of every packet in q, head first.
func queueOrders(q *txQueue) []uint64 {
	var o []uint64
	for k := 0; k < q.n; k++ {
		o = append(o, q.items[(q.head+k)%len(q.items)].order)
	}
	return o
}

// TestTxQueueMerge checks merge against a sort of the union, with the ring wrapped at
// random places and queues that overflow.
func TestTxQueueMerge(t *testing.T) {
	rng := rand.New(rand.NewPCG(1, 2))
	for iter := 0; iter < 200; iter++ {
		var q txQueue
		// Start the ring anywhere, so it wraps at random places.
		skip := rng.IntN(txQueueCap)
		q.items, q.head = make([]*packetBuf, txQueueCap), skip
		nq, nb := rng.IntN(txQueueCap), rng.IntN(300)
		if iter%10 == 0 {
			nq = txQueueCap - rng.IntN(50) // overflows
		}
		var all []uint64
		var bs []*packetBuf
		wantBytes := 0
		order := uint64(0)
		for q.n < nq || len(bs) < nb {
			order += 1 + uint64(rng.IntN(3))
			b := &packetBuf{order: order, n: rng.IntN(1400)}
			if len(bs) < nb && (q.n == nq || rng.IntN(2) == 0) {
				bs = append(bs, b)
			} else {
				q.push(b, datagramSize(b))
			}
			all = append(all, order)
			wantBytes += datagramSize(b)
		}
		rest := q.merge(bs)
		slices.Sort(all)
		keep := map[uint64]bool{}
		for _, b := range rest {
			keep[b.order] = true
			wantBytes -= datagramSize(b)
		}
		var want []uint64
		for _, o := range all {
			if !keep[o] {
				want = append(want, o)
			}
		}
		if got := queueOrders(&q); !slices.Equal(got, want) {
			t.Fatalf("iter %d (queue %d, merged %d, skip %d): order wrong: got %d packets, want %d", iter, nq, nb, skip, len(got), len(want))
		}
		if q.bytes != wantBytes {
			t.Fatalf("iter %d: bytes %d, want %d", iter, q.bytes, wantBytes)
		}
		if nq+nb <= txQueueCap && len(rest) != 0 {
			t.Fatalf("iter %d: %d left over with room for all", iter, len(rest))
		}
		if nq+nb > txQueueCap {
			if len(rest) != nq+nb-txQueueCap {
				t.Fatalf("iter %d: %d left over, want %d", iter, len(rest), nq+nb-txQueueCap)
			}
			// The ones left over are the newest of bs.
			if !slices.Equal(rest, bs[len(bs)-len(rest):]) {
				t.Fatalf("iter %d: left over are not the newest merged packets", iter)
			}
		}
	}
}

// TestForgetKeepsYoungCopies checks that a report lets the sender forget only the copies
// older than the cutoff: a NACK for a younger packet can still be on its way on a slower
// path (its copy on the best path lost) after a later report covering it came on the best
// one, and it must still find the copy.
func TestForgetKeepsYoungCopies(t *testing.T) {
	var p Path
	t0 := time.Unix(1000, 0)
	for pn := uint64(0); pn < 10; pn++ {
		if pn == 6 {
			p.rememberLocked(pn, nil, t0.Add(time.Duration(pn)*time.Millisecond)) // a control datagram
			continue
		}
		p.rememberLocked(pn, getBuf(), t0.Add(time.Duration(pn)*time.Millisecond))
	}
	now := t0.Add(20 * time.Millisecond)
	p.forgetUpToLocked(9, t0.Add(5*time.Millisecond))
	if p.forgotten != 5 {
		t.Errorf("forgotten = %d after a report of 9 with copies sent from 5 ms on kept, want 5", p.forgotten)
	}
	if b := p.takeForRepairLocked(3, now, time.Second); b != nil {
		t.Errorf("packet 3, sent before the cutoff, still had its copy")
	}
	if b := p.takeForRepairLocked(7, now, time.Second); b == nil {
		t.Errorf("packet 7, sent after the cutoff, lost its copy to the report")
	} else {
		putBuf(b)
	}
	// A later report with a later cutoff forgets the rest, the control datagram's slot
	// (no copy) included.
	p.forgetUpToLocked(9, t0.Add(time.Second))
	if p.forgotten != 10 {
		t.Errorf("forgotten = %d after the last report, want 10", p.forgotten)
	}
	for pn := uint64(0); pn < 10; pn++ {
		if b := p.takeForRepairLocked(pn, now, time.Second); b != nil {
			t.Errorf("packet %d still had its copy after every copy aged past the cutoff", pn)
		}
	}
}
