package session

import (
	"errors"
	"net/netip"
	"time"

	"github.com/bondtun/bondtun/classify"
	"github.com/bondtun/bondtun/crypto"
	"github.com/bondtun/bondtun/framing"
	"github.com/bondtun/bondtun/path"
)

// rxResult is what receive did with a datagram.
type rxResult uint8

const (
	// rxRejected: dropped, and nothing but a counter changed; the session needs no flush.
	rxRejected rxResult = iota
	// rxAccepted: authenticated and new; it changed the session's state, which the
	// receiver flushes at the end of its batch.
	rxAccepted
	// rxKept: accepted, and the session keeps pb (in or released by the reorder buffer)
	// until flush hands it back.
	rxKept
)

// receive handles one datagram in pb.data[:pb.n] whose header parsed as hdr and whose receiver
// index is this session's. Only a datagram that authenticates changes any state: the path
// lookup, the replay window's read-only check and the AEAD open come first and need no
// lock, so a forgery with a known receiver index costs at most one failed open and a
// counter, a replay only the check, never rxMu, and its rxRejected result keeps the
// receiver from flushing (draining the reorder buffer of) the session for it.
func (s *Session) receive(now time.Time, conn path.Transport, from netip.AddrPort, hdr framing.Header, pb *packetBuf) rxResult {
	p, inner, payload, ok := s.authenticate(now, conn, hdr, pb)
	if !ok {
		return rxRejected
	}
	s.rxMu.Lock()
	if s.closed.Load() {
		s.rxMu.Unlock()
		return rxRejected
	}
	if !p.replay.Update(hdr.PacketNumber) {
		s.rxMu.Unlock()
		s.counters.RxReplay.Add(1)
		return rxRejected
	}
	s.lastAuth.Store(now.UnixNano())
	newest := !p.rxAny || hdr.PacketNumber > p.rxHighest
	dirty, pending := p.rxDirty, s.rxPending
	s.noteArrivalLocked(now, p, hdr.PacketNumber, inner.SendTime, pb.n)
	if hdr.Type == framing.TypeControl && !elicitsFeedback(payload) && !s.carriesData(now, 2*reportElicitWindow) {
		// Counted, and reported with the next FEEDBACK, but it asks for none: two idle
		// peers would otherwise report each other's reports forever. While data flows it
		// is answered: the reports a sender spreads over its other paths (spareFeedback)
		// are then the only datagrams those paths carry, and their answers (the sender
		// counts them in flight then, send.go) the paths' only samples. Unanswered, one
		// upload in two after a download in scripts/e2e.sh ran on the cable alone
		// (docs/DECISIONS.md).
		p.rxDirty, s.rxPending = dirty, pending
	}
	if s.isServer && from != p.rxRemote {
		// Not from the path's address: its first address, or a new one to validate
		// (migrate.go). The common case, from the path's address, takes no other lock.
		s.noteSourceLocked(now, p, from, pb.n, newest)
	}
	if hdr.Type == framing.TypeControl {
		// A control datagram shows how far its path has delivered (reorder rule b).
		s.reorder.Seen(now, p.id, s.senderTimeLocked(inner.SendTime))
		s.rxMu.Unlock()
		s.handleControl(now, p, from, inner, payload)
		return rxAccepted
	}
	return s.receiveDataLocked(now, p, inner, payload, pb)
}

// authenticate finds the path of a datagram that came on conn, checks its packet number
// against the path's replay window (read-only) and opens it, all without a lock: a
// datagram that fails any of it costs no lock and changes no state, only a counter. It
// returns the path, the inner header and what follows it.
func (s *Session) authenticate(now time.Time, conn path.Transport, hdr framing.Header, pb *packetBuf) (*Path, framing.InnerHeader, []byte, bool) {
	p := s.pathByID(hdr.PathID)
	if p == nil || p.transport() != conn {
		s.counters.RxNoPath.Add(1)
		return nil, framing.InnerHeader{}, nil, false
	}
	// A packet number the path's replay window has seen or left behind is rejected before
	// the open: a replayed datagram then costs no AEAD work either (the window is read
	// without rxMu; only the Update after the open changes it).
	if !p.replay.Check(hdr.PacketNumber) {
		s.counters.RxReplay.Add(1)
		return nil, framing.InnerHeader{}, nil, false
	}
	// The key phase picks the key, without a lock (rekey.go); only an authenticated
	// datagram may then change which keys are current.
	plain, g, which, err := s.openDatagram(now, hdr, pb.data[:pb.n])
	if err != nil {
		s.counters.RxAuthFail.Add(1)
		if errors.Is(err, crypto.ErrIntegrityLimit) {
			s.keysUsedUp(err)
		}
		return nil, framing.InnerHeader{}, nil, false
	}
	if which != keyCur || (!g.heard && s.keys.enabled) {
		s.onKeyOpened(now, g, which)
	}
	inner, err := framing.ParseInnerHeader(plain)
	if err != nil {
		s.counters.RxBadInner.Add(1)
		return nil, framing.InnerHeader{}, nil, false
	}
	return p, inner, plain[framing.InnerHeaderLen:], true
}

