package session

import (
	"errors"
	"net/netip"
	"syscall"
	"time"

	"github.com/bondtun/bondtun/classify"
	"github.com/bondtun/bondtun/crypto"
	"github.com/bondtun/bondtun/framing"
	"github.com/bondtun/bondtun/liveness"
	"github.com/bondtun/bondtun/path"
	"github.com/bondtun/bondtun/sched"
)

// SendBatch schedules n inner packets. Packet i is
// bufs[i][framing.PayloadOffset : framing.PayloadOffset+sizes[i]]. Each packet is copied
// into a pooled buffer and queued on the path the scheduler picks; paths then send what
// their window allows (drainLocked). The caller may reuse bufs when SendBatch returns. It
// must be called from one goroutine at a time.
func (s *Session) SendBatch(bufs [][]byte, sizes []int, n int) {
	if n == 0 || s.closed.Load() {
		return
	}
	now := s.now()
	s.lastData.Store(now.UnixNano())
	if s.txLanes == nil {
		s.txLanes = new(txLanes)
	}
	s.snapshotPaths(now)
	// The send time is when the scheduler placed the packet, not when it leaves the local
	// queue: the receiver's reorder hold must cover the queueing each path adds, and it
	// learns it from (arrival − send time) per path.
	stamp := framing.Timestamp(now, s.epoch)
	for i := 0; i < n; i++ {
		s.place(now, stamp, bufs[i], sizes[i])
	}
	s.enqueuePending(now)
	s.wakeTimer(now) // queued packets, and the sent ones' deadlines: within a tick
}

// place numbers one packet offered to SendBatch (its payload at PayloadOffset of buf, size
// bytes), picks its path (small ones and inner retransmissions take the lowest delay, the
// rest the scheduler's choice) and puts a copy in that path's pending list, stamped stamp.
func (s *Session) place(now time.Time, stamp uint16, buf []byte, size int) {
	if size <= 0 || size > maxInnerMTU {
		s.counters.TxDropped.Add(1)
		return
	}
	pkt := buf[framing.PayloadOffset : framing.PayloadOffset+size]
	var flow uint64
	var lane uint8
	if !s.messages { // a message connection keeps its order: one lane
		flow = classify.FlowHash(pkt)
		lane = classify.LaneOf(flow)
	}
	small := sched.IsSmall(size)
	resent := !small && !s.messages && s.isRetransmission(pkt, flow, lane)
	if resent {
		s.counters.TxInnerRetx.Add(1)
	}
	var k int
	if small || resent {
		k = sched.LowestDelay(s.schedPaths)
	} else {
		k = s.scheduler.Pick(now, size, s.schedPaths)
	}
	if k < 0 {
		s.counters.TxDropped.Add(1)
		return
	}
	s.schedPaths[k].Inflight += size + framing.Overhead
	s.schedPaths[k].Queued += size + framing.Overhead // it waits in the local queue first
	seq := s.txLanes.seq[lane]
	s.txLanes.seq[lane] = (seq + 1) & framing.MaxLaneSeq
	pb := getBuf()
	pb.n = copy(pb.data[framing.PayloadOffset:], pkt)
	inner := framing.InnerHeader{Lane: lane, LaneSeq: seq, SendTime: stamp}
	inner.Put(pb.data[framing.HeaderLen:])
	pb.small = small
	pb.prio = small || resent
	pb.enq = now
	pb.order = s.txOrder
	s.txOrder++
	s.pending[k] = append(s.pending[k], pb)
}

// enqueuePending moves each path's pending packets into its local queues (small ones and
// repairs in prio, the rest in bulk; a full queue drops and counts) and sends what the
// path's window allows, one lock of the path per batch.
func (s *Session) enqueuePending(now time.Time) {
	for k, p := range s.schedIdx {
		if len(s.pending[k]) == 0 {
			continue
		}
		p.mu.Lock()
		for j, pb := range s.pending[k] {
			q := &p.bulk
			if pb.prio {
				q = &p.prio
			}
			if !q.push(pb, datagramSize(pb)) {
				putBuf(pb)
				s.counters.TxQueueDropped.Add(1)
			}
			s.pending[k][j] = nil
		}
		s.drainLocked(now, p)
		p.mu.Unlock()
		s.pending[k] = s.pending[k][:0]
		s.flushPath(p)
	}
}

