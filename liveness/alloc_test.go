package liveness

import (
	"testing"
	"time"
)

// busyPath returns an Up path with data in flight and the time.
func busyPath() (*Path, time.Time) {
	now := t0
	p := New(Config{}, now)
	p.MarkProbed(now)
	now = now.Add(20 * time.Millisecond)
	p.OnHeard(now, 20*time.Millisecond)
	return p, now
}

// TestZeroAllocs: the per-datagram and per-feedback calls do not allocate.
func TestZeroAllocs(t *testing.T) {
	if raceEnabled {
		t.Skip("the race detector allocates")
	}
	p, now := busyPath()
	allocs := testing.AllocsPerRun(1000, func() {
		now = now.Add(time.Millisecond)
		p.OnSent(now)
		p.OnHeard(now, 20*time.Millisecond)
		p.Tick(now, true, 20*time.Millisecond, 2*time.Millisecond)
		_ = p.ProbeDue(now)
		_ = p.NextEvent()
		_ = p.Usable()
	})
	if allocs != 0 {
		t.Errorf("%v allocs per OnSent+OnHeard+Tick+ProbeDue+NextEvent, want 0", allocs)
	}
	// A whole failure and rejoin cycle, including Reset.
	allocs = testing.AllocsPerRun(100, func() {
		p.Reset(Config{}, now)
		for i := range 3000 {
			now = now.Add(time.Millisecond)
			if p.ProbeDue(now) {
				p.MarkProbed(now)
			}
			if i < 500 || i > 2500 {
				p.OnHeard(now, 20*time.Millisecond)
			}
			p.Tick(now, true, 20*time.Millisecond, 2*time.Millisecond)
		}
		p.OnLocalDown(now, "ENETUNREACH")
		p.OnLocalUp(now)
	})
	if allocs != 0 {
		t.Errorf("%v allocs per failure cycle, want 0", allocs)
	}
}

// BenchmarkSendHearTick is one datagram sent, one feedback heard and one
// Tick on a busy path.
func BenchmarkSendHearTick(b *testing.B) {
	p, now := busyPath()
	b.ReportAllocs()
	for b.Loop() {
		now = now.Add(time.Millisecond)
		p.OnSent(now)
		p.OnHeard(now, 20*time.Millisecond)
		p.Tick(now, true, 20*time.Millisecond, 2*time.Millisecond)
	}
}

// BenchmarkTickSilent is a Tick on a path that is silent (Suspect, then
// Dead), with the timer computation.
func BenchmarkTickSilent(b *testing.B) {
	p, now := busyPath()
	p.OnSent(now)
	b.ReportAllocs()
	for b.Loop() {
		now = now.Add(time.Microsecond)
		p.Tick(now, true, 20*time.Millisecond, 2*time.Millisecond)
		_ = p.NextEvent()
	}
}
