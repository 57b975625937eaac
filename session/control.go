package session

import (
	"context"
	"log/slog"
	"net/netip"
	"time"

	"github.com/bondtun/bondtun/framing"
	"github.com/bondtun/bondtun/liveness"
	"github.com/bondtun/bondtun/pathstat"
)

// handleControl processes the frames of an authenticated control datagram that came on p
// from from.
func (s *Session) handleControl(now time.Time, p *Path, from netip.AddrPort, inner framing.InnerHeader, frames []byte) {
	if framing.ValidateFrames(frames) != nil {
		s.counters.RxBadInner.Add(1)
		return
	}
	r := framing.NewFrameReader(frames)
	for {
		typ, body, ok := r.Next()
		if !ok || !s.handleFrame(now, p, from, inner, typ, body) {
			return
		}
	}
}

// handleFrame acts on one control frame that arrived on p from from in a datagram with
// inner header inner. It returns false when the frame does not parse: the rest of the
// datagram is ignored.
func (s *Session) handleFrame(now time.Time, p *Path, from netip.AddrPort, inner framing.InnerHeader, typ framing.FrameType, body []byte) bool {
	switch typ {
	case framing.FrameProbe:
		probe, err := framing.ParseProbe(body)
		if err != nil {
			return false
		}
		var buf [32]byte
		ack := framing.ProbeAck{ID: probe.ID, EchoTime: inner.SendTime}
		s.sendControl(now, p, ack.Append(buf[:0]))
	case framing.FrameProbeAck:
		ack, err := framing.ParseProbeAck(body)
		if err != nil {
			return false
		}
		s.onProbeAck(now, p, ack)
	case framing.FrameFeedback:
		fb, err := framing.ParseFeedback(body)
		if err != nil {
			return false
		}
		s.onFeedback(now, p, fb)
	case framing.FramePathStatus:
		ps, err := framing.ParsePathStatus(body)
		if err != nil {
			return false
		}
		s.onPathStatus(ps)
	case framing.FramePathChallenge:
		ch, err := framing.ParsePathChallenge(body)
		if err != nil {
			return false
		}
		var buf [framing.FrameHeaderLen + framing.PathDataLen]byte
		s.sendControl(now, p, framing.PathResponse(ch).Append(buf[:0]))
	case framing.FramePathResponse:
		r, err := framing.ParsePathResponse(body)
		if err != nil {
			return false
		}
		s.onPathResponse(now, p, from, r)
	case framing.FrameNack:
		nack, err := framing.ParseNack(body)
		if err != nil {
			return false
		}
		if lost := s.pathByID(nack.PathID); lost != nil {
			s.repair(now, lost, nack)
			s.wakeTimer(now) // copies the window holds back wait in a local queue
		}
	}
	return true
}

// onPathStatus applies the peer's PATH_STATUS: the tier it gives a path, unless this end
// is the one that sends tiers (the client: its configuration decides them).
func (s *Session) onPathStatus(ps framing.PathStatus) {
	q := s.pathByID(ps.PathID)
	if q == nil || s.sendsTiers {
		return
	}
	q.mu.Lock()
	defer q.mu.Unlock()
	if q.tier != ps.Tier {
		if ps.Tier == framing.TierPrimary {
			q.usableAt = s.now()
		}
		q.tier = ps.Tier
		s.log.Info("path tier changed by peer", "peer", s.peerName, "path", q.name, "tier", tierName(ps.Tier))
	}
}

func (s *Session) onProbeAck(now time.Time, p *Path, ack framing.ProbeAck) {
	p.mu.Lock()
	defer p.mu.Unlock()
	if ack.ID > p.probeID || p.probeID-ack.ID >= 16 {
		return // not a recent probe of ours
	}
	rtt := pathstat.RTTFromEcho(framing.Timestamp(now, s.epoch), ack.EchoTime, ack.Delay)
	s.onLiveness(now, p, p.live.OnHeard(now, rtt)) // may restart the stats: sample after
	if rtt != pathstat.NoRTT {
		p.stats.OnRTTSample(now, rtt)
	}
}