// isRetransmission reports whether pkt is an inner TCP segment that re-sends data its flow
// already sent (all of its sequence space is below the highest seen), and otherwise records
// how far the flow got. One flow is tracked per lane (the last one seen), so two flows
// sharing a lane are only missed, never mistaken for each other.
//
// A retransmission fills a hole the inner receiver is waiting on, holding back everything
// behind it: it goes first (priority queue) on the lowest-delay path instead of waiting
// behind the queue that perhaps caused the loss.
func (s *Session) isRetransmission(pkt []byte, flow uint64, lane uint8) bool {
	_, end, ok := classify.TCPSegment(pkt)
	if !ok {
		return false
	}
	t := &s.txLanes.tcp[lane]
	if t.valid && t.flow == flow {
		if d := int32(end - t.next); d <= 0 {
			if d > -1<<30 {
				return true
			}
			// Far behind: no window explains it (a new connection on the same ports?).
		}
	}
	t.flow, t.next, t.valid = flow, end, true
	return false
}

// drainLocked seals what p's window allows from its local queues, small packets and
// repairs first, into p's output (txout.go; flushPath hands it to the transport). Each
// datagram is sealed into one of p's outBufs, and its plaintext kept for loss repair until
// the peer reports it. While a write is under way, or every outBuf is taken, it seals
// nothing: flushPath drains again after the write. p.mu must be held.
func (s *Session) drainLocked(now time.Time, p *Path) {
	if (p.prio.n == 0 && p.bulk.n == 0) || s.closed.Load() || p.out.busy {
		return
	}
	if !p.remote.IsValid() || p.live.State() == liveness.Validating {
		return // a path that has not answered yet carries no data (fallbackLocked holds it)
	}
	pace := sched.PacingRate(p.stats.DeliveryRate(), p.stats.Startup())
	win := p.windowLocked()
	// The inner flows hear of a drop one round trip after it, and a packet waits at least
	// the target (plus its equalization allowance) in the queue on top of the path's SRTT:
	// the drops are spaced by that. The first drop comes once a standing queue lasted
	// 1.5 SRTT (at least 100 ms), as before the flows' wait was counted (codelInterval).
	srtt := p.stats.SRTT()
	p.codel.SetIntervals(max(codelInterval, srtt*3/2), max(codelInterval, (srtt+codelTarget+p.equalize)*3/2))
	p.allocOutBufsLocked()
	sealed := false
	for p.outUsed < len(p.outBufs) {
		q, pb, dsize := p.nextToSendLocked(now, pace, win)
		if pb == nil {
			break
		}
		q.pop(dsize)
		if q == &p.bulk && p.codel.OnDequeue(now, now.Sub(pb.enq), p.equalize, q.n == 0) {
			// CoDel: the inner flows' congestion signal. The packet goes as an empty
			// placeholder that fills its lane slot, so the receiver's reorder buffer does
			// not hold the lane's later packets for a gap nothing will fill.
			pb.n = 0
			p.codelDrops++
			s.counters.TxQueueDropped.Add(1)
		}
		dgram, pn, err := s.sealLocked(p, framing.TypeData, p.outBufs[p.outUsed], pb.data[framing.HeaderLen:framing.PayloadOffset+pb.n])
		if err != nil {
			putBuf(pb)
			s.counters.TxDropped.Add(1)
			break // the session ends (keysUsedUp); what is sealed already still goes
		}
		p.stats.OnSent(now, pn, len(dgram))
		p.rememberLocked(pn, pb, now)
		p.outUsed++
		p.out.push(txDgram{b: dgram, dst: p.remote, data: true})
		sealed = true
	}
	if sealed {
		p.live.OnSent(now)
	}
}

// allocOutBufsLocked gives p the buffers its datagrams are sealed in, once: a path that
// never sends holds none. p.mu must be held.
func (p *Path) allocOutBufsLocked() {
	if p.outBufs != nil {
		return
	}
	p.outBufs = make([][]byte, path.MaxBatch)
	for i := range p.outBufs {
		p.outBufs[i] = make([]byte, bufSize)
	}
}

