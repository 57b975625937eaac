package session

import (
	"net/netip"
	"testing"
	"time"

	"github.com/bondtun/bondtun/framing"
	"github.com/bondtun/bondtun/reorder"
)

// rxState is what a datagram may change in a session, apart from counters.
type rxState struct {
	rxAny                bool
	rxHighest, rxDatagrm uint64
	rxPackets            uint32
	rxRemote             netip.AddrPort
	lastAuth             int64
	nackN                int
	reorderLen           int
	reorder              reorder.Stats
}

func rxStateOf(s *Session, p *Path) rxState {
	s.rxMu.Lock()
	defer s.rxMu.Unlock()
	return rxState{p.rxAny, p.rxHighest, p.rxDatagram, p.rxPackets, p.rxRemote, s.lastAuth.Load(), s.nackN, s.reorder.Len(), s.reorder.Stats()}
}

// handleLocked runs one datagram through a receiver (and its end-of-batch flush) while
// the test holds the session's rxMu, and reports whether that finished without the lock.
func handleLocked(t *testing.T, s *Session, r *receiver, dgram []byte, from netip.AddrPort) bool {
	t.Helper()
	pb := getBuf()
	pb.n = copy(pb.data[:], dgram)
	done := make(chan bool, 1)
	s.rxMu.Lock()
	go func() {
		now := time.Now()
		kept := r.handle(now, pb, from)
		r.flush(now)
		if !kept {
			putBuf(pb)
		}
		done <- true
	}()
	select {
	case <-done:
		s.rxMu.Unlock()
		return true
	case <-time.After(300 * time.Millisecond):
		s.rxMu.Unlock() // let it finish
		<-done
		return false
	}
}

// TestForgedDatagramChangesNoState: a datagram with the session's receiver index and a
// known path but a wrong tag is rejected without the session's receive lock, schedules no
// flush (reorder drain), and changes nothing but the auth-failure counter. A genuine
// datagram, by contrast, needs the lock and changes the path's receive state: the test
// would see it if the forgery did too. Replays of the genuine one are rejected before the
// open, also without the lock.
func TestForgedDatagramChangesNoState(t *testing.T) {
	s := bareSession(t) // its send and receive keys are equal (zero), so it can seal to itself
	s.local = 0x1234
	s.remote = 0x1234
	p := &Path{id: 0x10, name: "test", remote: netip.MustParseAddrPort("192.0.2.1:7350")}
	if err := s.addPath(p); err != nil {
		t.Fatal(err)
	}
	s.deliver = discard{}
	r := &receiver{lookup: func(idx uint16) *Session {
		if idx == s.local {
			return s
		}
		return nil
	}, nc: &NodeCounters{}}
	from := netip.MustParseAddrPort("198.51.100.7:4444")

	// A genuine data datagram (packet number 0), sealed as the peer would.
	var buf [framing.PayloadOffset + 64 + framing.TagLen]byte
	inner := framing.InnerHeader{Lane: 3, LaneSeq: 0}
	inner.Put(buf[framing.HeaderLen:])
	p.mu.Lock()
	genuine, _, err := s.sealLocked(p, framing.TypeData, buf[:], buf[framing.HeaderLen:framing.PayloadOffset])
	p.mu.Unlock()
	if err != nil {
		t.Fatal(err)
	}
	genuine = append([]byte(nil), genuine...)

	forged := append([]byte(nil), genuine...)
	forged[len(forged)-1] ^= 1 // same header, broken tag
	before := rxStateOf(s, p)
	if !handleLocked(t, s, r, forged, from) {
		t.Fatal("the forged datagram waited for the session's receive lock")
	}
	if after := rxStateOf(s, p); after != before {
		t.Fatalf("the forged datagram changed state:\nbefore %+v\nafter  %+v", before, after)
	}
	if r.nt != 0 {
		t.Fatal("the forged datagram scheduled a flush of the session")
	}
	if n := s.counters.RxAuthFail.Load(); n != 1 {
		t.Fatalf("RxAuthFail = %d, want 1", n)
	}

	if handleLocked(t, s, r, genuine, from) {
		t.Fatal("the genuine datagram did not need the receive lock: the check above proves nothing")
	}
	if after := rxStateOf(s, p); after.rxDatagrm != before.rxDatagrm+1 || !after.rxAny {
		t.Fatalf("the genuine datagram changed no state: %+v", after)
	}
	if s.counters.RxAuthFail.Load() != 1 || s.counters.RxPackets.Load() != 1 {
		t.Fatalf("counters after the genuine datagram: auth failures %d, packets %d", s.counters.RxAuthFail.Load(), s.counters.RxPackets.Load())
	}

	// Its replay, and the replay with a broken tag, are rejected by the replay window's
	// check before the open (the broken one counts as a replay, not as an authentication
	// failure, so it was never opened), without the receive lock and changing nothing.
	before = rxStateOf(s, p)
	for i, d := range [][]byte{genuine, forged} {
		if !handleLocked(t, s, r, d, from) {
			t.Fatalf("replay %d waited for the session's receive lock", i)
		}
	}
	if after := rxStateOf(s, p); after != before {
		t.Fatalf("a replay changed state:\nbefore %+v\nafter  %+v", before, after)
	}
	if s.counters.RxReplay.Load() != 2 || s.counters.RxAuthFail.Load() != 1 || s.counters.RxPackets.Load() != 1 {
		t.Fatalf("after two replays: replays %d (want 2), auth failures %d (want 1), packets %d (want 1)",
			s.counters.RxReplay.Load(), s.counters.RxAuthFail.Load(), s.counters.RxPackets.Load())
	}
}

