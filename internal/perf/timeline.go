package perf

import (
	"sort"
	"time"
)

// MaxSamples bounds the samples a Timeline keeps, and so the size of a
// Report on the wire.
const MaxSamples = 4096

// minTick is the finest sampling step: finer would only add syscall-level
// noise to interval rates.
const minTick = 10 * time.Millisecond

// Sample is the cumulative byte count received by time At.
type Sample struct {
	At    time.Duration // offset from the start of the flow
	Bytes uint64        // bytes received up to At
}

// Timeline records when a receiver got its bytes, at a step of at least
// Tick, so goodput after an omit period and per-interval rates can be
// computed afterwards by whoever holds it (the server ships its timelines to
// the client in a Report). Record does not allocate. Not safe for concurrent
// use.
type Timeline struct {
	Tick    time.Duration // sampling step
	Samples []Sample      // increasing At; capacity MaxSamples
	Total   uint64        // bytes received
	Elapsed time.Duration // offset of the end of the flow, set by Finish
	next    time.Duration
}

// NewTimeline returns a timeline for a flow expected to last about d. The
// step is chosen so that d uses at most half of MaxSamples, leaving room for
// a flow that overruns.
func NewTimeline(d time.Duration) *Timeline {
	tick := max(minTick, d/(MaxSamples/2))
	return &Timeline{Tick: tick, Samples: make([]Sample, 0, MaxSamples)}
}

// Record notes n bytes received at offset at from the flow start.
func (t *Timeline) Record(at time.Duration, n int) {
	t.Total += uint64(n)
	if at >= t.next && len(t.Samples) < cap(t.Samples)-1 {
		t.Samples = append(t.Samples, Sample{At: at, Bytes: t.Total})
		t.next = at + t.Tick
	}
}

// Finish marks the end of the flow at offset at and records a final sample.
// One slot is always kept free for it.
func (t *Timeline) Finish(at time.Duration) {
	t.Elapsed = at
	if n := len(t.Samples); n > 0 && t.Samples[n-1].At >= at {
		t.Samples[n-1].Bytes = t.Total
		return
	}
	t.Samples = append(t.Samples, Sample{At: at, Bytes: t.Total})
}

// BytesAt estimates the bytes received by offset at, interpolating linearly
// between samples, so it is accurate to about one Tick of traffic.
func (t *Timeline) BytesAt(at time.Duration) float64 {
	if at <= 0 {
		return 0
	}
	i := sort.Search(len(t.Samples), func(i int) bool { return t.Samples[i].At >= at })
	if i == len(t.Samples) {
		return float64(t.Total)
	}
	var prev Sample
	if i > 0 {
		prev = t.Samples[i-1]
	}
	next := t.Samples[i]
	span := next.At - prev.At
	if span <= 0 {
		return float64(next.Bytes)
	}
	frac := float64(at-prev.At) / float64(span)
	return float64(prev.Bytes) + frac*float64(next.Bytes-prev.Bytes)
}

// Interval is the receive rate over the interval ending at End.
type Interval struct {
	End  time.Duration
	Mbps float64
}

// Summary is the aggregate of a test's flows.
type Summary struct {
	Bytes uint64        // bytes received, all flows, omit period included
	Secs  float64       // longest flow, in seconds
	Mbps  float64       // goodput after the omit period
	Omit  time.Duration // omit period actually applied
}

// Summarize aggregates flows: goodput = bytes received after omit divided by
// (elapsed - omit), with elapsed the longest flow. If the test is not longer
// than omit, nothing is omitted rather than reporting nothing.
func Summarize(flows []*Timeline, omit time.Duration) Summary {
	var s Summary
	var elapsed time.Duration
	for _, t := range flows {
		s.Bytes += t.Total
		elapsed = max(elapsed, t.Elapsed)
	}
	if omit < 0 || omit >= elapsed {
		omit = 0
	}
	var after float64
	for _, t := range flows {
		after += float64(t.Total) - t.BytesAt(omit)
	}
	s.Secs = elapsed.Seconds()
	s.Omit = omit
	if d := (elapsed - omit).Seconds(); d > 0 {
		s.Mbps = after * 8 / 1e6 / d
	}
	return s
}

// Intervals returns the aggregate receive rate of flows over consecutive
// intervals of length every; the last one ends at the longest flow's end and
// absorbs a tail shorter than half an interval.
func Intervals(flows []*Timeline, every time.Duration) []Interval {
	if every <= 0 {
		return nil
	}
	var elapsed time.Duration
	for _, t := range flows {
		elapsed = max(elapsed, t.Elapsed)
	}
	var out []Interval
	for start := time.Duration(0); start < elapsed; start += every {
		end := min(start+every, elapsed)
		if elapsed-end < every/2 {
			// Fold a short tail into the last interval rather than
			// print a noisy sliver of an interval.
			end = elapsed
		}
		var b float64
		for _, t := range flows {
			b += t.BytesAt(end) - t.BytesAt(start)
		}
		out = append(out, Interval{End: end, Mbps: b * 8 / 1e6 / (end - start).Seconds()})
		if end == elapsed {
			break
		}
	}
	return out
}