// nextToSendLocked returns the packet at the head of p's local queues (prio before bulk),
// its queue and datagram size, if the window win and the pacer (at pace) let it leave at
// now; else a nil packet. It does not take it off the queue. p.mu must be held.
func (p *Path) nextToSendLocked(now time.Time, pace float64, win int) (*txQueue, *packetBuf, int) {
	q := &p.prio
	if q.n == 0 {
		q = &p.bulk
	}
	if q.n == 0 {
		return nil, nil, 0
	}
	pb := q.peek()
	dsize := datagramSize(pb)
	// Small packets (pings, inner ACKs) pass the window: they are few and tiny, and
	// waiting for feedback would add up to its spacing to every round trip.
	if inflight := p.stats.Inflight(); !pb.small && inflight > 0 && inflight+dsize > win {
		p.stats.OnLimited()
		return nil, nil, 0
	}
	// Within the window, the pacer spreads what leaves; the session timer drains again
	// every tick. Small packets pass it too.
	if !pb.small && !p.pacer.Allow(now, pace, dsize) {
		return nil, nil, 0
	}
	return q, pb, dsize
}

// onSendErrorLocked takes p down at once when the kernel says its uplink cannot reach the
// peer (no route, network down): no need to wait for silence. p.mu must be held.
func (s *Session) onSendErrorLocked(now time.Time, p *Path, err error) {
	if errors.Is(err, syscall.ENETUNREACH) || errors.Is(err, syscall.EHOSTUNREACH) ||
		errors.Is(err, syscall.ENETDOWN) || errors.Is(err, syscall.EADDRNOTAVAIL) {
		p.downErr = now
		s.onLiveness(now, p, p.live.OnLocalDown(now, err.Error()))
	}
}

// snapshotPaths fills s.schedPaths with the scheduler's view of every path: bytes in flight
// include the path's local queue.
func (s *Session) snapshotPaths(now time.Time) {
	paths := s.pathList()
	s.schedPaths = s.schedPaths[:0]
	s.schedIdx = s.schedIdx[:0]
	bestRTT := time.Duration(0)
	minOWD := time.Duration(-1)
	s.schedFallback = s.schedFallback[:0]
	anyUsable := false
	s.schedTimes = s.schedTimes[:0]
	for _, p := range paths {
		p.mu.Lock()
		fallback := p.fallbackLocked(now)
		sp := p.schedPathLocked(now)
		if !sp.Startup && p.measuredAt.IsZero() {
			p.measuredAt = now
		}
		times := [2]time.Time{p.usableAt, p.measuredAt}
		p.mu.Unlock()
		anyUsable = anyUsable || sp.Usable
		s.schedPaths = append(s.schedPaths, sp)
		s.schedIdx = append(s.schedIdx, p)
		s.schedFallback = append(s.schedFallback, fallback)
		s.schedTimes = append(s.schedTimes, times)
	}
	s.markJoining()
	if !anyUsable {
		// No path is up: hold the packets on the suspect ones rather than drop them. A
		// suspect path is often alive (the silence may be its feedback's), and its queue
		// moves to the first path that comes back (serviceQueues).
		for i := range s.schedPaths {
			s.schedPaths[i].Usable = s.schedFallback[i]
		}
	}
	for _, sp := range s.schedPaths {
		if sp.Usable && (bestRTT == 0 || sp.MinRTT < bestRTT) {
			bestRTT = sp.MinRTT
		}
	}
	// The RTT a path measures is its forward delay plus the return delay of the path that
	// carries FEEDBACK, the fastest one. Subtract half the best RTT to get the forward delay.
	for i := range s.schedPaths {
		sp := &s.schedPaths[i]
		sp.OWD = max(sp.OWD-bestRTT/2, 0)
		if sp.Usable && (minOWD < 0 || sp.OWD < minOWD) {
			minOWD = sp.OWD
		}
	}
	// A path with a short delay may queue locally as long as the delay difference to the
	// slowest usable path before that is a standing queue (EAT's delay equalization).
	var maxOWD time.Duration
	for i := range s.schedPaths {
		if s.schedPaths[i].Usable {
			maxOWD = max(maxOWD, s.schedPaths[i].OWD)
		}
	}
	for i, p := range s.schedIdx {
		if s.schedPaths[i].Usable {
			p.mu.Lock()
			p.equalize = maxOWD - s.schedPaths[i].OWD
			p.mu.Unlock()
		}
	}
	for len(s.pending) < len(s.schedPaths) {
		s.pending = append(s.pending, make([]*packetBuf, 0, path.MaxBatch))
	}
}

