package session

import (
	"encoding/binary"
	"net/netip"
	"sync"
	"time"
)

// An inner TCP model for the fake-clock simulation (simtcpnet_test.go runs it through the
// tunnel): one bulk sender and its receiver exchanging real IPv4/TCP packets, so that the
// session engine sees what it sees from a kernel's flow (flow lanes, small ACKs, inner
// retransmissions). It models what decides a Linux Cubic flow's goodput over the tunnel:
//
//   - Cubic (RFC 9438, C = 0.4, β = 0.7, fast convergence, the Reno-friendly region, and
//     Linux's growth of at least 5 % per round trip before the first loss) with Linux's
//     HyStart (ACK train and delay increase, from 16 segments) ending slow start;
//   - loss detection by RACK (RFC 8985) with Linux's reordering window: 0 until reordering
//     was seen and 3 segments are SACKed (the duplicate-ACK threshold), else min RTT / 4;
//   - fast recovery with Proportional Rate Reduction (RFC 6937, PRR-SSRB);
//   - the retransmission timer of RFC 6298 in Linux's form (srtt + max(4·rttvar, 200 ms),
//     re-armed when the first unacknowledged segment is re-sent), backing off exponentially,
//     after which everything not SACKed is lost and slow start begins again;
//   - a receiver acknowledging every second segment (40 ms delayed-ACK timer), at once for
//     out-of-order data and filled holes, with up to 3 SACK blocks (RFC 2018) and D-SACK
//     (RFC 2883); its window is unlimited.
//
// Left out: the handshake, pacing (Cubic without fq does not pace), TSO, the receive window,
// F-RTO, tail loss probes, and D-SACK widening of the reordering window.
//
// Sequence numbers count segments of tcpMSS bytes; the header carries bytes (mod 2^32).

const (
	tcpMTU       = 1440                   // a full segment's packet: the tunnel's auto MTU (docs/CONFIG.md)
	tcpHdrLen    = 20 + 20 + 12           // IPv4, TCP, timestamps option
	tcpMSS       = tcpMTU - tcpHdrLen     // payload bytes per segment
	tcpMinRTO    = 200 * time.Millisecond // Linux's floor (RFC 6298 says 1 s)
	tcpMaxRTO    = 60 * time.Second
	tcpInitRTO   = time.Second
	tcpDelAck    = 40 * time.Millisecond
	tcpInitCwnd  = 10
	cubicC       = 0.4
	cubicBeta    = 0.7
	hystartLow   = 16 // segments: HyStart only from this window on
	hystartDelta = 2 * time.Millisecond
	tcpPort      = 5201
)

// tcpSeg is one segment of the sender's scoreboard: in flight, SACKed, or lost (marked,
// awaiting its retransmission, and then in flight again).
type tcpSeg struct {
	sent time.Time // of the latest transmission
	// order is the latest transmission's rank among all the sender's. RACK asks which of
	// two segments was sent later; Linux compares send times, then sequence numbers for
	// one burst's segments. The bubble's clock stands still while two ACKs are handled
	// one after the other, so a segment re-sent for the second comes at the same instant
	// as new ones sent for the first, with a lower sequence number, and looked sent
	// before them: delivered after them, it was marked lost again, and its second copy's
	// send time, taken for the first's delivery, had a whole window re-sent (a flake of
	// TestSimTCPModel/lossy, 108 spurious retransmissions).
	order  uint64
	retx   bool // retransmitted at least once
	sacked bool
	lost   bool
}

type tcpState uint8

const (
	tcpOpen     tcpState = iota
	tcpRecovery          // fast recovery (PRR)
	tcpLoss              // after a retransmission timeout
)

