// Package pathstat keeps the sender's view of one path: smoothed and minimum
// RTT, delivery rate, bytes in flight and loss, computed from what the sender
// sent and from the FEEDBACK and PROBE_ACK frames it gets back
// (docs/PROTOCOL.md §4).
//
// The package is pure logic: no goroutines, sockets or clock reads. Every
// method takes the current time as now, so tests drive it with a scripted
// clock. OnSent and OnFeedback allocate nothing; they are called once per
// datagram and once per feedback frame.
//
// Packet numbers are per path, start at 0 and grow by one per datagram. Paths
// are assumed FIFO: when feedback reports highest packet number H, every
// packet numbered ≤ H has either been received or is lost.
package pathstat

import (
	"math"
	"time"
)

// Defaults used before the first sample, so a scheduler can work from the
// first packet.
const (
	// DefaultInitialRate is 10 Mbit/s, in bytes per second.
	DefaultInitialRate = 1.25e6
	// DefaultInitialRTT is the SRTT and MinRTT reported before any sample.
	DefaultInitialRTT = 100 * time.Millisecond
)

const (
	// DefaultRingSize is how many sent packets are remembered at most for
	// inflight and delivery-rate accounting (32 bytes each, so up to 256 KiB per
	// path): at 1 Gbit/s of 1400-byte packets it covers ≈ 90 ms, above the
	// bandwidth-delay product of the links bondtun targets. The ring starts at
	// initialRingSize and doubles whenever the packets in flight fill it, so an
	// idle path (of one of a thousand idle sessions) holds 512 bytes.
	DefaultRingSize = 8192
	initialRingSize = 16
	// minRingSize keeps a misconfigured ring useful.
	minRingSize = 64
	// rateRounds is the delivery-rate max filter's window, in packet-timed
	// round trips (BBR uses 10).
	rateRounds = 10
	// minRateInterval is the shortest interval a delivery-rate sample may
	// span, so feedback jitter at low RTT does not inflate it.
	minRateInterval = 10 * time.Millisecond
	// lossGain is the EWMA weight of one feedback frame's loss fraction.
	lossGain = 1.0 / 8
	// appLimitedFraction: a delivery-rate sample whose packets were sent
	// slower than this fraction of the current estimate measured the
	// sender's demand, not the path; it may raise the estimate but not
	// lower it (BBR's app-limited rule).
	appLimitedFraction = 0.8
	// behindFraction and behindMinPackets: a sample shows that a path fell
	// behind a light load when it delivered less than behindFraction of the
	// send rate over at least behindMinPackets datagrams. Over a few sparse
	// datagrams (control traffic, probes) the ratio of delivery to send
	// spacing is one datagram's jitter, and a few ms of jitter (the
	// receiver's 5 ms FEEDBACK grid, a busy CPU, a jittery link) stretch a
	// 20 ms span by more than the 10 % once allowed: taken as "behind", they
	// drove healthy paths' estimates to the control traffic's few kB/s and
	// the next transfer started on one path only (issue 12). A link whose
	// delay varies from packet to packet (σ = 8 ms behind a FIFO) stretches
	// a one-SRTT span by 25–35 %, so ¾ still cut a healthy LTE link's
	// estimate from 10 to 2 Mbit/s in its first second. A path that really
	// falls behind builds a queue, and its deliveries lag by far more; a
	// milder overload of a path offered less than its estimate is not told
	// from jitter, and waits until the path is offered its estimate.
	behindFraction   = 0.5
	behindMinPackets = 16
)

// Config tunes a Stats: the values reported before any sample and the size
// of its sent-packet ring. Zero fields mean the defaults.
type Config struct {
	// InitialRate is DeliveryRate before the first sample, in bytes/s.
	// Default DefaultInitialRate.
	InitialRate float64
	// InitialRTT is SRTT and MinRTT before the first sample (RTTVar is half of
	// it, as in RFC 6298). Default DefaultInitialRTT.
	InitialRTT time.Duration
	// RingSize is how many sent packets are remembered, rounded up to a
	// power of two (at least 64). It should exceed the packets in flight
	// at the path's highest rate; older unacknowledged packets are dropped
	// from Inflight. Default DefaultRingSize.
	RingSize int
}

// sentPacket is one ring entry. Times are offsets from Stats.base, so the
// ring holds no pointers for the garbage collector to scan.
type sentPacket struct {
	pnPlus1 uint64        // packet number + 1; 0 marks an empty slot
	sentAt  time.Duration // offset from base
	size    int32
	// over: sent during startup with more than fullPipeGrowth × the estimated
	// bandwidth-delay product in flight (startup.go, the over-offer rule).
	over    bool
	cumSent uint64 // bytes sent on the path up to and including this packet
}

