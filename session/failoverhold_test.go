package session

import (
	"net/netip"
	"testing"
	"time"
)

// TestFailoverHold: the reorder buffer holds gaps longer only while a path that was busy
// has gone silent and another still delivers.
func TestFailoverHold(t *testing.T) {
	type arrivals struct {
		every     time.Duration // between arrivals on the path, for the first 200 ms
		silentFor time.Duration // then nothing on it for this long
	}
	tests := []struct {
		name   string
		a, b   arrivals
		downA  bool // A's liveness went down (the sender gave up on it too)
		extend bool
	}{
		{"both deliver", arrivals{250 * time.Microsecond, 0}, arrivals{time.Millisecond, 0}, false, false},
		{"busy path silent", arrivals{250 * time.Microsecond, 25 * time.Millisecond}, arrivals{time.Millisecond, 0}, false, true},
		{"a short pause", arrivals{250 * time.Microsecond, 10 * time.Millisecond}, arrivals{time.Millisecond, 0}, false, false},
		{"a pause of the slower path is long for it only", arrivals{250 * time.Microsecond, 0}, arrivals{4 * time.Millisecond, 30 * time.Millisecond}, false, false},
		{"slower path silent longer", arrivals{250 * time.Microsecond, 0}, arrivals{4 * time.Millisecond, 45 * time.Millisecond}, false, true},
		{"idle path", arrivals{20 * time.Millisecond, 100 * time.Millisecond}, arrivals{time.Millisecond, 0}, false, false},
		{"everything silent", arrivals{250 * time.Microsecond, 30 * time.Millisecond}, arrivals{time.Millisecond, 30 * time.Millisecond}, false, false},
		{"silent past rxSilence", arrivals{250 * time.Microsecond, rxSilence}, arrivals{time.Millisecond, 0}, false, false},
		{"silent and down", arrivals{250 * time.Microsecond, 25 * time.Millisecond}, arrivals{time.Millisecond, 0}, true, false},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			s := bareSession(t)
			pa := &Path{id: 0, remote: netip.MustParseAddrPort("192.0.2.1:7350")}
			pb := &Path{id: 16, remote: netip.MustParseAddrPort("192.0.2.1:7350")}
			for _, p := range []*Path{pa, pb} {
				if err := s.addPath(p); err != nil {
					t.Fatal(err)
				}
			}
			t0 := time.Now()
			// Each path delivers for 200 ms, then stops; the other keeps delivering until
			// its own silence starts. now is the end of the longer of the two.
			end := t0.Add(200*time.Millisecond + max(tt.a.silentFor, tt.b.silentFor))
			s.rxMu.Lock()
			defer s.rxMu.Unlock()
			for _, c := range []struct {
				p  *Path
				ar arrivals
			}{{pa, tt.a}, {pb, tt.b}} {
				pn := uint64(0)
				for at := t0; !at.After(end.Add(-c.ar.silentFor)); at = at.Add(c.ar.every) {
					s.noteArrivalLocked(at, c.p, pn, 0, 1000)
					pn++
				}
			}
			if tt.downA {
				pa.live.OnLocalDown(end, "test")
			}
			got := s.failoverHoldLocked(end)
			if (got > 0) != tt.extend {
				t.Fatalf("failover hold %v, want extended %v", got, tt.extend)
			}
			if got > 0 && got < suspectFloor {
				t.Fatalf("failover hold %v is shorter than the sender's suspect floor %v", got, suspectFloor)
			}
		})
	}
}