// receiveDataLocked takes an authenticated data packet of p into the reorder buffer, its
// lane sequence number extended from the 24 bits on the wire. rxMu must be held; it is
// released on return.
func (s *Session) receiveDataLocked(now time.Time, p *Path, inner framing.InnerHeader, payload []byte, pb *packetBuf) rxResult {
	s.counters.RxPackets.Add(1)
	s.counters.RxBytes.Add(uint64(len(payload)))
	if len(payload) > 0 && !s.messages && !s.isAllowed(classify.Src(payload)) { // empty: a placeholder
		s.rxMu.Unlock()
		s.counters.RxNotAllowed.Add(1)
		return rxAccepted // the path's receive counters moved
	}
	s.lastData.Store(now.UnixNano())
	lane := inner.Lane
	seq := uint64(inner.LaneSeq)
	if s.rxLanes == nil {
		s.rxLanes = new(rxLanes)
	}
	rl := s.rxLanes
	if rl.seen[lane] {
		seq = framing.ExtendSeq24(rl.largest[lane], inner.LaneSeq)
	}
	if !rl.seen[lane] || seq > rl.largest[lane] {
		rl.largest[lane] = seq
		rl.seen[lane] = true
	}
	pb.n = len(payload) // the packet now sits at data[PayloadOffset:PayloadOffset+n]
	kept := s.reorder.Push(now, lane, seq, p.id, s.senderTimeLocked(inner.SendTime), pb)
	s.rxMu.Unlock()
	if !kept {
		s.counters.RxReorderDropped.Add(1)
		return rxAccepted
	}
	return rxKept
}

// carriesData reports whether s sent or received data within window (lastData starts at
// the session's epoch, which is no data yet). The sender of a report counts it as owed an
// answer within reportElicitWindow, the receiver answers within twice that: each judges by
// its own data, which the other sees a path's delay later, and a report counted but not
// answered would make its path look silent.
func (s *Session) carriesData(now time.Time, window time.Duration) bool {
	d := s.lastData.Load()
	return d != s.epoch.UnixNano() && now.UnixNano()-d < int64(window)
}

// elicitsFeedback reports whether a control datagram carrying frames asks the receiver for
// a FEEDBACK about it: unless it carries only FEEDBACK and NACK frames, which are
// themselves reports (QUIC's ACK-only packets, RFC 9000 §13.2.1). Such a datagram is
// counted and reported with the next FEEDBACK something else prompts, and its sender
// counts it neither in flight nor as owed an answer (sendControlToLocked).
func elicitsFeedback(frames []byte) bool {
	r := framing.NewFrameReader(frames)
	n := 0
	for {
		typ, _, ok := r.Next()
		if !ok {
			return n == 0 || r.Err() != nil
		}
		if typ != framing.FrameFeedback && typ != framing.FrameNack {
			return true
		}
		n++
	}
}

// noteArrivalLocked updates p's receive counters, which FEEDBACK reports. rxMu must be held.
func (s *Session) noteArrivalLocked(now time.Time, p *Path, pn uint64, sendTime uint16, size int) {
	if p.rxAny && pn > p.rxHighest+1 {
		// Paths are FIFO: the packets skipped are lost. Ask for their contents again; the
		// sender keeps only the last sentRingSize, so a longer gap asks for those.
		first := max(p.rxHighest+1, pn-min(pn, sentRingSize))
		s.addNackLocked(p.id, first, pn-first)
		s.reorder.Expect(now)
	}
	if !p.rxAny || pn > p.rxHighest {
		p.rxHighest = pn
		p.rxEcho = sendTime
		p.rxAt = now
	}
	p.rxAny = true
	p.rxPackets++
	p.rxBytes += uint64(size)
	p.rxDirty = true
	s.rxPending = true
	if p.lastRecv.IsZero() {
		p.rxGap = busyGap
	} else {
		if gap := now.Sub(p.lastRecv); gap < busyGap {
			p.rxGap += (gap - p.rxGap) / 16
		} else {
			p.rxGap = busyGap // idle for a while: not busy until arrivals are frequent again
		}
	}
	p.lastRecv = now
	p.rxDatagram++
}

