package linkemu

// The held packets form a binary min-heap of slot indices ordered by (due,
// seq). It is written out by hand rather than with container/heap, whose
// interface{} Push and Pop would allocate per packet. Without Reorder due
// times are non-decreasing in seq, so the heap degenerates to a FIFO.

func (l *Link) less(a, b int32) bool {
	sa, sb := &l.slots[a], &l.slots[b]
	if !sa.due.Equal(sb.due) {
		return sa.due.Before(sb.due)
	}
	return sa.seq < sb.seq
}

// push adds slot i to the heap; its capacity equals the slot count.
func (l *Link) push(i int32) {
	l.heap = append(l.heap, i)
	h := l.heap
	c := len(h) - 1
	for c > 0 {
		p := (c - 1) / 2
		if !l.less(h[c], h[p]) {
			break
		}
		h[c], h[p] = h[p], h[c]
		c = p
	}
}

// popHead removes the heap's minimum.
func (l *Link) popHead() {
	h := l.heap
	last := len(h) - 1
	h[0] = h[last]
	h = h[:last]
	l.heap = h
	p := 0
	for {
		c := 2*p + 1
		if c >= len(h) {
			return
		}
		if c+1 < len(h) && l.less(h[c+1], h[c]) {
			c++
		}
		if !l.less(h[c], h[p]) {
			return
		}
		h[c], h[p] = h[p], h[c]
		p = c
	}
}
