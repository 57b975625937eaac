package session

import (
	"io"
	"time"

	"github.com/bondtun/bondtun/flightrec"
	"github.com/bondtun/bondtun/liveness"
	"github.com/bondtun/bondtun/sched"
)

const (
	// recordInterval is how often the flight recorder samples every path of a session.
	recordInterval = 10 * time.Millisecond
	// recordSamples is how many path samples a session keeps: 40 s of two paths, 27 s of
	// three. The ring is allocated when the session first carries data (≈ 1.3 MB), and
	// idle intervals are not recorded.
	recordSamples = 8192
)

// recorder is a session's flight recorder (package flightrec): the state that decides the
// split, sampled every recordInterval while the session carries traffic. Only the timer
// goroutine adds to it; Trace reads it under mu.
type recorder struct {
	ring   *flightrec.Ring
	lastTx uint64 // session datagrams sent and received at the last sample
	lastRx uint64
}

// recordLocked samples every path into the flight recorder unless the session has been
// idle since the last sample. s.recMu must be held; it takes rxMu and each Path.mu in turn.
func (s *Session) recordLocked(now time.Time) {
	tx, rx := s.counters.TxPackets.Load(), s.counters.RxPackets.Load()
	busy := tx != s.rec.lastTx || rx != s.rec.lastRx
	s.rec.lastTx, s.rec.lastRx = tx, rx
	if !busy {
		return
	}
	if s.rec.ring == nil {
		s.rec.ring = flightrec.New(recordSamples)
	}
	s.rxMu.Lock()
	st := s.reorder.Stats()
	sess := flightrec.Sample{
		At:          now.Sub(s.epoch),
		Hold:        s.reorder.Hold(),
		ReorderHeld: s.reorder.Len(),
		ReorderLate: st.Late,
		InnerRetx:   s.counters.TxInnerRetx.Load(),
	}
	paths := s.pathList()
	var rxs [maxPaths]uint64
	for i, p := range paths {
		if i < len(rxs) {
			rxs[i] = p.rxDatagram
		}
	}
	s.rxMu.Unlock()
	for i, p := range paths {
		smp := sess
		p.mu.Lock()
		rate := p.stats.DeliveryRate()
		minRTT := p.stats.MinRTT()
		smp.Path = p.id
		smp.State = uint8(p.live.State())
		smp.RateBps = rate * 8
		smp.PacingBps = sched.PacingRate(rate, p.stats.Startup()) * 8
		smp.SRTT = p.stats.SRTT()
		smp.MinRTT = minRTT
		smp.Jitter = p.stats.Jitter()
		smp.Window = p.windowLocked()
		smp.Inflight = p.stats.Inflight()
		smp.Queue = p.queuedLocked()
		smp.QueueDelay = p.headWaitLocked(now)
		smp.CodelDrops = p.codelDrops
		smp.Repairs = p.repairs
		smp.Lost = p.stats.Lost()
		smp.TxPackets = p.stats.Sent()
		p.mu.Unlock()
		if i < len(rxs) {
			smp.RxPackets = rxs[i]
		}
		s.rec.ring.Add(smp)
	}
}

// headWaitLocked is how long the oldest packet in p's local queues has waited. p.mu must be
// held.
func (p *Path) headWaitLocked(now time.Time) time.Duration {
	var w time.Duration
	for _, q := range []*txQueue{&p.prio, &p.bulk} {
		if q.n > 0 {
			w = max(w, now.Sub(q.peek().enq))
		}
	}
	return w
}

// Trace returns the session's flight-recorder samples, oldest first.
func (s *Session) Trace() []flightrec.Sample {
	s.recMu.Lock()
	defer s.recMu.Unlock()
	if s.rec.ring == nil {
		return nil
	}
	return s.rec.ring.Samples(nil)
}

// traceNames names a session's paths (prefixed with the peer's name when prefix is set)
// and liveness states for flightrec.WriteCSV.
func (s *Session) traceNames(prefix bool) flightrec.Names {
	return flightrec.Names{
		Path: func(id uint8) string {
			name := "?"
			if p := s.pathByID(id); p != nil {
				name = p.name
			}
			if prefix {
				return s.peerName + "/" + name
			}
			return name
		},
		State: func(st uint8) string { return liveness.State(st).String() },
	}
}

// WriteTrace writes the client's flight recorder as CSV (docs/TRACE.md).
func (c *Client) WriteTrace(w io.Writer) error {
	s := c.Session()
	if s == nil {
		return flightrec.WriteCSV(w, []string{"bondtun client: no session"}, nil, flightrec.Names{})
	}
	comments := []string{"bondtun client, peer " + s.peerName + ", every " + recordInterval.String() + " while traffic flows"}
	return flightrec.WriteCSV(w, comments, s.Trace(), s.traceNames(false))
}

// WriteTrace writes every session's flight recorder as one CSV, the sessions' samples one
// after the other, the path names prefixed with the peer's name (docs/TRACE.md).
func (sv *Server) WriteTrace(w io.Writer) error {
	comments := []string{"bondtun server, every " + recordInterval.String() + " while traffic flows"}
	sessions := sv.Sessions()
	for _, s := range sessions {
		comments = append(comments, "peer "+s.peerName)
	}
	if err := flightrec.WriteCSV(w, comments, nil, flightrec.Names{}); err != nil {
		return err
	}
	for _, s := range sessions {
		if err := flightrec.WriteRows(w, s.Trace(), s.traceNames(true)); err != nil {
			return err
		}
	}
	return nil
}
