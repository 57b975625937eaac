package session

import (
	"net/netip"
	"sort"
	"testing"
	"time"
)

// TestReorderHoldFromFirstPacket: a session's first packets. The timer's first run (at the
// session's start, before any arrival) updates the reorder buffer's live set; a path that
// has not delivered yet must not be set dead there, or the hold would leave its delay out
// until the next update (liveInterval later, more on a loaded machine) and be the repair
// allowance alone. Here one lane is striped over two paths from the first millisecond:
// path 0 arrives at once, path 16 behind a sender queue that grows by a millisecond a
// millisecond up to 40 ms (what a sender's startup pacing did on a loaded two-core machine,
// 15–40 ms, in examples/msgpipe's TestTwoProcesses). Every packet must be delivered, in
// order; a packet that is really lost (one of path 0's) is still given up on by deadline.
func TestReorderHoldFromFirstPacket(t *testing.T) {
	const (
		sendFor = 150 * time.Millisecond
		lost    = 2 * 60 // lane sequence of path 0's packet that never arrives
	)
	s := bareSession(t)
	p0 := &Path{id: 0, remote: netip.MustParseAddrPort("192.0.2.1:7350")}
	p16 := &Path{id: 16, remote: netip.MustParseAddrPort("192.0.2.1:7350")}
	for _, p := range []*Path{p0, p16} {
		if err := s.addPath(p); err != nil {
			t.Fatal(err)
		}
	}
	t0 := time.Now()
	type arrival struct {
		at, sent time.Time
		p        *Path
		seq      uint64
	}
	var arrivals []arrival
	for ms := time.Duration(0); ms < sendFor; ms += time.Millisecond {
		sent := t0.Add(ms)
		queue := min(ms, 40*time.Millisecond)
		if seq := uint64(2 * ms / time.Millisecond); seq != lost {
			arrivals = append(arrivals, arrival{sent.Add(100 * time.Microsecond), sent, p0, seq})
		}
		arrivals = append(arrivals, arrival{sent.Add(queue + 100*time.Microsecond), sent, p16, uint64(2*ms/time.Millisecond) + 1})
	}
	sort.SliceStable(arrivals, func(i, j int) bool { return arrivals[i].at.Before(arrivals[j].at) })

	s.rxMu.Lock()
	defer s.rxMu.Unlock()
	s.updateLiveLocked(t0) // the timer's first run: nothing arrived yet
	lastLive := t0
	var got []uint64
	drain := func(now time.Time) {
		for _, pb := range s.reorder.Drain(now, nil) {
			got = append(got, uint64(pb.n))
			putBuf(pb)
		}
	}
	pn := map[*Path]uint64{}
	for _, a := range arrivals {
		for next := lastLive.Add(liveInterval); !next.After(a.at); next = next.Add(liveInterval) {
			drain(next)
			s.updateLiveLocked(next) // the timer's runs every liveInterval
			lastLive = next
		}
		s.noteArrivalLocked(a.at, a.p, pn[a.p], 0, 1000)
		pn[a.p]++
		pb := getBuf()
		pb.n = int(a.seq)
		if !s.reorder.Push(a.at, 0, a.seq, a.p.id, a.sent, pb) {
			putBuf(pb)
			t.Errorf("packet %d (path %d, %v after it was sent) was late, held %v", a.seq, a.p.id, a.at.Sub(a.sent), s.reorder.Hold())
		}
		drain(a.at)
	}
	drain(arrivals[len(arrivals)-1].at.Add(reorderMaxHold))
	if want := 2*int(sendFor/time.Millisecond) - 1; len(got) != want {
		t.Fatalf("delivered %d packets, want %d", len(got), want)
	}
	for i, seq := range got {
		want := uint64(i)
		if i >= lost {
			want++
		}
		if seq != want {
			t.Fatalf("delivered packet %d is %d, want %d", i, seq, want)
		}
	}
	st := s.reorder.Stats()
	if st.Late != 0 || st.Deadline != 1 {
		t.Fatalf("late %d, deadline releases %d; want 0 and 1 (the lost packet)", st.Late, st.Deadline)
	}
	if st.HoldMax >= reorderMaxHold {
		t.Fatalf("the lost packet's gap was held %v, the buffer's limit", st.HoldMax)
	}
}