// senderTimeLocked turns a 16-bit sender timestamp into a time on a fixed base, unwrapping it
// against the latest one seen. Only differences between such times are meaningful.
func (s *Session) senderTimeLocked(ts uint16) time.Time {
	if !s.rxTSValid {
		s.rxTS = 1<<32 + uint64(ts)
		s.rxTSValid = true
	} else {
		d := int16(ts - uint16(s.rxTS))
		ext := uint64(int64(s.rxTS) + int64(d))
		if d > 0 {
			s.rxTS = ext
		}
		return s.rxBase.Add(time.Duration(ext) * 100 * time.Microsecond)
	}
	return s.rxBase.Add(time.Duration(s.rxTS) * 100 * time.Microsecond)
}

// flush hands every packet the reorder buffer releases at now to the deliverer, sends the
// NACKs this batch produced (with the current FEEDBACK) at once, and hands what the batch
// sealed to the transports (flushTx): a receive batch's last step.
func (s *Session) flush(now time.Time) {
	var frames [512]byte
	s.rxMu.Lock()
	s.releaseLocked(now)
	var b []byte
	nacks := 0
	if s.nackN > 0 {
		b = s.nackFramesLocked(frames[:0])
		nacks = len(b)
		b = s.feedbackFramesLocked(now, b)
	}
	// Arrivals to report, or packets held for reordering: the timer must run within a tick.
	wake := s.rxPending || s.reorder.Len() > 0
	s.rxPending = false
	s.rxMu.Unlock()
	s.deliverOut()
	if len(b) > 0 {
		s.sendReports(now, b, nacks, false)
	}
	s.flushTx() // what the batch's frames (FEEDBACK, NACK, probes) and the reports sealed
	if wake {
		s.wakeTimer(now)
	}
}

// maxNacks bounds the loss ranges waiting to be reported.
const maxNacks = 16

// addNackLocked records count packets from first lost on path id. rxMu must be held.
func (s *Session) addNackLocked(id uint8, first, count uint64) {
	s.counters.RxLost.Add(count)
	if s.nackN == maxNacks {
		return // the oldest ranges are reported; the rest fall to the reorder deadline
	}
	if s.nacks == nil {
		s.nacks = new([maxNacks]framing.Nack) // the first loss: an idle session holds none
	}
	s.nacks[s.nackN] = framing.Nack{PathID: id, First: first, Count: uint16(min(count, 0xffff))}
	s.nackN++
}

// nackFramesLocked appends the pending NACK frames to b and clears them. rxMu must be held.
func (s *Session) nackFramesLocked(b []byte) []byte {
	if s.nackN == 0 {
		return b
	}
	for _, n := range s.nacks[:s.nackN] {
		b = n.Append(b)
	}
	s.nackN = 0
	return b
}

// releaseLocked moves what the reorder buffer releases at now to the session's delivery
// queue, which deliverOut hands to the Deliverer outside rxMu. rxMu must be held.
func (s *Session) releaseLocked(now time.Time) {
	n := len(s.dq.q)
	if s.dq.q = s.reorder.Drain(now, s.dq.q); len(s.dq.q) > n {
		s.dq.pending.Store(true)
	}
}

// deliverOut hands the released packets to the Deliverer, in order, outside rxMu: a TUN
// write never holds up the other paths' receivers or the timer. One goroutine delivers at a
// time; another that released packets meanwhile leaves them to it (an outQueue,
// combine.go), so the lanes' order holds. It takes rxMu; it must not be held.
func (s *Session) deliverOut() {
	if !s.dq.pending.Load() {
		return
	}
	s.rxMu.Lock()
	for {
		w, ok := s.dq.take()
		if !ok {
			break
		}
		s.rxMu.Unlock()
		s.deliverBatch(w)
		s.rxMu.Lock()
		s.dq.done(w)
	}
	s.rxMu.Unlock()
}

// deliverBatch gives the packets of w to the Deliverer and their buffers back to the pool.
// Only the one delivering goroutine calls it.
func (s *Session) deliverBatch(w []*packetBuf) {
	pkts := s.pkts[:0]
	for _, b := range w {
		if b.n > 0 { // an empty packet only filled its lane slot (the sender's AQM dropped it)
			pkts = append(pkts, b.data[framing.PayloadOffset:framing.PayloadOffset+b.n])
		}
	}
	if len(pkts) > 0 {
		s.deliver.Deliver(pkts)
	}
	clear(pkts)
	s.pkts = pkts[:0]
	for _, b := range w {
		putBuf(b)
	}
}