// Stats is the sender's metrics of one path. Create it with [New]; the zero
// value is not usable. It is not safe for concurrent use: the path's owner
// calls it from one goroutine or under its own lock.
type Stats struct {
	cfg  Config
	base time.Time // times are kept as offsets from base

	ring      []sentPacket // len is a power of two
	mask      uint64       // len(ring) - 1
	sent      uint64       // datagrams recorded by OnSent
	sentBytes uint64       // bytes recorded by OnSent
	nextPN    uint64       // one above the highest packet number sent
	inflight  int64        // bytes sent with pn > acked
	hasAcked  bool
	acked     uint64 // highest packet number reported received
	lost      uint64
	lossRate  float64
	lastHeard time.Time

	rtt rttEstimator

	// Delivery rate: a sample spans from the reference feedback (refAt,
	// refBytes, and the send time of its highest packet) to a later one.
	haveRef    bool
	refAt      time.Duration // when the reference's highest packet arrived, on the sender's clock
	refPN      uint64
	refSentAt  time.Duration
	refBytes   uint64
	refCumSent uint64 // cumSent of the reference's highest packet
	refKnown   bool   // refSentAt and refCumSent are known (still in the ring)
	rate       maxFilter
	round      int64  // packet-timed round trips seen so far
	roundEndPN uint64 // the round ends when this packet is acknowledged

	ceiling lossCeiling
	pipe    fullPipe
}

// New returns the statistics of a fresh path created at now. LastHeard starts
// at now, so liveness timers count silence from the path's creation.
func New(now time.Time) *Stats { return NewWithConfig(now, Config{}) }

// NewWithConfig is [New] with explicit initial values.
func NewWithConfig(now time.Time, cfg Config) *Stats {
	if cfg.InitialRate <= 0 {
		cfg.InitialRate = DefaultInitialRate
	}
	if cfg.InitialRTT <= 0 {
		cfg.InitialRTT = DefaultInitialRTT
	}
	if cfg.RingSize <= 0 {
		cfg.RingSize = DefaultRingSize
	}
	n := minRingSize
	for n < cfg.RingSize && n < 1<<30 {
		n <<= 1
	}
	cfg.RingSize = n
	first := min(n, initialRingSize)
	return &Stats{cfg: cfg, base: now, lastHeard: now, ring: make([]sentPacket, first), mask: uint64(first - 1)}
}

// OnSent records datagram pn of size bytes sent at now. Packet numbers must
// increase; a call with a number not above the last one is ignored.
func (s *Stats) OnSent(now time.Time, pn uint64, size int) {
	if s.sent > 0 && pn < s.nextPN {
		return
	}
	e := &s.ring[pn&s.mask]
	for e.pnPlus1 != 0 && !s.isAcked(e.pnPlus1-1) && len(s.ring) < s.cfg.RingSize {
		s.grow() // the packets in flight fill the ring
		e = &s.ring[pn&s.mask]
	}
	if e.pnPlus1 != 0 && !s.isAcked(e.pnPlus1-1) {
		// The slot still holds an unacknowledged packet from a ring's
		// length ago. Forget it, so inflight cannot leak.
		s.inflight -= int64(e.size)
	}
	s.sentBytes += uint64(size)
	s.inflight += int64(size)
	*e = sentPacket{pnPlus1: pn + 1, sentAt: now.Sub(s.base), size: int32(size), over: s.overOffered(), cumSent: s.sentBytes}
	s.ceiling.onSent(s.inflight)
	s.sent++
	s.nextPN = pn + 1
}

// grow doubles the ring, each entry keeping its packet number's slot.
func (s *Stats) grow() {
	next := make([]sentPacket, 2*len(s.ring))
	mask := uint64(len(next) - 1)
	for _, e := range s.ring {
		if e.pnPlus1 != 0 {
			next[(e.pnPlus1-1)&mask] = e
		}
	}
	s.ring, s.mask = next, mask
}

// SentAt returns when packet pn was sent, if the ring still remembers it. A sender can
// compute a round-trip sample from FEEDBACK with it: now − SentAt(highest) − delay.
func (s *Stats) SentAt(pn uint64) (time.Time, bool) {
	e, ok := s.lookup(pn)
	if !ok {
		return time.Time{}, false
	}
	return s.base.Add(e.sentAt), true
}

func (s *Stats) isAcked(pn uint64) bool { return s.hasAcked && pn <= s.acked }

// lookup returns the ring entry of pn, if it is still there.
func (s *Stats) lookup(pn uint64) (*sentPacket, bool) {
	e := &s.ring[pn&s.mask]
	return e, e.pnPlus1 == pn+1
}