// markJoining sets Joining on each usable path of s.schedPaths in startup that became
// usable after another usable path was measured: it joins a running bond, and the scheduler
// tries it (sched.Path.Joining). Paths that start together are not joining, even when one
// is measured sooner: the inner flows' first round trips are then the fastest path's.
func (s *Session) markJoining() {
	for i := range s.schedPaths {
		sp := &s.schedPaths[i]
		if !sp.Usable || !sp.Startup {
			continue
		}
		for j := range s.schedPaths {
			measured := s.schedTimes[j][1]
			if j != i && s.schedPaths[j].Usable && !measured.IsZero() && measured.Before(s.schedTimes[i][0]) {
				sp.Joining = true
				break
			}
		}
	}
}

// schedPathLocked is the scheduler's view of p; its OWD is still the SRTT, from which the
// caller subtracts the return half. p.mu must be held.
func (p *Path) schedPathLocked(now time.Time) sched.Path {
	queued := p.queuedLocked()
	return sched.Path{
		ID:         p.id,
		Usable:     p.usableLocked(now),
		Rate:       p.stats.DeliveryRate(),
		OWD:        p.stats.SRTT(),
		MinRTT:     p.stats.MinRTT(),
		SRTT:       p.stats.SRTT(),
		Jitter:     p.stats.Jitter(),
		Ceiling:    p.stats.InflightCeiling(),
		Startup:    p.stats.Startup(),
		Inflight:   p.stats.Inflight() + queued,
		Queued:     queued,
		PrioQueued: p.prio.bytes,
		Backup:     p.tier == framing.TierBackup,
	}
}

// windowLocked is p's in-flight window (sched.Window) from its current statistics. p.mu
// must be held.
func (p *Path) windowLocked() int {
	return sched.Window(&sched.Path{Rate: p.stats.DeliveryRate(), MinRTT: p.stats.MinRTT(), SRTT: p.stats.SRTT(), Jitter: p.stats.Jitter(), Ceiling: p.stats.InflightCeiling(), Startup: p.stats.Startup()})
}

// sendControl seals one control datagram carrying frames on p into its output, which the
// entry point's flushTx sends (control datagrams do not wait in the local queue). It does
// nothing if p has no known remote address yet.
func (s *Session) sendControl(now time.Time, p *Path, frames []byte) {
	p.mu.Lock()
	defer p.mu.Unlock()
	s.sendControlLocked(now, p, frames)
}

// sendControlLocked is sendControl with p.mu held.
func (s *Session) sendControlLocked(now time.Time, p *Path, frames []byte) {
	s.sendControlToLocked(now, p, p.remote, frames)
}

// sendControlToLocked seals one control datagram carrying frames on p to dst, which is
// p.remote or an address being validated (migrate.go), into p's output (txout.go): control
// datagrams do not wait in the local queue, and go with the entry point's flush. The
// datagram is framing.Overhead+len(frames) bytes long. It returns whether it was sealed.
// p.mu must be held.
func (s *Session) sendControlToLocked(now time.Time, p *Path, dst netip.AddrPort, frames []byte) bool {
	if !dst.IsValid() || framing.PayloadOffset+len(frames)+framing.TagLen > ctrlScratchSize {
		return false
	}
	scratch := ctrlScratch.Get().(*[ctrlScratchSize]byte)
	b := scratch[:]
	inner := framing.InnerHeader{SendTime: framing.Timestamp(now, s.epoch)}
	inner.Put(b[framing.HeaderLen:])
	end := framing.PayloadOffset + copy(b[framing.PayloadOffset:], frames)
	dgram, pn, err := s.sealLocked(p, framing.TypeControl, b, b[framing.HeaderLen:end])
	if err != nil {
		ctrlScratch.Put(scratch)
		return false // the session ends (keysUsedUp)
	}
	if elicitsFeedback(frames) || s.carriesData(now, reportElicitWindow) {
		p.stats.OnSent(now, pn, len(dgram))
		p.live.OnSent(now)
	} else {
		// A report (FEEDBACK, NACK) of an idle session is not answered by one: neither in
		// flight nor owed an answer, or an idle path would look silent (receive.go,
		// elicitsFeedback).
		p.stats.OnSent(now, pn, 0)
	}
	p.rememberLocked(pn, nil, now)
	p.out.push(txDgram{b: dgram, dst: dst, scratch: scratch})
	return true
}