// tcpSender is the client's bulk sender: limit segments (0: unlimited) as fast as its
// window allows.
type tcpSender struct {
	mu    sync.Mutex
	out   func([]byte) // hands a packet to the client's TUN
	src   netip.Addr
	dst   netip.Addr
	limit uint64
	buf   []byte // the packet being built

	base   uint64   // snd.una, in segments
	segs   []tcpSeg // base, base+1, …, snd.nxt-1
	sacked int      // segments of segs SACKed
	lost   int      // segments of segs marked lost and not yet re-sent
	cursor uint64   // no lost segment below it
	high   uint64   // one past the highest SACKed segment

	cwnd, ssthresh float64 // segments
	state          tcpState
	recoverPt      uint64
	priorCwnd      float64
	prrDelivered   int
	prrOut         int

	srtt, rttvar, minRTT time.Duration
	rto                  time.Duration
	backoff              int // RTOs in a row
	rtoTimer             *time.Timer
	rtoAt                time.Time

	rackXmit  time.Time
	rackOrder uint64 // the transmission order of the segment rackXmit is from
	xmits     uint64 // transmissions so far
	rackRTT   time.Duration
	reordSeen bool
	reoTimer  *time.Timer

	// Cubic
	wMax, k, origin, wEst float64
	epoch                 time.Time
	// HyStart
	hsFound               bool
	roundEnd              uint64
	roundStart, lastAck   time.Time
	currRTT               time.Duration
	sampleCnt             int
	stopped               bool
	retransmits, timeouts int
	recoveries            int
	spurious              int // D-SACKs: retransmissions that were not needed
}

func newTCPSender(src, dst netip.Addr, limit uint64, out func([]byte)) *tcpSender {
	return &tcpSender{out: out, src: src, dst: dst, limit: limit, buf: make([]byte, tcpMTU),
		cwnd: tcpInitCwnd, ssthresh: 1e9, rto: time.Second}
}

// start sends the first window.
func (s *tcpSender) start() {
	s.mu.Lock()
	defer s.mu.Unlock()
	s.trySendLocked(time.Now())
}

// stop ends the sender's timers; it sends nothing after.
func (s *tcpSender) stop() {
	s.mu.Lock()
	defer s.mu.Unlock()
	s.stopped = true
	if s.rtoTimer != nil {
		s.rtoTimer.Stop()
	}
	if s.reoTimer != nil {
		s.reoTimer.Stop()
	}
}

func (s *tcpSender) nxt() uint64 { return s.base + uint64(len(s.segs)) }
func (s *tcpSender) pipe() int   { return len(s.segs) - s.sacked - s.lost }

// done reports whether a limited sender had everything acknowledged.
func (s *tcpSender) done() bool {
	s.mu.Lock()
	defer s.mu.Unlock()
	return s.limit > 0 && s.base == s.limit
}

// trySendLocked sends lost segments first, then new ones, while the window has room.
func (s *tcpSender) trySendLocked(now time.Time) {
	if s.stopped {
		return
	}
	for float64(s.pipe()) < s.cwnd {
		k, ok := s.nextLostLocked()
		if !ok {
			if s.limit > 0 && s.nxt() >= s.limit {
				break
			}
			k = s.nxt()
			s.segs = append(s.segs, tcpSeg{})
		} else {
			s.lost--
			s.retransmits++
			g := &s.segs[k-s.base]
			g.retx, g.lost = true, false
			if k == s.base {
				s.rtoAt = time.Time{} // Linux re-arms the timer when it re-sends the head
			}
		}
		s.xmits++
		s.segs[k-s.base].sent, s.segs[k-s.base].order = now, s.xmits
		if s.state == tcpRecovery {
			s.prrOut++
		}
		s.transmitLocked(now, k)
	}
	if len(s.segs) > 0 && (s.rtoTimer == nil || s.rtoAt.IsZero()) {
		s.armRTOLocked(now)
	}
}

func (s *tcpSender) nextLostLocked() (uint64, bool) {
	if s.lost == 0 {
		return 0, false
	}
	s.cursor = max(s.cursor, s.base)
	for ; s.cursor < s.nxt(); s.cursor++ {
		if g := &s.segs[s.cursor-s.base]; g.lost {
			return s.cursor, true
		}
	}
	panic("tcpSender: lost count without a lost segment")
}