// onFeedback applies a FEEDBACK report about q = fb.PathID that arrived on via.
func (s *Session) onFeedback(now time.Time, via *Path, fb framing.Feedback) {
	q := s.pathByID(fb.PathID)
	if q == nil {
		return
	}
	q.mu.Lock()
	defer q.mu.Unlock()
	if fb.HighestPN >= q.pn {
		return // reports a packet we never sent
	}
	if q.fbSeen && (fb.HighestPN < q.fbHighest || (fb.HighestPN == q.fbHighest && int32(fb.Packets-q.fbPackets) <= 0)) {
		return // a copy that came on the spare path, or an older report overtaken by a newer one
	}
	q.fbSeen, q.fbHighest, q.fbPackets = true, fb.HighestPN, fb.Packets
	// The echoed send time is when the packet was scheduled (it includes the local queue,
	// which the receiver's reorder hold needs); the round trip of the path itself runs from
	// when the packet left, which the sender remembers.
	rtt := pathstat.NoRTT
	if at, ok := q.stats.SentAt(fb.HighestPN); ok {
		if d := now.Sub(at) - framing.DurationOf16(fb.Delay); d >= 0 {
			rtt = d
		}
	}
	s.followReturnPathLocked(q, via.id, rtt)
	q.stats.OnFeedback(now, fb.HighestPN, fb.Packets, fb.Bytes, rtt, framing.DurationOf16(fb.Delay))
	s.noteKeyAckedLocked(now, q, fb.HighestPN)
	if fb.HighestPN > q.ackedPN || q.ackedPN == 0 {
		q.ackedPN = fb.HighestPN
		s.onLiveness(now, q, q.live.OnHeard(now, rtt))
	}
	// A NACK for a packet up to HighestPN came before this frame in its datagram, but
	// the receiver also sends its reports on a spare path, whose copy of a NACK lost on
	// the best one comes after later reports on the best one: the copies can go once
	// older than keepCopies (docs/DECISIONS.md).
	q.forgetUpToLocked(fb.HighestPN, now.Add(-time.Duration(s.keepCopies.Load())))
	s.drainLocked(now, q) // the window may have opened
}

// followReturnPathLocked notes which path carried a report taken about q, and restarts q's
// minimum RTT when the reports have come another way for returnSwitchReports in a row,
// their RTT lies well above the minimum, and the path that carried them before is no
// longer up: the return half of q's RTT is another path's now (the fastest path died), and
// a window sized from the old minimum would starve q. Paths of equal delay taking turns
// carrying the reports change nothing, nor does a switch while the old return path is
// still up: the RTT's rise is then q's own queue (after a startup overshoot, a 60 ms
// path's minimum restarted at 200 ms and its window overran the link). q.mu must be held.
func (s *Session) followReturnPathLocked(q *Path, via uint8, rtt time.Duration) {
	if !q.fbViaSet || via == q.fbVia {
		q.fbVia, q.fbViaSet, q.fbViaRun = via, true, 0
		return
	}
	q.fbViaRun++
	if q.fbViaRun < returnSwitchReports {
		return
	}
	min := q.stats.MinRTT()
	if rtt > min+max(returnSwitchMargin, min/4) {
		if old := s.pathByID(q.fbVia); old != nil && old.up.Load() {
			return // keep counting: the old path may yet be found dead (a cut is, in ≈ 0.1 s)
		}
		q.stats.ResetMinRTT()
	}
	q.fbVia, q.fbViaRun = via, 0
}

