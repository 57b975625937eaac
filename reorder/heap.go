package reorder

// gapHeap is an indexed binary min-heap of lane ids, each with one int64 key.
// Ties are broken by lane id so that release order is deterministic. It holds
// at most 256 entries; its storage is allocated by the first set, and it never
// allocates after that. The zero gapHeap is empty.
type gapHeap struct {
	lanes []uint8
	*gapIndex
}

type gapIndex struct {
	pos [256]int32 // index in lanes plus one; 0 means absent
	key [256]int64
}

func (h *gapHeap) less(i, j int) bool {
	a, b := h.lanes[i], h.lanes[j]
	if h.key[a] != h.key[b] {
		return h.key[a] < h.key[b]
	}
	return a < b
}

func (h *gapHeap) swap(i, j int) {
	h.lanes[i], h.lanes[j] = h.lanes[j], h.lanes[i]
	h.pos[h.lanes[i]] = int32(i + 1)
	h.pos[h.lanes[j]] = int32(j + 1)
}

// set inserts lane with key k, or moves it if it is already present.
func (h *gapHeap) set(lane uint8, k int64) {
	if h.gapIndex == nil {
		h.gapIndex = new(gapIndex)
		h.lanes = make([]uint8, 0, 256)
	}
	h.key[lane] = k
	if h.pos[lane] == 0 {
		h.lanes = append(h.lanes, lane)
		i := len(h.lanes) - 1
		h.pos[lane] = int32(i + 1)
		h.up(i)
		return
	}
	i := int(h.pos[lane] - 1)
	if !h.down(i) {
		h.up(i)
	}
}

// remove deletes lane if it is present.
func (h *gapHeap) remove(lane uint8) {
	if h.gapIndex == nil || h.pos[lane] == 0 {
		return
	}
	i := int(h.pos[lane] - 1)
	n := len(h.lanes) - 1
	if i != n {
		h.swap(i, n)
	}
	h.lanes = h.lanes[:n]
	h.pos[lane] = 0
	if i != n && !h.down(i) {
		h.up(i)
	}
}

// top returns the lane with the smallest key.
func (h *gapHeap) top() (lane uint8, k int64, ok bool) {
	if len(h.lanes) == 0 {
		return 0, 0, false
	}
	lane = h.lanes[0]
	return lane, h.key[lane], true
}

func (h *gapHeap) up(i int) {
	for i > 0 {
		p := (i - 1) / 2
		if !h.less(i, p) {
			return
		}
		h.swap(i, p)
		i = p
	}
}

// down sifts element i down and reports whether it moved.
func (h *gapHeap) down(i int) bool {
	start := i
	n := len(h.lanes)
	for {
		l := 2*i + 1
		if l >= n {
			break
		}
		m := l
		if r := l + 1; r < n && h.less(r, l) {
			m = r
		}
		if !h.less(m, i) {
			break
		}
		h.swap(i, m)
		i = m
	}
	return i > start
}