func (s *tcpSender) transmitLocked(now time.Time, k uint64) {
	p := s.buf[:tcpMTU]
	putTCPHeader(p, s.src, s.dst, tcpPort+1, tcpPort, uint32(k*tcpMSS), 0, tcpMTU, 12, now)
	// The payload names its stream offset at both ends, so the receiver sees misplaced data.
	binary.BigEndian.PutUint64(p[tcpHdrLen:], k)
	binary.BigEndian.PutUint64(p[tcpMTU-8:], k)
	s.out(p)
}

func (s *tcpSender) armRTOLocked(now time.Time) {
	s.rtoAt = now.Add(s.rto)
	if s.rtoTimer == nil {
		s.rtoTimer = time.AfterFunc(s.rto, s.onRTO)
	} else {
		s.rtoTimer.Reset(s.rto)
	}
}

// onAck takes an acknowledgement: the next expected segment and the SACK blocks.
func (s *tcpSender) onAck(ack uint64, blocks [][2]uint64) {
	s.mu.Lock()
	defer s.mu.Unlock()
	if s.stopped {
		return
	}
	now := time.Now()
	delivered := 0
	var rtt time.Duration = -1
	highBefore := s.high
	took := func(k uint64, g *tcpSeg) {
		delivered++
		if !g.retx {
			if r := now.Sub(g.sent); rtt < 0 || r < rtt {
				rtt = r
			}
			if k < highBefore {
				s.reordSeen = true // delivered below what was SACKed, never re-sent
			}
		}
		// RACK: the most recently sent of the delivered segments (a re-sent one only if its
		// RTT rules out the original's delivery).
		if g.retx && now.Sub(g.sent) < s.minRTT {
			return
		}
		if g.order > s.rackOrder {
			s.rackXmit, s.rackOrder, s.rackRTT = g.sent, g.order, now.Sub(g.sent)
		}
	}
	advanced := ack > s.base
	for ack > s.base && len(s.segs) > 0 {
		g := &s.segs[0]
		switch {
		case g.sacked:
			s.sacked--
		case g.lost:
			s.lost--
			took(s.base, g)
		default:
			took(s.base, g)
		}
		s.segs = s.segs[1:]
		s.base++
	}
	for i, b := range blocks {
		if b[1] <= ack {
			if i == 0 {
				s.spurious++ // D-SACK
			}
			continue
		}
		for k := max(b[0], s.base); k < min(b[1], s.nxt()); k++ {
			g := &s.segs[k-s.base]
			if g.sacked {
				continue
			}
			if g.lost {
				s.lost--
			}
			g.sacked, g.lost = true, false
			s.sacked++
			took(k, g)
			s.high = max(s.high, k+1)
		}
	}
	if rtt >= 0 {
		s.rttSampleLocked(rtt)
	}
	if advanced && s.backoff > 0 {
		s.backoff = 0
		s.setRTOLocked()
	}
	if s.sacked > 0 || s.state != tcpOpen {
		s.rackDetectLocked(now)
	}
	s.stateLocked(now, delivered, rtt)
	if advanced {
		if len(s.segs) > 0 {
			s.armRTOLocked(now)
		} else {
			s.rtoAt = time.Time{}
			s.rtoTimer.Stop()
		}
	}
	s.trySendLocked(now)
}

// rttSampleLocked updates the RTT estimates and the timeout (RFC 6298).
func (s *tcpSender) rttSampleLocked(r time.Duration) {
	if s.minRTT == 0 || r < s.minRTT {
		s.minRTT = r
	}
	if s.srtt == 0 {
		s.srtt, s.rttvar = r, r/2
	} else {
		d := s.srtt - r
		if d < 0 {
			d = -d
		}
		s.rttvar = (3*s.rttvar + d) / 4
		s.srtt = (7*s.srtt + r) / 8
	}
	s.setRTOLocked()
}

// setRTOLocked sets the timeout the way Linux does (tcp_set_rto): srtt plus the variation
// term, which is never below the 200 ms floor, so the timeout is at least srtt + 200 ms.
func (s *tcpSender) setRTOLocked() {
	rto := tcpInitRTO
	if s.srtt > 0 {
		rto = s.srtt + max(4*s.rttvar, tcpMinRTO)
	}
	s.rto = min(rto<<s.backoff, tcpMaxRTO)
}

