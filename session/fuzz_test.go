package session

import (
	"sync"
	"testing"
	"time"

	"github.com/bondtun/bondtun/framing"
	"github.com/bondtun/bondtun/path"
)

// fuzzPair is one client and server with an established session over an in-memory
// network (real clock), shared by every input of FuzzSessionReceive.
var (
	fuzzOnce sync.Once
	fuzzSim  *simNode
)

// FuzzSessionReceive drives a whole session's receive path, after a real handshake, with
// arbitrary datagrams. The first byte picks the form: even, the rest is a datagram as it
// comes off the wire (header parse, session lookup, AEAD open, which fails: it must change
// nothing); odd, the rest after a second byte (its low bit: data or control) is the
// plaintext of a datagram the client really seals with its key and next packet number,
// so it passes authentication and reaches the inner header, the replay window, the
// reorder buffer and the control frames (FEEDBACK, NACK, PROBE, PATH_* …) with arbitrary
// contents. Nothing may panic; a datagram that fails authentication must not move the
// session's receive counters or its reorder buffer.
func FuzzSessionReceive(f *testing.F) {
	var inner [framing.InnerHeaderLen]byte
	ih := framing.InnerHeader{Lane: 3, LaneSeq: 1, SendTime: 10}
	ih.Put(inner[:])
	f.Add([]byte{0, 1, 0, 0, 0})
	f.Add(append([]byte{1, 0}, append(inner[:], "payload"...)...))
	fb := framing.Feedback{PathID: 0, HighestPN: 5, Packets: 3, Bytes: 3000}
	f.Add(append([]byte{1, 1}, append(inner[:], fb.Append(nil)...)...))
	nack := framing.Nack{PathID: 0x10, First: 1, Count: 4}
	f.Add(append([]byte{1, 1}, append(inner[:], nack.Append(nil)...)...))
	f.Fuzz(func(t *testing.T, data []byte) {
		fuzzOnce.Do(func() { fuzzSim = newSim(t, 1, cable(), dsl()) })
		if len(data) < 2 || len(data) > maxInnerMTU {
			return
		}
		sn := fuzzSim
		srv := sn.server.Sessions()
		if len(srv) != 1 {
			t.Skip("no server session") // the previous input ended it (e.g. a sealed BYE-like state)
		}
		ss := srv[0]
		cs := sn.client.Session()
		if cs == nil {
			t.Skip("no client session")
		}
		cp := cs.pathList()[0]
		conn := sn.server.conns[0]
		r := &receiver{conn: conn, lookup: sn.server.lookup, nc: &sn.server.counters}
		pb := getBuf()
		defer func() { putBuf(pb) }() // pb may be replaced below
		now := time.Now()
		if data[0]&1 == 0 {
			before, held := ss.counters.RxPackets.Load(), ss.reorderLen()
			pb.n = copy(pb.data[:], data[1:])
			if kept := r.handle(now, pb, cp.transport().LocalAddr()); kept {
				t.Fatal("a forged datagram was kept")
			}
			r.flush(now)
			if ss.counters.RxPackets.Load() != before || ss.reorderLen() > held {
				t.Fatal("a forged datagram changed the session's receive state")
			}
			return
		}
		typ := framing.TypeData
		if data[1]&1 == 1 {
			typ = framing.TypeControl
		}
		plain := data[2:]
		if len(plain) < framing.InnerHeaderLen {
			return
		}
		cp.mu.Lock()
		dgram, _, err := cs.sealLocked(cp, typ, pb.data[:], plain)
		if err == nil {
			pb.n = len(dgram)
		}
		cp.mu.Unlock()
		if err != nil {
			return
		}
		if r.handle(now, pb, cp.transport().LocalAddr()) {
			pb = getBuf() // the session kept the buffer
		}
		r.flush(now)
	})
}

func (s *Session) reorderLen() int {
	s.rxMu.Lock()
	defer s.rxMu.Unlock()
	return s.reorder.Len()
}

var _ path.Transport = (*path.Conn)(nil)
