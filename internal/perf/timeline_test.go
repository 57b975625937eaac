package perf

import (
	"math"
	"testing"
	"time"
)

const ms = time.Millisecond

// steadyFlow records rateBytes per 10 ms from 0 to d, like a receiver at a
// constant rate, and finishes at d.
func steadyFlow(d time.Duration, per10ms int) *Timeline {
	t := NewTimeline(d)
	for at := 10 * ms; at <= d; at += 10 * ms {
		t.Record(at, per10ms)
	}
	t.Finish(d)
	return t
}

func near(a, b float64) bool { return math.Abs(a-b) <= 1e-6*math.Max(1, math.Abs(b)) }

func TestSummarize(t *testing.T) {
	// 12500 bytes per 10 ms = 10 Mbit/s.
	tests := []struct {
		name      string
		flows     []*Timeline
		omit      time.Duration
		wantMbps  float64
		wantBytes uint64
		wantOmit  time.Duration
	}{
		{"one flow, no omit", []*Timeline{steadyFlow(time.Second, 12500)}, 0, 10, 1250000, 0},
		{"one flow, omit", []*Timeline{steadyFlow(time.Second, 12500)}, 500 * ms, 10, 1250000, 500 * ms},
		{"two flows add up", []*Timeline{steadyFlow(time.Second, 12500), steadyFlow(time.Second, 12500)}, 200 * ms, 20, 2500000, 200 * ms},
		{"omit longer than test is ignored", []*Timeline{steadyFlow(time.Second, 12500)}, 2 * time.Second, 10, 1250000, 0},
	}
	for _, tc := range tests {
		t.Run(tc.name, func(t *testing.T) {
			s := Summarize(tc.flows, tc.omit)
			if !near(s.Mbps, tc.wantMbps) || s.Bytes != tc.wantBytes || s.Omit != tc.wantOmit || s.Secs != 1 {
				t.Fatalf("Summarize = %+v, want mbps=%v bytes=%d omit=%v secs=1", s, tc.wantMbps, tc.wantBytes, tc.wantOmit)
			}
		})
	}
}

func TestSummarizeOmitsSlowStart(t *testing.T) {
	// 100 ms of nothing, then 10 Mbit/s: omitting the stall shows the rate.
	tl := NewTimeline(time.Second)
	for at := 110 * ms; at <= time.Second; at += 10 * ms {
		tl.Record(at, 12500)
	}
	tl.Finish(time.Second)
	// Within 2%: bytes are interpolated between samples a tick apart.
	if s := Summarize([]*Timeline{tl}, 100*ms); math.Abs(s.Mbps-10) > 0.2 {
		t.Fatalf("goodput after omit = %v, want 10", s.Mbps)
	}
	if s := Summarize([]*Timeline{tl}, 0); !near(s.Mbps, 9) {
		t.Fatalf("goodput without omit = %v, want 9", s.Mbps)
	}
}

func TestIntervals(t *testing.T) {
	tests := []struct {
		name  string
		d     time.Duration
		every time.Duration
		ends  []time.Duration
	}{
		{"exact", time.Second, 250 * ms, []time.Duration{250 * ms, 500 * ms, 750 * ms, time.Second}},
		{"long tail kept", 1300 * ms, 500 * ms, []time.Duration{500 * ms, time.Second, 1300 * ms}},
		{"short tail folded", 1010 * ms, 500 * ms, []time.Duration{500 * ms, 1010 * ms}},
		{"disabled", time.Second, 0, nil},
	}
	for _, tc := range tests {
		t.Run(tc.name, func(t *testing.T) {
			got := Intervals([]*Timeline{steadyFlow(tc.d, 12500)}, tc.every)
			if len(got) != len(tc.ends) {
				t.Fatalf("got %d intervals %+v, want ends %v", len(got), got, tc.ends)
			}
			for i, iv := range got {
				if iv.End != tc.ends[i] || !near(iv.Mbps, 10) {
					t.Fatalf("interval %d = %+v, want end %v at 10 Mbit/s", i, iv, tc.ends[i])
				}
			}
		})
	}
}

func TestTimelineBounded(t *testing.T) {
	// A flow that runs 10x longer than announced keeps a bounded timeline
	// whose totals stay exact.
	tl := NewTimeline(100 * ms)
	var want uint64
	for at := time.Duration(0); at < 10*time.Second; at += ms {
		tl.Record(at, 100)
		want += 100
	}
	tl.Finish(10 * time.Second)
	if len(tl.Samples) > MaxSamples || tl.Total != want || tl.BytesAt(20*time.Second) != float64(want) {
		t.Fatalf("samples=%d total=%d, want <= %d samples and %d bytes", len(tl.Samples), tl.Total, MaxSamples, want)
	}
	if last := tl.Samples[len(tl.Samples)-1]; last.At != 10*time.Second || last.Bytes != want {
		t.Fatalf("last sample %+v, want the finish", last)
	}
}

func TestTimelineRecordAllocs(t *testing.T) {
	if raceEnabled {
		t.Skip("allocation counts are unreliable under the race detector")
	}
	tl := NewTimeline(time.Second)
	at := time.Duration(0)
	if n := testing.AllocsPerRun(1000, func() {
		at += ms
		tl.Record(at, 1400)
	}); n != 0 {
		t.Fatalf("Record allocates %v times per call, want 0", n)
	}
}

func BenchmarkTimelineRecord(b *testing.B) {
	tl := NewTimeline(time.Hour)
	b.ReportAllocs()
	at := time.Duration(0)
	for b.Loop() {
		at += 100 * time.Microsecond
		tl.Record(at, 1400)
	}
}