// reoWndLocked is Linux's RACK reordering window (tcp_rack_reo_wnd).
func (s *tcpSender) reoWndLocked() time.Duration {
	if !s.reordSeen && (s.state != tcpOpen || s.sacked >= 3) {
		return 0
	}
	return min(s.minRTT/4, s.srtt)
}

// rackDetectLocked marks lost every segment in flight sent before the most recently sent
// delivered one, longer than its RTT and the reordering window ago (RFC 8985); for the
// others it arms the reordering timer.
func (s *tcpSender) rackDetectLocked(now time.Time) {
	if s.rackXmit.IsZero() {
		return
	}
	win := s.rackRTT + s.reoWndLocked()
	var wait time.Duration
	for i := range s.segs {
		g := &s.segs[i]
		if g.sacked || g.lost {
			continue
		}
		k := s.base + uint64(i)
		if g.order >= s.rackOrder {
			continue
		}
		if left := g.sent.Add(win).Sub(now); left > 0 {
			if wait == 0 || left < wait {
				wait = left
			}
			continue
		}
		g.lost = true
		s.lost++
		s.cursor = min(s.cursor, k)
	}
	if wait > 0 {
		if s.reoTimer == nil {
			s.reoTimer = time.AfterFunc(wait, s.onReorderTimer)
		} else {
			s.reoTimer.Reset(wait)
		}
	}
}

func (s *tcpSender) onReorderTimer() {
	s.mu.Lock()
	defer s.mu.Unlock()
	if s.stopped {
		return
	}
	now := time.Now()
	s.rackDetectLocked(now)
	s.stateLocked(now, 0, -1)
	s.trySendLocked(now)
}

// stateLocked moves between open, recovery and loss and grows or reduces the window for
// delivered newly delivered segments.
func (s *tcpSender) stateLocked(now time.Time, delivered int, rtt time.Duration) {
	if s.state != tcpOpen && s.base >= s.recoverPt {
		if s.state == tcpRecovery {
			s.cwnd = s.ssthresh // the end of the reduction (PRR)
		}
		s.state = tcpOpen
	}
	if s.state == tcpOpen && s.lost > 0 {
		s.state = tcpRecovery
		s.recoveries++
		s.recoverPt = s.nxt()
		s.priorCwnd = s.cwnd
		s.congestionLocked()
		s.prrDelivered, s.prrOut = 0, 0
	}
	switch s.state {
	case tcpRecovery: // PRR (RFC 6937), in segments
		s.prrDelivered += delivered
		pipe := s.pipe()
		var sndcnt int
		if float64(pipe) > s.ssthresh {
			sndcnt = int((s.ssthresh*float64(s.prrDelivered)+s.priorCwnd-1)/s.priorCwnd) - s.prrOut
		} else {
			sndcnt = min(int(s.ssthresh)-pipe, max(s.prrDelivered-s.prrOut, delivered)+1)
		}
		if s.prrOut == 0 {
			sndcnt = max(sndcnt, 1)
		}
		s.cwnd = float64(pipe + max(sndcnt, 0))
	default:
		if delivered > 0 {
			s.growLocked(now, delivered, rtt)
		}
	}
}

// congestionLocked is Cubic's reaction to a loss: remember W_max, reduce by β.
func (s *tcpSender) congestionLocked() {
	s.epoch = time.Time{}
	if s.cwnd < s.wMax {
		s.wMax = s.cwnd * (1 + cubicBeta) / 2 // fast convergence
	} else {
		s.wMax = s.cwnd
	}
	s.ssthresh = max(s.cwnd*cubicBeta, 2)
}