// onTimer is the session's timer callback (internal/timerq; timers.go): it does the
// session's periodic work at now and returns when it must run next, a tick from now while
// anything is active, else the earliest deadline of its idle timers (nextTimer).
func (s *Session) onTimer(now time.Time) time.Time {
	if s.closed.Load() {
		return time.Time{}
	}
	t := &s.tm
	if idle := now.UnixNano()-s.lastData.Load() >= int64(sessionIdleAfter); idle != t.idle {
		s.setIdleProbing(idle)
		t.idle = idle
	}
	s.flushTx() // a backstop: every entry point flushes what it sealed
	scratch := ctrlScratch.Get().(*[ctrlScratchSize]byte)
	defer ctrlScratch.Put(scratch) // the reports are built in it and sealed before the return
	fb, nacks, again := s.receiverTimers(now, scratch[:0])
	s.deliverOut()
	s.sendTimerReports(now, fb, nacks, again)
	s.tickLiveness(now)
	busy := s.probePaths(now) || len(fb) > 0 || len(again) > 0 // a datagram went out (timerState.due)
	// The reports and probes leave now: the rest of the run would add to their RTT.
	s.flushTx()
	s.resendInflight(now)
	s.serviceQueues(now)
	s.rebalance(now)
	s.tickKeys(now)
	if s.sendsTiers && t.due(now, t.lastTiers, tierInterval, busy) {
		s.sendTiers(now)
		t.lastTiers = now
		busy = true
	}
	if now.Sub(t.lastRecord) >= recordInterval {
		s.recMu.Lock()
		s.recordLocked(now)
		s.recMu.Unlock()
		t.lastRecord = now
	}
	s.controlTimers(now, busy)
	s.flushTx()
	return s.nextTimer(now)
}

// receiverTimers is the timer's receive-side work, under rxMu: it releases the reorder gaps
// whose deadline passed, appends the reports due to b (the NACKs, nacks bytes of them, then
// FEEDBACK), takes the NACK frames of the last run to send again, and every liveInterval
// updates the paths' liveness and the reorder buffer's repair allowance.
func (s *Session) receiverTimers(now time.Time, b []byte) (fb []byte, nacks int, again []byte) {
	t := &s.tm
	s.rxMu.Lock()
	defer s.rxMu.Unlock()
	if d, ok := s.reorder.NextDeadline(); ok && !now.Before(d) {
		s.releaseLocked(now)
	}
	if now.Sub(t.lastFeedback) >= feedbackInterval || s.nackN > 0 {
		// NACKs go first: FEEDBACK lets the sender forget its copies up to the
		// highest packet number, so a loss below it must already be reported.
		fb = s.nackFramesLocked(b)
		nacks = len(fb)
		fb = s.feedbackFramesLocked(now, fb)
		if len(fb) > 0 {
			t.lastFeedback = now
		}
	}
	t.again = append(t.again[:0], s.nackAgain...)
	s.nackAgain = s.nackAgain[:0]
	live := now.Sub(t.lastLive) >= liveInterval
	if live {
		s.liveDirty.Store(false)
		s.updateLiveLocked(now)
		t.lastLive = now
	}
	// The repair allowance follows the paths every 50 ms, and a path going silent
	// or speaking again at once.
	if fo := s.failoverHoldLocked(now); live || (fo > 0) != (t.lastFo > 0) {
		allowance, slowest := s.repairAllowance(now)
		s.reorder.SetRepair(now, allowance+fo)
		s.keepCopies.Store(int64(2*slowest + repairMargin))
		t.lastFo = fo
	}
	return fb, nacks, t.again
}

// sendTimerReports sends what receiverTimers built: the repeated NACKs on the best path, the
// reports (fb, its first nacks bytes NACKs) as sendReports routes them.
func (s *Session) sendTimerReports(now time.Time, fb []byte, nacks int, again []byte) {
	if len(again) > 0 {
		if best := s.bestPath(now); best != nil {
			s.sendControl(now, best, again)
		}
	}
	if len(fb) > 0 {
		// A copy on another uplink now and then: if the best path dies, the
		// others keep hearing about their own deliveries and do not look dead too.
		t := &s.tm
		spare := now.Sub(t.lastSpare) >= spareFeedbackInterval
		if spare {
			t.lastSpare = now
		}
		s.sendReports(now, fb, nacks, spare)
	}
}

