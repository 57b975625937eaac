package session

import (
	"net/netip"
	"testing"
	"time"
)

// TestFailoversCounted: a path that leaves liveness up counts one failover in its
// PathInfo; coming back and validating again counts none.
func TestFailoversCounted(t *testing.T) {
	s := bareSession(t)
	p := &Path{id: 1, remote: netip.MustParseAddrPort("192.0.2.1:7350")}
	if err := s.addPath(p); err != nil {
		t.Fatal(err)
	}
	now := time.Now()
	p.mu.Lock()
	p.live.MarkProbed(now)
	s.onLiveness(now, p, p.live.OnHeard(now.Add(time.Millisecond), 10*time.Millisecond)) // up
	p.live.OnSent(now.Add(2 * time.Millisecond))
	s.onLiveness(now, p, p.live.Tick(now.Add(time.Second), true, 10*time.Millisecond, time.Millisecond)) // silent: suspect
	state := p.live.State().String()
	p.mu.Unlock()
	if state != "suspect" {
		t.Fatalf("state %s, want suspect", state)
	}
	if got := s.Paths()[0].Failovers; got != 1 {
		t.Fatalf("Failovers = %d after leaving up once, want 1", got)
	}
	p.mu.Lock()
	s.onLiveness(now, p, p.live.OnHeard(now.Add(time.Second), 10*time.Millisecond)) // back up
	p.mu.Unlock()
	if got := s.Paths()[0].Failovers; got != 1 {
		t.Fatalf("Failovers = %d after coming back, want 1", got)
	}
}