// growLocked is slow start (with HyStart) below ssthresh, Cubic above.
func (s *tcpSender) growLocked(now time.Time, acked int, rtt time.Duration) {
	if s.cwnd < s.ssthresh {
		s.hystartLocked(now, rtt)
		n := min(float64(acked), s.ssthresh-s.cwnd)
		s.cwnd += n
		acked -= int(n)
		if acked <= 0 {
			return
		}
	}
	if s.epoch.IsZero() {
		s.epoch = now
		if s.cwnd < s.wMax {
			s.k = cbrt((s.wMax - s.cwnd) / cubicC)
			s.origin = s.wMax
		} else {
			s.k, s.origin = 0, s.cwnd
		}
		s.wEst = s.cwnd
	}
	// Per acknowledged segment the window grows by the most of: the step toward the curve
	// one RTT ahead (at most 1.5 × per RTT), the step toward the Reno-friendly estimate,
	// and, before the first loss, 5 % per RTT (Linux's bictcp_update: the curve is too
	// timid while the bandwidth is unknown).
	t := now.Sub(s.epoch).Seconds()
	s.wEst += 3 * (1 - cubicBeta) / (1 + cubicBeta) * float64(acked) / s.cwnd
	target := min(max(s.wCubic(t+s.minRTT.Seconds()), s.cwnd), 1.5*s.cwnd)
	inc := (target - s.cwnd) / s.cwnd
	if s.wEst > s.cwnd {
		inc = max(inc, (s.wEst-s.cwnd)/s.cwnd)
	}
	if s.wMax == 0 {
		inc = max(inc, 1.0/20)
	}
	s.cwnd += inc * float64(acked)
}

func (s *tcpSender) wCubic(t float64) float64 {
	d := t - s.k
	return cubicC*d*d*d + s.origin
}

func cbrt(x float64) float64 {
	if x <= 0 {
		return 0
	}
	r := x
	for range 60 {
		r = (2*r + x/(r*r)) / 3
	}
	return r
}

// hystartLocked is Linux Cubic's HyStart: slow start ends when a round's ACK train lasts
// half the min RTT, or its RTT rises an eighth of the min RTT (4 to 16 ms) above it.
func (s *tcpSender) hystartLocked(now time.Time, rtt time.Duration) {
	if s.hsFound {
		return
	}
	if s.base > s.roundEnd {
		s.roundEnd = s.nxt()
		s.roundStart, s.lastAck = now, now
		s.currRTT, s.sampleCnt = 0, 0
	}
	if s.cwnd < hystartLow || s.minRTT == 0 {
		return
	}
	if now.Sub(s.lastAck) <= hystartDelta {
		s.lastAck = now
		if now.Sub(s.roundStart) > s.minRTT/2 {
			s.hsFound = true
		}
	}
	if rtt > 0 {
		if s.currRTT == 0 || rtt < s.currRTT {
			s.currRTT = rtt
		}
		if s.sampleCnt < 8 {
			s.sampleCnt++
		} else if s.currRTT > s.minRTT+min(max(s.minRTT/8, 4*time.Millisecond), 16*time.Millisecond) {
			s.hsFound = true
		}
	}
	if s.hsFound {
		s.ssthresh = s.cwnd
	}
}

// onRTO: everything not SACKed is lost, the window is one segment, slow start again.
func (s *tcpSender) onRTO() {
	s.mu.Lock()
	defer s.mu.Unlock()
	if s.stopped || len(s.segs) == 0 {
		return
	}
	now := time.Now()
	if s.rtoAt.IsZero() {
		return
	}
	if d := s.rtoAt.Sub(now); d > 0 { // re-armed meanwhile
		s.rtoTimer.Reset(d)
		return
	}
	s.timeouts++
	if s.state != tcpLoss {
		s.congestionLocked()
	}
	s.cwnd = 1
	s.state = tcpLoss
	s.recoverPt = s.nxt()
	s.hsFound = false
	for i := range s.segs {
		if g := &s.segs[i]; !g.sacked && !g.lost {
			g.lost = true
			s.lost++
		}
	}
	s.cursor = s.base
	s.backoff++
	s.setRTOLocked()
	s.rtoAt = time.Time{}
	s.trySendLocked(now)
}
