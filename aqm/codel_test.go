package aqm

import (
	"testing"
	"time"
)

var t0 = time.Date(2026, 1, 1, 0, 0, 0, 0, time.UTC)

// run feeds one dequeue per step with the given sojourn and returns the drop times.
func run(c *CoDel, steps int, step time.Duration, sojourn func(i int) time.Duration, extra time.Duration) []time.Duration {
	var drops []time.Duration
	for i := range steps {
		now := t0.Add(time.Duration(i) * step)
		if c.OnDequeue(now, sojourn(i), extra, false) {
			drops = append(drops, time.Duration(i)*step)
		}
	}
	return drops
}

func TestCoDelScenarios(t *testing.T) {
	tests := []struct {
		name      string
		sojourn   func(i int) time.Duration
		extra     time.Duration
		steps     int
		wantDrops func(d []time.Duration) bool
		want      string
	}{
		{"below target never drops", func(int) time.Duration { return 4 * time.Millisecond }, 0, 5000,
			func(d []time.Duration) bool { return len(d) == 0 }, "no drops"},
		{"a burst shorter than the interval never drops", func(i int) time.Duration {
			if i < 80 {
				return 50 * time.Millisecond
			}
			return time.Millisecond
		}, 0, 5000, func(d []time.Duration) bool { return len(d) == 0 }, "no drops"},
		{"a standing queue drops after one interval", func(int) time.Duration { return 20 * time.Millisecond }, 0, 1000,
			func(d []time.Duration) bool {
				return len(d) > 0 && d[0] >= 100*time.Millisecond && d[0] <= 102*time.Millisecond
			},
			"first drop at 100 ms"},
		{"drops speed up with the square root of the count", func(int) time.Duration { return 20 * time.Millisecond }, 0, 2000,
			func(d []time.Duration) bool {
				return len(d) >= 5 && d[2]-d[1] > d[4]-d[3]
			}, "shrinking gaps"},
		{"equalization allowance is not a standing queue", func(int) time.Duration { return 20 * time.Millisecond }, 20 * time.Millisecond, 2000,
			func(d []time.Duration) bool { return len(d) == 0 }, "no drops"},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			d := run(New(0, 0), tt.steps, time.Millisecond, tt.sojourn, tt.extra)
			if !tt.wantDrops(d) {
				t.Fatalf("drops at %v, want %s", d, tt.want)
			}
		})
	}
}

func TestCoDelLeavesDroppingWhenQueueDrains(t *testing.T) {
	c := New(0, 0)
	for i := range 300 {
		c.OnDequeue(t0.Add(time.Duration(i)*time.Millisecond), 30*time.Millisecond, 0, false)
	}
	if !c.Dropping() {
		t.Fatal("not dropping after 300 ms of standing queue")
	}
	if c.OnDequeue(t0.Add(301*time.Millisecond), time.Millisecond, 0, false) || c.Dropping() {
		t.Fatal("still dropping after the sojourn fell below target")
	}
}

func TestCoDelAllocatesNothing(t *testing.T) {
	c := New(0, 0)
	i := 0
	if n := testing.AllocsPerRun(1000, func() {
		c.OnDequeue(t0.Add(time.Duration(i)*time.Millisecond), 20*time.Millisecond, 0, false)
		i++
	}); n != 0 {
		t.Fatalf("%v allocs", n)
	}
}

// TestSetInterval: a longer interval waits longer before the first drop and spaces the
// next ones further apart; the onset and the interval can be set apart.
func TestSetInterval(t *testing.T) {
	t0 := time.Unix(1000, 0)
	firstDrop := func(c *CoDel) (time.Duration, time.Duration) {
		var drops []time.Duration
		for d := time.Duration(0); d < 2*time.Second && len(drops) < 2; d += time.Millisecond {
			if c.OnDequeue(t0.Add(d), 50*time.Millisecond, 0, false) {
				drops = append(drops, d)
			}
		}
		if len(drops) < 2 {
			t.Fatalf("fewer than two drops in 2 s")
		}
		return drops[0], drops[1] - drops[0]
	}
	c := New(5*time.Millisecond, 0)
	first, gap := firstDrop(c)
	if first != DefaultInterval {
		t.Errorf("default: first drop at %v, want %v", first, DefaultInterval)
	}
	c = New(5*time.Millisecond, 0)
	c.SetIntervals(200*time.Millisecond, 200*time.Millisecond)
	first2, gap2 := firstDrop(c)
	if first2 != 200*time.Millisecond || gap2 < 2*gap-time.Millisecond {
		t.Errorf("200 ms: first drop at %v, next %v later; want 200ms and ≥ twice the default's %v", first2, gap2, gap)
	}
	c.SetIntervals(0, 0)
	if c.interval != DefaultInterval || c.onset != DefaultInterval {
		t.Errorf("SetIntervals(0, 0) left %v and onset %v, want the default", c.interval, c.onset)
	}
	// Apart: the onset alone decides the first drop, the interval alone the spacing.
	c = New(5*time.Millisecond, 0)
	c.SetIntervals(100*time.Millisecond, 200*time.Millisecond)
	first3, gap3 := firstDrop(c)
	if first3 != 100*time.Millisecond || gap3 != gap2 {
		t.Errorf("onset 100 ms, interval 200 ms: first drop at %v, next %v later; want 100ms and %v", first3, gap3, gap2)
	}
	c.SetIntervals(0, -1)
	if c.interval != DefaultInterval || c.onset != DefaultInterval {
		t.Errorf("SetIntervals(0, -1) left %v and onset %v, want the default", c.interval, c.onset)
	}
}