// repairAllowance is how much longer the receiver's reorder buffer should hold a gap so a
// re-sent copy can fill it: a NACK and the copy each cross the fastest path. slowest is the
// largest SRTT of the usable paths (pathstat.DefaultInitialRTT while none is usable).
func (s *Session) repairAllowance(now time.Time) (allowance, slowest time.Duration) {
	best := time.Duration(0)
	for _, p := range s.pathList() {
		p.mu.Lock()
		if p.usableLocked(now) {
			rtt := p.stats.SRTT()
			if best == 0 || rtt < best {
				best = rtt
			}
			slowest = max(slowest, rtt)
		}
		p.mu.Unlock()
	}
	if best == 0 {
		return initialRepairAllowance, pathstat.DefaultInitialRTT
	}
	return best + repairMargin, slowest
}

// setIdleProbing makes every path of s probe at idleProbeInterval while it is Up and idle
// (idle: s carried no data for sessionIdleAfter), or at liveness's own interval again.
func (s *Session) setIdleProbing(idle bool) {
	iv := time.Duration(0)
	if idle {
		iv = idleProbeInterval
	}
	for _, p := range s.pathList() {
		p.mu.Lock()
		p.live.SetIdleProbeInterval(iv)
		p.mu.Unlock()
	}
}

// feedbackFramesLocked appends a FEEDBACK frame for every path that received datagrams
// since the last report. rxMu must be held.
func (s *Session) feedbackFramesLocked(now time.Time, b []byte) []byte {
	for _, p := range s.pathList() {
		if !p.rxDirty {
			continue
		}
		f := framing.Feedback{
			PathID:    p.id,
			HighestPN: p.rxHighest,
			Packets:   p.rxPackets,
			Bytes:     p.rxBytes,
			EchoTime:  p.rxEcho,
			Delay:     framing.Duration16(now.Sub(p.rxAt)),
		}
		if len(b)+f.Len() > 512-framing.Overhead {
			break // the rest goes out with the next tick
		}
		b = f.Append(b)
		p.rxDirty = false
	}
	return b
}

// failoverHoldLocked is how much longer the reorder buffer should hold gaps because a busy
// path went silent while another path still delivers: what it had in flight is lost, and
// the sender re-sends it on another path only once it finds the path suspect, after about
// max(suspectFloor, SRTT + 4·RTTVAR). Released earlier, the gaps would make those copies,
// and the failed path's queued packets the sender moves, arrive late and be dropped: the
// inner flows would see them all as lost and re-send them a second time over the survivor.
// Zero when no path is silent. rxMu must be held.
func (s *Session) failoverHoldLocked(now time.Time) time.Duration {
	var extra time.Duration
	for _, p := range s.pathList() {
		if !p.rxAny || p.rxGap >= busyGap {
			continue
		}
		quiet := now.Sub(p.lastRecv)
		if quiet < max(silentMin, silentGaps*p.rxGap) || quiet >= rxSilence || !s.othersDeliverLocked(now, p) {
			continue
		}
		p.mu.Lock()
		srtt, rttvar, state := p.stats.SRTT(), p.stats.RTTVar(), p.live.State()
		p.mu.Unlock()
		if state == liveness.Dead || state == liveness.Down {
			continue // the sender has given up on it as well
		}
		extra = max(extra, suspectFloor, srtt+4*max(rttvar, srtt/2))
	}
	return extra
}

// othersDeliverLocked reports whether a path other than p delivered within silentMin.
// rxMu must be held.
func (s *Session) othersDeliverLocked(now time.Time, p *Path) bool {
	for _, q := range s.pathList() {
		if q != p && q.rxAny && now.Sub(q.lastRecv) < silentMin {
			return true
		}
	}
	return false
}

// updateLiveLocked tells the reorder buffer which paths still deliver to us, so that a gap
// is not held for a path that went silent: one that delivered nothing for rxSilence, or
// whose other direction liveness found failing. A path that never delivered is left
// alone: the buffer makes it live on its first packet, so its delay enters the hold at
// once. Set dead before that (the timer's first run), it would stay out of the hold until
// the next update, and a session's first packets would wait only the repair allowance
// (docs/DECISIONS.md, "Reorder"). rxMu must be held.
func (s *Session) updateLiveLocked(now time.Time) {
	for _, p := range s.pathList() {
		if !p.rxAny {
			continue
		}
		live := now.Sub(p.lastRecv) < rxSilence
		if live {
			p.mu.Lock()
			switch p.live.State() {
			case liveness.Suspect, liveness.Dead, liveness.Down:
				live = false
			}
			p.mu.Unlock()
		}
		s.reorder.SetLive(now, p.id, live)
	}
}

