package reorder

import (
	"math"
	"math/rand/v2"
	"slices"
	"testing"
	"time"
)

// model is a slow, obviously correct reorder buffer with a fixed hold: held
// packets are sorted slices, and every rule is a scan over all lanes.
type model struct {
	max     int
	hold    int64
	lanes   [256]modelLane
	state   [256]pathState
	maxSent [256]int64
	hasSent [256]bool
	ready   []pkt
	stats   Stats
}

type modelLane struct {
	started    bool
	next       uint64
	held       []modelPkt // sorted by seq
	gapArrival int64
}

type modelPkt struct {
	seq           uint64
	arrival, sent int64
}

func newModel(maxPackets int, hold time.Duration) *model {
	return &model{max: maxPackets, hold: int64(hold)}
}

func (m *model) heldTotal() int {
	n := 0
	for i := range m.lanes {
		n += len(m.lanes[i].held)
	}
	return n
}

func (m *model) push(t int64, lane uint8, seq uint64, path uint8, sent int64) bool {
	ok := m.insert(t, lane, seq, sent)
	if m.heldTotal() > m.max {
		m.release(t, lane, &m.stats.Overflow)
	}
	m.seen(t, path, sent)
	return ok
}

func (m *model) seen(t int64, path uint8, sent int64) {
	if m.state[path] == pathUnknown {
		m.state[path] = pathLive
	}
	if !m.hasSent[path] || sent > m.maxSent[path] {
		m.maxSent[path], m.hasSent[path] = sent, true
	}
	m.releasePast(t)
}

func (m *model) setLive(t int64, path uint8, live bool) {
	m.state[path] = pathDead
	if live {
		m.state[path] = pathLive
	}
	m.releasePast(t)
}

func (m *model) insert(t int64, lane uint8, seq uint64, sent int64) bool {
	ln := &m.lanes[lane]
	if !ln.started {
		ln.started, ln.next = true, seq
	}
	if seq < ln.next {
		m.stats.Late++
		return false
	}
	if seq == ln.next {
		if len(ln.held) == 0 {
			m.stats.InOrder++
		}
		m.deliver(lane, seq)
		ln.next++
		if len(ln.held) > 0 && ln.held[0].seq == ln.next {
			m.release(t, lane, &m.stats.Filled)
		}
		return true
	}
	if seq-ln.next > uint64(m.max) {
		m.stats.Jumps++
		if len(ln.held) > 0 {
			m.stats.addHold(time.Duration(t - ln.gapArrival))
			for _, p := range ln.held {
				m.deliver(lane, p.seq)
			}
			ln.held = nil
		}
		ln.next = seq + 1
		m.deliver(lane, seq)
		return true
	}
	i, found := slices.BinarySearchFunc(ln.held, seq, func(p modelPkt, s uint64) int {
		switch {
		case p.seq < s:
			return -1
		case p.seq > s:
			return 1
		}
		return 0
	})
	if found {
		m.stats.Duplicates++
		return false
	}
	if len(ln.held) == 0 {
		ln.gapArrival = t
	}
	ln.held = slices.Insert(ln.held, i, modelPkt{seq, t, sent})
	return true
}

func (m *model) release(t int64, lane uint8, counter *uint64) {
	ln := &m.lanes[lane]
	*counter++
	m.stats.addHold(time.Duration(t - ln.gapArrival))
	ln.next = ln.held[0].seq
	for len(ln.held) > 0 && ln.held[0].seq == ln.next {
		m.deliver(lane, ln.next)
		ln.held = ln.held[1:]
		ln.next++
	}
	if len(ln.held) > 0 {
		ln.gapArrival = ln.held[0].arrival
	}
}

func (m *model) horizon() int64 {
	h, any := int64(math.MaxInt64), false
	for p := range m.state {
		if m.state[p] != pathLive {
			continue
		}
		any = true
		if !m.hasSent[p] {
			return math.MinInt64
		}
		h = min(h, m.maxSent[p])
	}
	if !any {
		return math.MaxInt64
	}
	return h
}

func (m *model) releasePast(t int64) {
	for again := true; again; {
		again = false
		h := m.horizon()
		for i := range m.lanes {
			if ln := &m.lanes[i]; len(ln.held) > 0 && ln.held[0].sent < h {
				m.release(t, uint8(i), &m.stats.PathsPast)
				again = true
			}
		}
	}
}

// oldest returns the lane whose gap deadline comes first.
func (m *model) oldest() (uint8, int64, bool) {
	best, at, ok := uint8(0), int64(0), false
	for i := range m.lanes {
		if ln := &m.lanes[i]; len(ln.held) > 0 && (!ok || ln.gapArrival < at) {
			best, at, ok = uint8(i), ln.gapArrival, true
		}
	}
	return best, at, ok
}

func (m *model) drain(t int64) []pkt {
	for {
		m.releasePast(t)
		lane, at, ok := m.oldest()
		if !ok || at+m.hold > t {
			break
		}
		m.release(t, lane, &m.stats.Deadline)
	}
	out := m.ready
	m.ready = nil
	return out
}

func (m *model) deliver(lane uint8, seq uint64) {
	m.ready = append(m.ready, pkt{lane, seq})
	m.stats.Delivered++
}

// TestRandomAgainstModel feeds random operation streams to a Buffer and to
// the model and compares every result.
func TestRandomAgainstModel(t *testing.T) {
	r := rand.New(rand.NewPCG(1, 2))
	data := make([]byte, 4000)
	var total Stats
	for i := range 200 {
		for j := range data {
			data[j] = byte(r.Uint32())
		}
		data[0] = 0 // fixed hold: compare with the model
		if t.Failed() {
			t.Fatalf("stopped after run %d", i-1)
		}
		s := runOps(t, data)
		total.InOrder += s.InOrder
		total.Filled += s.Filled
		total.PathsPast += s.PathsPast
		total.Deadline += s.Deadline
		total.Overflow += s.Overflow
		total.Jumps += s.Jumps
		total.Duplicates += s.Duplicates
		total.Late += s.Late
	}
	// The streams must exercise every rule, or the comparison proves little.
	for name, n := range map[string]uint64{
		"InOrder": total.InOrder, "Filled": total.Filled, "PathsPast": total.PathsPast,
		"Deadline": total.Deadline, "Overflow": total.Overflow, "Jumps": total.Jumps,
		"Duplicates": total.Duplicates, "Late": total.Late,
	} {
		if n == 0 {
			t.Errorf("no %s in %d random runs", name, 200)
		}
	}
	t.Logf("totals: %+v", total)
}
