package session

import (
	"io"
	"log/slog"
	"net/netip"
	"testing"
	"time"

	"github.com/bondtun/bondtun/crypto"
	"github.com/bondtun/bondtun/framing"
)

// bareSession is a session with no sockets or goroutines, for driving its handlers directly.
func bareSession(t *testing.T) *Session {
	t.Helper()
	s, err := newSession(sessionParams{
		log:       slog.New(slog.NewTextHandler(io.Discard, nil)),
		peerName:  "test",
		cipher:    crypto.CipherAES256GCM,
		scheduler: "eat",
	})
	if err != nil {
		t.Fatal(err)
	}
	return s
}

// TestFeedbackCopyIgnored: the same FEEDBACK arriving again (its copy on the spare path,
// later) or an older one must not give an RTT sample: it would be the slower path's.
func TestFeedbackCopyIgnored(t *testing.T) {
	s := bareSession(t)
	p := &Path{id: 1, remote: netip.MustParseAddrPort("192.0.2.1:7350")}
	if err := s.addPath(p); err != nil {
		t.Fatal(err)
	}
	t0 := time.Now()
	p.live.MarkProbed(t0)
	p.live.OnHeard(t0, 10*time.Millisecond) // validated, as by a PROBE_ACK
	for pn := uint64(0); pn < 10; pn++ {
		p.stats.OnSent(t0, pn, 1000)
	}
	p.pn = 10
	fb := framing.Feedback{PathID: 1, HighestPN: 5, Packets: 6, Bytes: 6000}
	s.onFeedback(t0.Add(20*time.Millisecond), p, fb)
	srtt := p.stats.SRTT()
	if srtt != 20*time.Millisecond {
		t.Fatalf("SRTT after the first report = %v, want 20ms", srtt)
	}
	s.onFeedback(t0.Add(60*time.Millisecond), p, fb) // the copy, 40 ms later
	old := framing.Feedback{PathID: 1, HighestPN: 4, Packets: 5, Bytes: 5000}
	s.onFeedback(t0.Add(70*time.Millisecond), p, old) // an older report overtaken
	if got := p.stats.SRTT(); got != srtt {
		t.Fatalf("SRTT moved to %v on a copy or an older report", got)
	}
	newer := framing.Feedback{PathID: 1, HighestPN: 5, Packets: 7, Bytes: 7000} // a later arrival, same highest
	s.onFeedback(t0.Add(30*time.Millisecond+50*time.Millisecond), p, newer)
	if got := p.stats.SRTT(); got == srtt {
		t.Fatal("a newer report (more packets) was ignored")
	}
}

// TestSuspectPathsHoldPacketsWhenNoneUsable: with no usable path the scheduler puts packets on
// a suspect path (held in its queue) instead of dropping them; with a usable one, never.
func TestSuspectPathsHoldPacketsWhenNoneUsable(t *testing.T) {
	s := bareSession(t)
	now := time.Now()
	a := &Path{id: 0x01, remote: netip.MustParseAddrPort("192.0.2.1:7350")}
	b := &Path{id: 0x11, remote: netip.MustParseAddrPort("192.0.2.1:7350")}
	for _, p := range []*Path{a, b} {
		if err := s.addPath(p); err != nil {
			t.Fatal(err)
		}
		p.live.MarkProbed(now)
		p.live.OnHeard(now.Add(time.Millisecond), 10*time.Millisecond) // up
	}
	// Both go silent with data in flight: suspect.
	later := now.Add(time.Second)
	for _, p := range []*Path{a, b} {
		p.live.OnSent(now.Add(2 * time.Millisecond))
		p.live.Tick(later, true, 10*time.Millisecond, time.Millisecond)
		if !p.fallbackLocked(later) || p.usableLocked(later) {
			t.Fatalf("path %#x: state %v, want suspect", p.id, p.live.State())
		}
	}
	s.snapshotPaths(later)
	usable := 0
	for _, sp := range s.schedPaths {
		if sp.Usable {
			usable++
		}
	}
	if usable != 2 {
		t.Fatalf("%d paths offered to the scheduler with none up, want the 2 suspect ones", usable)
	}
	// One comes back: only it is offered.
	a.live.OnHeard(later, 10*time.Millisecond)
	a.live.Tick(later.Add(200*time.Millisecond), false, 10*time.Millisecond, time.Millisecond)
	s.snapshotPaths(later.Add(200 * time.Millisecond))
	for i, sp := range s.schedPaths {
		if want := s.schedIdx[i] == a; sp.Usable != want {
			t.Fatalf("path %#x offered %v with another path up, want %v", sp.ID, sp.Usable, want)
		}
	}
}

// TestReturnPathChangeRestartsMinRTT: reports about a path that start coming another way,
// with a clearly longer RTT (the fast path carrying them died), restart its minimum RTT;
// two equal paths taking turns carrying them do not.
func TestReturnPathChangeRestartsMinRTT(t *testing.T) {
	for _, tc := range []struct {
		name    string
		rtt     time.Duration // RTT of the samples after the switch
		reports int
		oldUp   bool // the path that carried the reports before is still up
		dies    bool // … until after the switch's reports, then one more report
		restart bool
	}{
		{"longer return, for good", 60 * time.Millisecond, 10, false, false, true},
		{"longer return, a few reports only", 60 * time.Millisecond, returnSwitchReports - 1, false, false, false},
		{"equal paths taking turns", 41 * time.Millisecond, 10, false, false, false},
		{"old return path still up: the rise is q's own queue", 60 * time.Millisecond, 10, true, false, false},
		{"old return path found dead later", 60 * time.Millisecond, 10, true, true, true},
	} {
		t.Run(tc.name, func(t *testing.T) {
			s := bareSession(t)
			q := &Path{id: 0x11, remote: netip.MustParseAddrPort("192.0.2.1:7350")}
			fast := &Path{id: 0x01, remote: netip.MustParseAddrPort("192.0.2.1:7350")}
			other := &Path{id: 0x02, remote: netip.MustParseAddrPort("192.0.2.1:7350")}
			for _, p := range []*Path{q, fast, other} {
				if err := s.addPath(p); err != nil {
					t.Fatal(err)
				}
			}
			t0 := time.Now()
			pn := uint64(0)
			report := func(at time.Time, via *Path, rtt time.Duration) {
				q.mu.Lock()
				q.stats.OnSent(at.Add(-rtt), pn, 1000)
				q.pn = pn + 1
				q.mu.Unlock()
				s.onFeedback(at, via, framing.Feedback{PathID: q.id, HighestPN: pn, Packets: uint32(pn + 1), Bytes: (pn + 1) * 1000})
				pn++
			}
			for i := 0; i < 20; i++ {
				report(t0.Add(time.Duration(i)*5*time.Millisecond), fast, 40*time.Millisecond)
			}
			fast.up.Store(tc.oldUp)
			for i := 0; i < tc.reports; i++ {
				report(t0.Add(time.Duration(100+i)*5*time.Millisecond), other, tc.rtt)
			}
			if tc.dies {
				fast.up.Store(false)
				report(t0.Add(time.Duration(100+tc.reports)*5*time.Millisecond), other, tc.rtt)
			}
			got := q.stats.MinRTT()
			if restarted := got > 40*time.Millisecond+time.Millisecond; restarted != tc.restart {
				t.Errorf("MinRTT = %v after %d reports at %v on another path; restarted %v, want %v", got, tc.reports, tc.rtt, restarted, tc.restart)
			}
		})
	}
}