// bestPath is the usable path with the lowest RTT, or else the first one that ever answered.
func (s *Session) bestPath(now time.Time) *Path {
	var best, fallback *Path
	var bestRTT time.Duration
	for _, p := range s.pathList() {
		p.mu.Lock()
		usable := p.usableLocked(now)
		rtt := p.stats.SRTT()
		reachable := p.live.State() != liveness.Validating && p.live.State() != liveness.Down && p.remote.IsValid()
		p.mu.Unlock()
		if usable && (best == nil || rtt < bestRTT) {
			best, bestRTT = p, rtt
		}
		if reachable && fallback == nil {
			fallback = p
		}
	}
	if best != nil {
		return best
	}
	return fallback
}

// sparePath is the usable path with the lowest RTT on another uplink than best's (on best's
// uplink if there is no other), or nil.
func (s *Session) sparePath(now time.Time, best *Path) *Path {
	if best == nil {
		return nil
	}
	var spare *Path
	var spareRTT time.Duration
	otherUplink := false
	for _, p := range s.pathList() {
		if p == best {
			continue
		}
		p.mu.Lock()
		usable := p.usableLocked(now)
		rtt := p.stats.SRTT()
		p.mu.Unlock()
		other := p.id>>4 != best.id>>4
		if !usable || (otherUplink && !other) {
			continue
		}
		if spare == nil || (other && !otherUplink) || rtt < spareRTT {
			spare, spareRTT, otherUplink = p, rtt, other
		}
	}
	return spare
}

// sendReports sends fb, report frames whose first nacks bytes are NACK frames, on the best
// path, and a copy on a spare path if spare is set. The NACKs go twice: a lost NACK was a
// loss the sender never re-sent, so about one loss in a hundred reached the inner flows on
// a link that loses 1 % both ways, and one such loss in a flow's slow start held it below
// half of the links' sum for seconds (docs/DECISIONS.md). With a second path the copy of
// the report carries them at once (the sender keeps its copies long enough for it,
// keepCopies); with one, they go again with the timer's next run (nackAgain). A NACK
// whose copies were re-sent already finds none the second time and costs nothing more.
func (s *Session) sendReports(now time.Time, fb []byte, nacks int, spare bool) {
	best := s.bestPath(now)
	if best == nil {
		return
	}
	s.sendControl(now, best, fb)
	if !spare && nacks == 0 {
		return
	}
	if q := s.sparePath(now, best); q != nil {
		s.sendControl(now, q, fb)
		return
	}
	if nacks > 0 {
		s.rxMu.Lock()
		if len(s.nackAgain)+nacks <= maxNackAgain {
			s.nackAgain = append(s.nackAgain, fb[:nacks]...)
		}
		s.rxMu.Unlock()
		s.wakeTimer(now)
	}
}

// maxNackAgain bounds the NACK frames waiting for their second sending: what fits one
// control datagram with room to spare.
const maxNackAgain = 256

// probePaths sends a PROBE on every path whose liveness state wants one now: unvalidated,
// idle, suspect, dead or rejoining paths, each at its own interval. It reports whether it
// sent one.
func (s *Session) probePaths(now time.Time) (sent bool) {
	var buf [16]byte
	for _, p := range s.pathList() {
		p.mu.Lock()
		if p.remote.IsValid() && p.live.ProbeDue(now) {
			p.live.MarkProbed(now)
			p.probeID++
			if p.probeID == 0 {
				p.probeID = 1
			}
			probe := framing.Probe{ID: p.probeID}
			s.sendControlLocked(now, p, probe.Append(buf[:0]))
			sent = true
		}
		s.tickValidationLocked(now, p)
		p.mu.Unlock()
	}
	return sent
}