// OnFeedback applies a FEEDBACK frame received at now: the highest packet
// number received on this path, the cumulative count of packets (mod 2^32)
// and bytes received, the RTT derived from its echo (see [RTTFromEcho]), or
// [NoRTT] when there is none, and delay, how long the receiver held the
// report after that packet arrived (the frame's Delay field).
//
// Feedback that acknowledges nothing new (reordered or duplicate frames) only
// refreshes LastHeard and the RTT; feedback naming a packet never sent is
// ignored apart from LastHeard.
func (s *Stats) OnFeedback(now time.Time, highestPN uint64, packets uint32, bytes uint64, rtt, delay time.Duration) {
	s.lastHeard = now
	if s.sent == 0 || highestPN >= s.nextPN {
		return
	}
	if rtt >= 0 {
		s.rtt.add(now.Sub(s.base), rtt)
		e, ok := s.lookup(highestPN)
		s.pipe.onRTT(rtt, ok && e.over, s.MinRTT(), s.Jitter())
	}
	if s.hasAcked && highestPN <= s.acked {
		return
	}
	newlyResolved := highestPN + 1
	if s.hasAcked {
		newlyResolved = highestPN - s.acked
	}
	s.ackUpTo(highestPN)
	s.updateLoss(highestPN, packets, newlyResolved)
	s.updateRate(now.Sub(s.base)-max(delay, 0), highestPN, bytes)
}

// ackUpTo marks every packet up to highest as no longer in flight.
func (s *Stats) ackUpTo(highest uint64) {
	first := uint64(0)
	if s.hasAcked {
		first = s.acked + 1
	}
	// Entries older than the ring were already subtracted when overwritten.
	if highest-first > s.mask {
		first = highest - s.mask
	}
	for pn := first; ; pn++ {
		if e, ok := s.lookup(pn); ok {
			s.inflight -= int64(e.size)
		}
		if pn == highest {
			break
		}
	}
	s.acked, s.hasAcked = highest, true
}

// updateLoss derives the cumulative loss from the receiver's packet count:
// packets 0..highest were either received or lost, so
// lost = highest+1 − received. Only the low 32 bits of received are on the
// wire; computing the difference mod 2^32 recovers it as long as fewer than
// 2^32 packets were lost.
func (s *Stats) updateLoss(highest uint64, packets uint32, newlyResolved uint64) {
	lost := uint64(uint32(highest+1) - packets)
	if lost > highest+1 { // bogus count from the peer
		lost = highest + 1
	}
	newLost := uint64(0)
	if lost > s.lost {
		newLost = min(lost-s.lost, newlyResolved)
	}
	s.lost = lost
	s.ceiling.onResolved(newLost, newlyResolved)
	sample := float64(newLost) / float64(newlyResolved)
	s.lossRate += lossGain * (sample - s.lossRate)
}

// updateRate takes a delivery-rate sample once at least max(SRTT, 10 ms) has
// passed since the reference feedback. Like BBR, the interval is the longer of
// the ACK interval and the send interval of the packets it covers, so ACK
// compression cannot inflate the sample. The ACK interval runs between the
// arrivals of the two reports' highest packets (at is the feedback's arrival
// less the time the receiver held it): the receiver reports on a 5 ms grid,
// and counted from the reports' own arrivals a quiet path's interval came out
// up to 5 ms long, which read as a path falling behind.
func (s *Stats) updateRate(at time.Duration, highest, bytes uint64) {
	if highest >= s.roundEndPN { // a packet-timed round trip has passed
		s.round++
		s.roundEndPN = s.nextPN
		s.ceiling.endRound(s.inflight)
		s.pipe.endRound(s.DeliveryRate(), s.ceiling.bytes > 0, s.MinRTT(), s.Jitter())
	}
	e, known := s.lookup(highest)
	if !s.haveRef || bytes < s.refBytes || highest <= s.refPN {
		s.setRef(at, highest, e, known, bytes)
		return
	}
	ackDt := at - s.refAt
	if ackDt < max(s.SRTT(), minRateInterval) {
		return
	}
	dt, sendRate := ackDt, math.Inf(1)
	if known && s.refKnown {
		sendDt := e.sentAt - s.refSentAt
		dt = max(dt, sendDt)
		if sendDt > 0 {
			sendRate = float64(e.cumSent-s.refCumSent) / sendDt.Seconds()
		}
	}
	sample := float64(bytes-s.refBytes) / dt.Seconds()
	// App-limited: the sender offered well below the estimate and the path
	// kept up with it. If the path fell behind (sample well below the send
	// rate, over enough datagrams to tell), the sample measured the path,
	// however little was offered.
	// The sender pushed the path if it kept sending through at least half the interval:
	// packets sent in one burst (two control datagrams in the same instant, a flow's first
	// flight) give an "infinite" send rate that proves nothing about the path; taken as
	// pushing, such a sample set a fresh path's estimate to a few kB/s (a 60 ms path then
	// needed seconds to climb back, issue 12).
	pushed := known && s.refKnown && 2*(e.sentAt-s.refSentAt) >= ackDt
	behind := pushed && sample < behindFraction*sendRate && highest-s.refPN >= behindMinPackets
	appLimited := (!pushed || sendRate < appLimitedFraction*s.DeliveryRate()) && !behind
	if !appLimited || sample > s.DeliveryRate() {
		s.rate.update(rateRounds, s.round, sample)
	}
	if !appLimited {
		s.pipe.sampled = true
	}
	s.setRef(at, highest, e, known, bytes)
}

