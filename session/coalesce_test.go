package session

import (
	"testing"
	"time"
)

// TestIdleCoalesceFallsInStep: in an idle session whose timer runs for a probe round
// every idleProbeInterval (a little more: each round is scheduled from the last one's
// run), a KEEPALIVE repeated through timerState.due, whatever its phase against the
// rounds, joins them after at most one dedicated run and never needs another; its gaps
// stay between idleCoalesceMin and idleCoalesceMax, well inside controlIdleTimeout.
// While the session carries data it repeats every keepaliveInterval, as before.
func TestIdleCoalesceFallsInStep(t *testing.T) {
	if idleCoalesceMax-idleCoalesceMin < idleProbeInterval {
		t.Fatalf("window %v shorter than the probe interval %v: they may never fall in step", idleCoalesceMax-idleCoalesceMin, idleProbeInterval)
	}
	if 3*idleCoalesceMax > 2*controlIdleTimeout {
		t.Fatalf("idleCoalesceMax %v: less than a third of controlIdleTimeout %v left for a late KEEPALIVE", idleCoalesceMax, controlIdleTimeout)
	}
	start := time.Date(2031, 1, 1, 0, 0, 0, 0, time.UTC)
	for phase := time.Duration(0); phase < idleProbeInterval+idleCoalesceMax; phase += 250 * time.Millisecond {
		ts := timerState{idle: true, lastKeepalive: start.Add(phase - idleCoalesceMax)}
		probe := start.Add(idleProbeInterval)
		dedicated, sent := 0, 0
		for now := start; now.Before(start.Add(10 * time.Minute)); {
			busy := !now.Before(probe)
			if busy {
				probe = now.Add(idleProbeInterval + time.Millisecond)
			}
			if ts.due(now, ts.lastKeepalive, keepaliveInterval, busy) {
				if gap := now.Sub(ts.lastKeepalive); sent > 0 && (gap < idleCoalesceMin || gap > idleCoalesceMax) {
					t.Fatalf("phase %v: KEEPALIVE %v after the last", phase, gap)
				}
				if !busy {
					dedicated++
				}
				ts.lastKeepalive = now
				sent++
			}
			now = ts.next(ts.lastKeepalive, keepaliveInterval) // the timer's next deadline
			if probe.Before(now) {
				now = probe
			}
		}
		if dedicated > 1 {
			t.Errorf("phase %v: %d KEEPALIVE runs of their own in 10 min, want at most 1", phase, dedicated)
		}
		if sent < 38 {
			t.Errorf("phase %v: %d KEEPALIVEs in 10 min, want one per probe round", phase, sent)
		}
	}
	busy := timerState{lastKeepalive: start}
	if busy.due(start.Add(keepaliveInterval-time.Millisecond), start, keepaliveInterval, true) ||
		!busy.due(start.Add(keepaliveInterval), start, keepaliveInterval, false) ||
		!busy.next(start, keepaliveInterval).Equal(start.Add(keepaliveInterval)) {
		t.Error("a session that carries data does not repeat its KEEPALIVE every keepaliveInterval")
	}
}
