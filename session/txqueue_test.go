package session

import (
	"math/rand/v2"
	"slices"
	"testing"
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
