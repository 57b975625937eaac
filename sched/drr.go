package sched

import "time"

// MaxQuantum is the DRR quantum of the fastest eligible path; slower paths
// get a quantum proportional to their rate. 16 KiB is about a dozen
// full-size packets: large enough that each visit sends a burst (and a GSO
// train), small enough to interleave paths every few hundred microseconds at
// 100 Mbit/s.
const MaxQuantum = 16 << 10

// drr keeps a deficit per path id, so paths may come and go or change order
// in the slice between calls without losing their credit.
type drr struct {
	deficit [256]int
	cur     uint8 // id of the path being served
	started bool
}

// NewDRR returns the deficit round robin scheduler of Shreedhar and
// Varghese, used for striping as in the paper, with quanta proportional to
// each path's measured Rate (the fastest eligible path gets MaxQuantum).
// Its state is keyed by Path.ID, which must be unique within paths.
// A path keeps the credit it did not use when its turn ends (always less
// than one packet), which keeps the byte split proportional to the quanta.
// A path that is not eligible when its turn comes loses its deficit, as an
// empty queue does in DRR, so a path cannot save up credit while full.
func NewDRR() Scheduler { return &drr{} }

func (d *drr) Name() string { return "drr" }

func (d *drr) Pick(_ time.Time, size int, paths []Path) int {
	useBackup, allFull, ok := candidates(paths)
	if !ok {
		return -1
	}
	maxRate := 0.0
	for i := range paths {
		if p := &paths[i]; eligible(p, useBackup, allFull) && p.Rate > maxRate {
			maxRate = p.Rate
		}
	}
	idx := d.index(paths)
	if idx >= 0 {
		if !eligible(&paths[idx], useBackup, allFull) {
			d.deficit[d.cur] = 0
		} else if d.deficit[d.cur] >= size {
			d.deficit[d.cur] -= size
			return idx
		}
	}
	// Each full round adds MaxQuantum to the fastest path, so this ends
	// within size/MaxQuantum + 2 rounds; the bound only guards the loop.
	steps := (max(size, 0)/MaxQuantum + 2) * len(paths)
	firstEligible := -1
	for range steps {
		idx = (idx + 1) % len(paths)
		p := &paths[idx]
		if !eligible(p, useBackup, allFull) {
			d.deficit[p.ID] = 0
			continue
		}
		if firstEligible < 0 {
			firstEligible = idx
		}
		d.cur, d.started = p.ID, true
		d.deficit[p.ID] += quantum(p.Rate, maxRate)
		if d.deficit[p.ID] >= size {
			d.deficit[p.ID] -= size
			return idx
		}
	}
	return firstEligible
}

// index returns the slice index of the path being served, or -1.
func (d *drr) index(paths []Path) int {
	if !d.started {
		return -1
	}
	for i := range paths {
		if paths[i].ID == d.cur {
			return i
		}
	}
	return -1
}

// quantum scales MaxQuantum by rate/maxRate. With no rate information at
// all (maxRate 0) every path gets the full quantum: plain round robin.
func quantum(rate, maxRate float64) int {
	if !(maxRate > 0) {
		return MaxQuantum
	}
	q := MaxQuantum * rate / maxRate
	if !(q > 0) { // zero, negative or NaN (both rates infinite)
		return 0
	}
	return int(min(q, MaxQuantum))
}
