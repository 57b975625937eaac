package session

import (
	"net/netip"
	"time"

	"github.com/bondtun/bondtun/path"
)

// A path's output: what the engine decided to send on it, sealed, and not yet handed to its
// transport. The engine's decisions (drainLocked, sendControlToLocked) only append to it
// under Path.mu; the transport is called outside every session lock, by flushPath, at the
// end of each of the engine's entry points: a receive batch (Session.flush), SendBatch, a
// timer run, a tier change. A receiver handling FEEDBACK therefore never waits for another
// goroutine's sendmmsg, and no socket call runs under a lock (docs/DECISIONS.md, "Transport
// writes leave the path lock").
//
// One goroutine at a time writes a path's output (an outQueue, combine.go): a second entry
// point that finds it writing leaves its datagrams to it, and the writer takes them after
// its write (flat combining), so datagrams leave in the order they were sealed. Data datagrams
// are sealed in the path's outBufs, which the write reads, so none is sealed while a write
// is under way (the writer drains again after it); a control datagram has a pooled buffer
// of its own and may be added at any time.

// txDgram is one sealed datagram waiting in a path's output.
type txDgram struct {
	b       []byte
	dst     netip.AddrPort
	scratch *[ctrlScratchSize]byte // a control datagram's buffer, back to its pool once written
	data    bool                   // sealed in an outBuf (counted in TxPackets); else control
	// The write's outcome, set by the writer: failed, and the error on the first datagram
	// of each batch that failed.
	failed bool
	err    error
}

// flushTx hands every path's waiting output to its transport. Each of the engine's entry
// points calls it last, outside every lock; the timer also calls it first, as a backstop.
func (s *Session) flushTx() {
	for _, p := range s.pathList() {
		if p.out.pending.Load() {
			s.flushPath(p)
		}
	}
}

// flushPath writes p's output unless another goroutine is writing it already (which then
// writes this too), drains p's queues again after each write (the outBufs are free), at the
// time the write ended, and goes on until nothing waits. It takes p.mu; it must not be held.
func (s *Session) flushPath(p *Path) {
	p.mu.Lock()
	for {
		w, ok := p.out.take()
		if !ok {
			break
		}
		t := p.transport()
		p.mu.Unlock()
		p.wbufs = writeRuns(t, w, p.wbufs)
		// A drain skipped during the write (its window opened, its pacer had room) is
		// done below, on the clock read now: with the entry point's time, the pacer would
		// not count the write's duration, and hold back what the skipped drain would have
		// sent until the next tick.
		now := s.now()
		p.mu.Lock()
		p.outUsed = 0
		s.afterWriteLocked(now, p, w)
		p.out.done(w)
		s.drainLocked(now, p)
	}
	p.mu.Unlock()
}

// writeRuns writes w on t, one WriteBatch per run of datagrams with the same destination,
// and records each datagram's outcome (failed, err). views is scratch for the batches; the
// grown scratch is returned. Called outside every lock, by the one writer of the path.
func writeRuns(t path.Transport, w []txDgram, views [][]byte) [][]byte {
	for i := 0; i < len(w); {
		j := i + 1
		for j < len(w) && w[j].dst == w[i].dst {
			j++
		}
		views = views[:0]
		for k := i; k < j; k++ {
			views = append(views, w[k].b)
		}
		sent, err := t.WriteBatch(views, w[i].dst)
		if err != nil {
			k := i + min(max(sent, 0), j-i-1)
			w[k].err = err
			for ; k < j; k++ {
				w[k].failed = true
			}
		}
		i = j
	}
	clear(views)
	return views[:0]
}

// afterWriteLocked counts what a write of w carried and acts on its errors: once per run of
// datagrams that failed alike. p.mu must be held.
func (s *Session) afterWriteLocked(now time.Time, p *Path, w []txDgram) {
	var packets, bytes, dropped uint64
	for i := range w {
		d := &w[i]
		if d.scratch != nil {
			ctrlScratch.Put(d.scratch)
			d.scratch = nil
		}
		if !d.failed {
			if d.data {
				packets++
				bytes += uint64(len(d.b))
			}
			continue
		}
		if d.data {
			dropped++
		}
		if d.err == nil {
			continue // the rest of a failed batch: acted on once
		}
		p.sendErrs++
		s.log.Debug("send failed", "path", p.name, "control", !d.data, "err", d.err)
		if d.dst == p.remote {
			s.onSendErrorLocked(now, p, d.err)
		}
	}
	s.counters.TxPackets.Add(packets)
	s.counters.TxBytes.Add(bytes)
	if dropped > 0 {
		s.counters.TxDropped.Add(dropped)
	}
}
