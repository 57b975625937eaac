package session

import (
	"encoding/binary"
	"net/netip"
	"testing"
	"time"

	"github.com/bondtun/bondtun/framing"
	"github.com/bondtun/bondtun/path"
)

// unreadTransport is a path's transport whose reader lags: Pending reports what the test
// says waits unread. Nothing else of it is used.
type unreadTransport struct {
	path.Transport
	pending int
}

func (u *unreadTransport) Pending() (int, bool) { return u.pending, true }

// plainTransport is a transport that cannot tell (no Pending).
type plainTransport struct{ path.Transport }

type seqRecorder struct{ seqs []uint64 }

func (r *seqRecorder) Deliver(pkts [][]byte) {
	for _, p := range pkts {
		r.seqs = append(r.seqs, binary.BigEndian.Uint64(p))
	}
}

// TestUnreadPostponesDeadline: lane 0 is striped over paths 0 and 16, each on its own
// transport (socket). seq 1 went on path 16, whose reader lags: the datagram waits in its
// socket while path 0's reader delivers seq 2. The gap's deadline must not give seq 1 up
// while the socket holds data; once it is read the lane is delivered in order. If what waits
// never fills the gap (it was lost, and the data is something else), the gap is released
// reorderMaxPostpone past its deadline. A transport that cannot tell changes nothing.
func TestUnreadPostponesDeadline(t *testing.T) {
	type setup struct {
		s        *Session
		rec      *seqRecorder
		p0, p16  *Path
		deadline time.Time
	}
	t0 := time.Now()
	start := func(t *testing.T, t16 path.Transport) setup {
		s := bareSession(t)
		rec := &seqRecorder{}
		s.deliver = rec
		p0 := &Path{id: 0, remote: netip.MustParseAddrPort("192.0.2.1:7350")}
		p16 := &Path{id: 16, remote: netip.MustParseAddrPort("192.0.2.2:7350")}
		p0.setTransport(&unreadTransport{})
		p16.setTransport(t16)
		for _, p := range []*Path{p0, p16} {
			if err := s.addPath(p); err != nil {
				t.Fatal(err)
			}
		}
		s.rxMu.Lock()
		t.Cleanup(s.rxMu.Unlock)
		// Both paths delivered before (a probe each); then seq 0 and 2 on path 0.
		s.noteArrivalLocked(t0, p0, 0, 0, 100)
		s.noteArrivalLocked(t0, p16, 0, 0, 100)
		push(t, s, t0, p0, 0, 0)
		push(t, s, t0.Add(time.Millisecond), p0, 2, 2)
		s.flushLocked(t0.Add(time.Millisecond))
		d, ok := s.reorder.NextDeadline()
		if !ok {
			t.Fatal("no gap for seq 1")
		}
		return setup{s, rec, p0, p16, d}
	}
	// runTo flushes every tick, as the timer does, up to end, and returns when the gap was
	// released (the zero time if it was not).
	runTo := func(st setup, from, end time.Time) time.Time {
		for now := from; !now.After(end); now = now.Add(tick) {
			st.s.flushLocked(now)
			if st.s.reorder.Len() == 0 {
				return now
			}
		}
		return time.Time{}
	}
	t.Run("read late, delivered in order", func(t *testing.T) {
		t16 := &unreadTransport{pending: 1100}
		st := start(t, t16)
		if at := runTo(st, t0.Add(time.Millisecond), st.deadline.Add(reorderMaxPostpone/2)); !at.IsZero() {
			t.Fatalf("gap released at +%v while path 16's socket held data (deadline +%v)", at.Sub(t0), st.deadline.Sub(t0))
		}
		now := st.deadline.Add(reorderMaxPostpone / 2)
		t16.pending = 0
		st.s.noteArrivalLocked(now, st.p16, 1, 0, 1100)
		push(t, st.s, now, st.p16, 1, 1)
		st.s.flushLocked(now)
		if got := st.rec.seqs; len(got) != 3 || got[0] != 0 || got[1] != 1 || got[2] != 2 {
			t.Fatalf("delivered %v, want [0 1 2]", got)
		}
		if rs := st.s.reorder.Stats(); rs.Late != 0 || rs.Deadline != 0 || rs.Filled != 1 || rs.Postponed == 0 {
			t.Fatalf("reorder stats %+v", rs)
		}
	})
	t.Run("lost: released by the bound", func(t *testing.T) {
		st := start(t, &unreadTransport{pending: 1100})
		at := runTo(st, t0.Add(time.Millisecond), st.deadline.Add(reorderMaxHold))
		if at.IsZero() || at.Before(st.deadline.Add(reorderMaxPostpone)) || at.After(st.deadline.Add(reorderMaxPostpone+tick)) {
			t.Fatalf("gap released at +%v, want at the deadline (+%v) plus %v", at.Sub(t0), st.deadline.Sub(t0), reorderMaxPostpone)
		}
		if got := st.rec.seqs; len(got) != 2 || got[0] != 0 || got[1] != 2 {
			t.Fatalf("delivered %v, want [0 2]", got)
		}
		if rs := st.s.reorder.Stats(); rs.Deadline != 1 {
			t.Fatalf("reorder stats %+v", rs)
		}
	})
	for _, tc := range []struct {
		name string
		t16  path.Transport
	}{{"nothing unread", &unreadTransport{}}, {"a transport that cannot tell", plainTransport{}}} {
		t.Run(tc.name+": released at the deadline", func(t *testing.T) {
			st := start(t, tc.t16)
			at := runTo(st, t0.Add(time.Millisecond), st.deadline.Add(reorderMaxHold))
			if at.IsZero() || at.Before(st.deadline) || at.After(st.deadline.Add(tick)) {
				t.Fatalf("gap released at +%v, want at its deadline +%v", at.Sub(t0), st.deadline.Sub(t0))
			}
			if rs := st.s.reorder.Stats(); rs.Postponed != 0 {
				t.Fatalf("reorder stats %+v", rs)
			}
		})
	}
}

// push hands the reorder buffer lane 0's packet seq, carrying the message number msg,
// arriving on p at now (sent 100 µs before).
func push(t *testing.T, s *Session, now time.Time, p *Path, seq, msg uint64) {
	t.Helper()
	pb := getBuf()
	binary.BigEndian.PutUint64(pb.data[framing.PayloadOffset:], msg)
	pb.n = 8
	if !s.reorder.Push(now, 0, seq, p.id, now.Add(-100*time.Microsecond), pb) {
		putBuf(pb)
		t.Fatalf("seq %d was not kept", seq)
	}
}
