package pathstat

// maxFilter is a windowed running maximum that keeps the best, second-best
// and third-best samples of the window (Kathleen Nichols' algorithm, as in
// Linux lib/win_minmax.c). It needs O(1) memory and time per sample, which a
// ring of all samples in the window would not. A running minimum is obtained by
// feeding negated values.
//
// The "time" of a sample is any monotonic int64: nanoseconds for the min-RTT
// filter, a round counter for the delivery-rate filter.
type maxFilter struct {
	s   [3]filterSample
	set bool
}

type filterSample struct {
	t int64
	v float64
}

// get returns the window's maximum and whether any sample was seen.
func (m *maxFilter) get() (float64, bool) { return m.s[0].v, m.set }

func (m *maxFilter) reset(t int64, v float64) float64 {
	m.s[0] = filterSample{t, v}
	m.s[1], m.s[2] = m.s[0], m.s[0]
	m.set = true
	return v
}

// update adds sample v at time t to a window of length win and returns the
// new maximum.
func (m *maxFilter) update(win, t int64, v float64) float64 {
	val := filterSample{t, v}
	if !m.set || v >= m.s[0].v || t-m.s[2].t > win {
		// New maximum, or every kept sample has left the window.
		return m.reset(t, v)
	}
	if v >= m.s[1].v {
		m.s[1], m.s[2] = val, val
	} else if v >= m.s[2].v {
		m.s[2] = val
	}
	return m.subwinUpdate(win, val)
}

// subwinUpdate ages the kept samples so that the best one is always within
// the window and the other two cover its later quarters and halves.
func (m *maxFilter) subwinUpdate(win int64, val filterSample) float64 {
	dt := val.t - m.s[0].t
	switch {
	case dt > win:
		m.s[0], m.s[1], m.s[2] = m.s[1], m.s[2], val
		if val.t-m.s[0].t > win {
			m.s[0], m.s[1], m.s[2] = m.s[1], m.s[2], val
		}
	case m.s[1].t == m.s[0].t && dt > win/4:
		m.s[1], m.s[2] = val, val
	case m.s[2].t == m.s[1].t && dt > win/2:
		m.s[2] = val
	}
	return m.s[0].v
}