// tickLiveness runs every path's liveness timers, and brings back a path that a socket
// error took down once socketErrorRetry has passed.
func (s *Session) tickLiveness(now time.Time) {
	paths := s.pathList()
	usable := 0
	for _, p := range paths {
		p.mu.Lock()
		if p.usableLocked(now) {
			usable++
		}
		p.mu.Unlock()
	}
	for _, p := range paths {
		p.mu.Lock()
		p.live.SetAlone(usable == 0 || usable == 1 && p.usableLocked(now))
		if p.live.State() == liveness.Down && !p.downErr.IsZero() && now.Sub(p.downErr) >= socketErrorRetry {
			p.downErr = time.Time{}
			s.onLiveness(now, p, p.live.OnLocalUp(now))
		}
		tr := p.live.Tick(now, p.stats.Inflight() > 0, p.stats.SRTT(), p.stats.RTTVar())
		s.onLiveness(now, p, tr)
		p.mu.Unlock()
	}
}

// onLiveness reacts to a change of p's liveness state. p.mu must be held.
func (s *Session) onLiveness(now time.Time, p *Path, tr liveness.Transition) {
	if !tr.Changed {
		return
	}
	s.liveDirty.Store(true)
	s.wakeTimer(now) // its deadlines changed (outside the timer: feedback, netlink, send errors)
	level := slog.LevelInfo
	if (tr.From == liveness.Down && tr.To == liveness.Validating) || (tr.From == liveness.Validating && tr.To == liveness.Down) {
		level = slog.LevelDebug // retries after socket errors: one line per second otherwise
	}
	s.log.Log(context.Background(), level, "path "+tr.To.String(), "peer", s.peerName, "path", p.name, "was", tr.From.String(), "srtt", p.stats.SRTT().Round(100*time.Microsecond))
	p.up.Store(tr.To == liveness.Up)
	if tr.To == liveness.Up {
		s.ups.Add(1)
		p.usableAt = now
	}
	if tr.Restart() {
		p.stats = pathstat.New(now) // rejoin with the rate estimate restarted low
		p.ackedPN = 0
		p.measuredAt = time.Time{}
	}
	if tr.From == liveness.Up && tr.To != liveness.Up {
		// New traffic moves off at once (the path is not usable any more); what is in flight
		// on it is re-sent on the other paths by the timer (resendInflight), outside p.mu.
		p.resend = true
		p.failovers++
	}
}

// setUplinkTier sets the tier of every path of one uplink and tells the peer at once.
func (s *Session) setUplinkTier(uplink, tier uint8) {
	for _, p := range s.pathList() {
		if p.id>>4 == uplink {
			p.mu.Lock()
			if tier == framing.TierPrimary && p.tier != tier {
				p.usableAt = s.now()
			}
			p.tier = tier
			p.mu.Unlock()
		}
	}
	now := s.now()
	s.sendTiers(now)
	s.flushTx()
	s.wakeTimer(now) // the datagram is owed an answer: liveness's deadlines moved
}

// sendTiers sends a PATH_STATUS frame for every path on the best path.
func (s *Session) sendTiers(now time.Time) {
	var buf [256]byte
	b := buf[:0]
	for _, p := range s.pathList() {
		p.mu.Lock()
		f := framing.PathStatus{PathID: p.id, Tier: p.tier}
		p.mu.Unlock()
		if len(b)+f.Len() > len(buf)-framing.Overhead {
			break
		}
		b = f.Append(b)
	}
	if p := s.bestPath(now); p != nil && len(b) > 0 {
		s.sendControl(now, p, b)
	}
}

// resendInflight re-sends, on the other paths, the packets still unacknowledged on a path
// that just stopped being usable: the receiver drops whichever copy comes second.
func (s *Session) resendInflight(now time.Time) {
	for _, p := range s.pathList() {
		p.mu.Lock()
		if !p.resend {
			p.mu.Unlock()
			continue
		}
		p.resend = false
		first, last := p.ackedPN+1, p.pn
		if first < p.forgotten {
			first = p.forgotten
		}
		p.mu.Unlock()
		for pn := first; pn < last; pn += 64 {
			n := min(last-pn, 64)
			s.repair(now, p, framing.Nack{PathID: p.id, First: pn, Count: uint16(n)})
		}
	}
}