type discard struct{}

func (discard) Deliver([][]byte) {}

// TestRejectedDatagramsAllocateNothing: every kind of datagram the receiver drops before
// authentication (a malformed header, an unknown receiver index, an unknown path, a wrong
// tag under a known index) costs no allocation, so a flood of them makes no garbage.
func TestRejectedDatagramsAllocateNothing(t *testing.T) {
	if raceEnabled {
		t.Skip("the race detector allocates")
	}
	s := bareSession(t)
	s.local, s.remote, s.isServer = 0x1234, 0x1234, true
	p := &Path{id: 0x10, name: "test", remote: netip.MustParseAddrPort("192.0.2.1:7350")}
	if err := s.addPath(p); err != nil {
		t.Fatal(err)
	}
	s.deliver = discard{}
	nc := &NodeCounters{}
	r := &receiver{lookup: func(idx uint16) *Session {
		if idx == s.local {
			return s
		}
		return nil
	}, nc: nc}
	var buf [framing.PayloadOffset + 1200 + framing.TagLen]byte
	p.mu.Lock()
	genuine, _, err := s.sealLocked(p, framing.TypeData, buf[:], buf[framing.HeaderLen:framing.PayloadOffset+1200])
	p.mu.Unlock()
	if err != nil {
		t.Fatal(err)
	}
	forged := append([]byte(nil), genuine...)
	forged[len(forged)-1] ^= 1
	unknownIndex := append([]byte(nil), genuine...)
	unknownIndex[2] ^= 0xff
	unknownPath := append([]byte(nil), genuine...)
	unknownPath[1] = 0x77
	from := netip.MustParseAddrPort("198.51.100.7:4444")
	pb := getBuf()
	defer putBuf(pb)
	for name, d := range map[string][]byte{"short": genuine[:20], "unknown index": unknownIndex, "unknown path": unknownPath, "forged": forged} {
		allocs := testing.AllocsPerRun(200, func() {
			pb.n = copy(pb.data[:], d)
			if r.handle(time.Now(), pb, from) {
				t.Fatal("a rejected datagram was kept")
			}
			r.flush(time.Now())
		})
		if allocs != 0 {
			t.Errorf("%s: %.1f allocations per datagram", name, allocs)
		}
	}
	if nc.RxBadHeader.Load() == 0 || nc.RxNoSession.Load() == 0 || s.counters.RxNoPath.Load() == 0 || s.counters.RxAuthFail.Load() == 0 {
		t.Fatalf("not every kind was rejected where expected: header %d, session %d, path %d, auth %d",
			nc.RxBadHeader.Load(), nc.RxNoSession.Load(), s.counters.RxNoPath.Load(), s.counters.RxAuthFail.Load())
	}
}