// setRef makes this feedback the start of the next rate sample; e is the
// ring entry of its highest packet, if known.
func (s *Stats) setRef(at time.Duration, highest uint64, e *sentPacket, known bool, bytes uint64) {
	s.haveRef, s.refAt, s.refPN, s.refBytes, s.refKnown = true, at, highest, bytes, known
	if known {
		s.refSentAt, s.refCumSent = e.sentAt, e.cumSent
	}
}

// OnRTTSample records an RTT measured at now from a PROBE_ACK.
func (s *Stats) OnRTTSample(now time.Time, rtt time.Duration) {
	s.lastHeard = now
	if rtt >= 0 {
		s.rtt.add(now.Sub(s.base), rtt)
	}
}

// SRTT returns the smoothed RTT (RFC 6298), or the initial RTT before any
// sample.
func (s *Stats) SRTT() time.Duration {
	if !s.rtt.sampled {
		return s.cfg.InitialRTT
	}
	return s.rtt.srtt
}

// RTTVar returns the RTT variation (RFC 6298), or half the initial RTT
// before any sample.
func (s *Stats) RTTVar() time.Duration {
	if !s.rtt.sampled {
		return s.cfg.InitialRTT / 2
	}
	return s.rtt.rttvar
}

// Jitter returns the path's packet-to-packet delay variation: the mean absolute
// difference between consecutive RTT samples, smoothed with gain 1/16 as RFC 3550's
// interarrival jitter, or 0 before two samples. Unlike RTTVar it hardly moves when a
// queue builds or drains slowly; it measures a link whose delay varies from one packet to
// the next (radio links, busy shared media).
func (s *Stats) Jitter() time.Duration { return s.rtt.jitter }

// ResetMinRTT forgets the minimum RTT, so the next sample starts it anew. The sender calls
// it when the path that carries this path's FEEDBACK changes for good and the samples
// with it: their return half is another path's now (the fastest path died), and a window
// sized from the old minimum would be too small for the path, round after round.
func (s *Stats) ResetMinRTT() { s.rtt.min = maxFilter{} }

// MinRTT returns the smallest RTT seen over about the last 10 s, or the
// initial RTT before any sample.
func (s *Stats) MinRTT() time.Duration {
	v, ok := s.rtt.min.get()
	if !ok {
		return s.cfg.InitialRTT
	}
	return time.Duration(-v)
}

// DeliveryRate returns the path's delivery rate in bytes/s: the maximum of
// the samples of the last 10 round trips, or the initial rate before any
// sample. Samples taken while the sender offered the path less than 80 % of
// this estimate and the path delivered at least 90 % of that offer
// (app-limited, e.g. an idle path carrying only probes) can raise the
// estimate but never lower it, so an idle path keeps its last measured rate.
func (s *Stats) DeliveryRate() float64 {
	if v, ok := s.rate.get(); ok {
		return v
	}
	return s.cfg.InitialRate
}

// Inflight returns the bytes sent with a packet number above the highest one
// acknowledged (packets older than the ring, 8192 by default, are no longer
// counted).
func (s *Stats) Inflight() int { return int(s.inflight) }

// Lost returns the number of packets known lost: numbered at or below the
// highest acknowledged one, yet not received.
func (s *Stats) Lost() uint64 { return s.lost }

// Sent returns the number of datagrams recorded by OnSent.
func (s *Stats) Sent() uint64 { return s.sent }

// SentBytes returns the number of bytes recorded by OnSent.
func (s *Stats) SentBytes() uint64 { return s.sentBytes }

// LossRate returns the recent loss fraction in [0, 1]: an EWMA (gain 1/8)
// over feedback frames of the fraction of newly resolved packets that were
// lost.
func (s *Stats) LossRate() float64 { return s.lossRate }

// LastHeard returns when the last FEEDBACK or PROBE_ACK arrived (the
// creation time before any).
func (s *Stats) LastHeard() time.Time { return s.lastHeard }