// sealLocked builds one datagram of type t in out: the header with p's next packet
// number, then plain (the inner header and payload, which may already sit at
// out[HeaderLen:]) sealed with the current key generation (rekey.go). It returns the datagram and its packet number. When p's packet
// numbers or the key's confidentiality limit are used up it returns the error, uses no
// packet number and sends nothing, and the session ends (keysUsedUp): no panic, however
// long the session lived. p.mu must be held.
func (s *Session) sealLocked(p *Path, t framing.MsgType, out, plain []byte) ([]byte, uint64, error) {
	if p.pn > framing.MaxPacketNumber { // the header cannot carry it, and the nonce would repeat
		s.keysUsedUp(crypto.ErrPacketNumberExhausted)
		return nil, 0, crypto.ErrPacketNumberExhausted
	}
	pn := p.pn
	g := s.keys.cur.Load()
	hdr := framing.Header{Type: t, KeyPhase: g.phase, PathID: p.id, Receiver: s.remote, PacketNumber: pn}
	hdr.Put(out)
	sealed, err := g.seal.Seal(out[framing.HeaderLen:framing.HeaderLen], plain, out[:framing.HeaderLen], p.id, pn)
	if err != nil {
		s.keysUsedUp(err)
		return nil, 0, err
	}
	if g.gen != p.txGen {
		p.txGen, p.genFirstPN = g.gen, pn // a FEEDBACK covering pn confirms the generation
	}
	p.pn++
	return out[:framing.HeaderLen+len(sealed)], pn, nil
}

// repair re-sends the packets the peer reported lost on lost, ahead of the bulk queue of
// the path where they arrive first (repairPath), which may be lost itself.
func (s *Session) repair(now time.Time, lost *Path, nack framing.Nack) {
	target := s.repairPath(now)
	if target == nil {
		return // nowhere to send copies: keep them, a later NACK may find a path
	}
	var bufs [64]*packetBuf
	n := 0
	lost.mu.Lock()
	for i := uint64(0); i < min(uint64(nack.Count), sentRingSize) && n < len(bufs); i++ {
		if b := lost.takeForRepairLocked(nack.First+i, now, repairMaxAge); b != nil {
			bufs[n] = b
			n++
		}
	}
	lost.mu.Unlock()
	if n == 0 {
		return
	}
	stamp := framing.Timestamp(now, s.epoch)
	target.mu.Lock()
	for _, b := range bufs[:n] {
		// A re-sent copy is a new transmission, scheduled now.
		inner, _ := framing.ParseInnerHeader(b.data[framing.HeaderLen:framing.PayloadOffset])
		inner.SendTime = stamp
		inner.Put(b.data[framing.HeaderLen:])
		if !target.prio.push(b, datagramSize(b)) {
			putBuf(b)
			continue
		}
		target.repairs++
		s.counters.TxRepaired.Add(1)
	}
	s.drainLocked(now, target)
	target.mu.Unlock()
}

// repairPath picks where re-sent packets go (sched.RepairPath): the usable path where a
// copy sent ahead of the bulk queue arrives first, possibly lost itself; nil if no path is
// usable.
func (s *Session) repairPath(now time.Time) *Path {
	var buf [16]sched.Path
	paths, sp := s.schedView(now, buf[:0])
	if k := sched.RepairPath(maxInnerMTU+framing.Overhead, sp); k >= 0 {
		return paths[k]
	}
	return nil
}

// schedView returns the session's paths and the scheduler's view of each, appended to sp,
// with forward delays as in snapshotPaths.
func (s *Session) schedView(now time.Time, sp []sched.Path) ([]*Path, []sched.Path) {
	paths := s.pathList()
	bestRTT := time.Duration(0)
	for _, p := range paths {
		p.mu.Lock()
		sp = append(sp, p.schedPathLocked(now))
		p.mu.Unlock()
		if sp[len(sp)-1].Usable && (bestRTT == 0 || sp[len(sp)-1].MinRTT < bestRTT) {
			bestRTT = sp[len(sp)-1].MinRTT
		}
	}
	for i := range sp { // forward delay, as in snapshotPaths
		sp[i].OWD = max(sp[i].OWD-bestRTT/2, 0)
	}
	return paths, sp
}
