package session

import (
	"net/netip"
	"sync/atomic"
	"time"

	"github.com/bondtun/bondtun/framing"
	"github.com/bondtun/bondtun/path"
)

// NodeCounters count what a node drops before any session is found.
type NodeCounters struct {
	RxDatagrams atomic.Uint64
	RxTruncated atomic.Uint64
	RxBadHeader atomic.Uint64
	RxNoSession atomic.Uint64
	TxNoSession atomic.Uint64
	TxNoRoute   atomic.Uint64
	TxNotIP     atomic.Uint64
	// Server: TCP connections to the control port that got no TLS handshake (a per-source
	// limit, or every slot busy), whose handshake a newcomer preempted, and whose
	// handshake failed or timed out (admit.go).
	HandshakesRefused   atomic.Uint64
	HandshakesPreempted atomic.Uint64
	HandshakesFailed    atomic.Uint64
}

// routineReceive reads datagrams from conn until it is closed, and hands each to the session
// its receiver index names (lookup returns nil for none). Unauthenticated input costs a header
// parse and, for a known index, one failed AEAD open; it changes no state. With UDP GRO the
// kernel hands over trains of datagrams in one buffer, which are split and copied into pooled
// packet buffers; without it, datagrams land in pooled buffers directly.
func routineReceive(conn path.Transport, lookup func(uint16) *Session, nc *NodeCounters, clock func() time.Time) {
	if g, ok := conn.(path.GROReader); ok && g.EnableGRO() {
		routineReceiveGRO(conn, g, lookup, nc, clock)
		return
	}
	var (
		bufs  [path.MaxBatch]*packetBuf
		views [path.MaxBatch][]byte
		sizes [path.MaxBatch]int
		from  [path.MaxBatch]netip.AddrPort
	)
	for i := range bufs {
		bufs[i] = getBuf()
	}
	defer func() {
		for _, b := range bufs {
			putBuf(b)
		}
	}()
	r := &receiver{conn: conn, lookup: lookup, nc: nc}
	for {
		for i, b := range bufs {
			views[i] = b.data[:]
		}
		n, err := conn.ReadBatch(views[:], sizes[:], from[:])
		if err != nil {
			if path.IsClosed(err) {
				return
			}
			time.Sleep(time.Millisecond) // transient (e.g. ICMP-triggered ECONNREFUSED); never spin
			continue
		}
		now := clock() // once per batch
		nc.RxDatagrams.Add(uint64(n))
		for i := 0; i < n; i++ {
			if sizes[i] < 0 {
				nc.RxTruncated.Add(1)
				continue
			}
			bufs[i].n = sizes[i]
			if r.handle(now, bufs[i], from[i]) {
				bufs[i] = getBuf()
			}
		}
		r.flush(now)
	}
}

// groBatch is how many coalesced messages one GRO read takes (each up to 64 datagrams).
const groBatch = 8

// receiver handles the datagrams of one read batch: it finds each one's session, hands it
// over, and flushes every session it touched at the end.
type receiver struct {
	conn    path.Transport
	lookup  func(uint16) *Session
	nc      *NodeCounters
	touched [path.MaxBatch]*Session
	nt      int
}

// handle processes one datagram in pb.data[:pb.n] from from. It reports whether the
// session kept pb. Only a session whose state the datagram changed is flushed at the end
// of the batch: a rejected datagram (forged, replayed, …) takes no session lock here.
func (r *receiver) handle(now time.Time, pb *packetBuf, from netip.AddrPort) bool {
	hdr, err := framing.ParseHeader(pb.data[:pb.n])
	if err != nil {
		r.nc.RxBadHeader.Add(1)
		return false
	}
	s := r.lookup(hdr.Receiver)
	if s == nil {
		r.nc.RxNoSession.Add(1)
		return false
	}
	res := s.receive(now, r.conn, from, hdr, pb)
	if res == rxRejected {
		return false
	}
	if r.nt == 0 || r.touched[r.nt-1] != s {
		if r.nt == len(r.touched) {
			r.flush(now)
		}
		r.touched[r.nt] = s
		r.nt++
	}
	return res == rxKept
}

func (r *receiver) flush(now time.Time) {
	for i := 0; i < r.nt; i++ {
		r.touched[i].flush(now)
		r.touched[i] = nil
	}
	r.nt = 0
}

func routineReceiveGRO(conn path.Transport, g path.GROReader, lookup func(uint16) *Session, nc *NodeCounters, clock func() time.Time) {
	bufs := make([][]byte, groBatch)
	for i := range bufs {
		bufs[i] = make([]byte, path.GROBufferSize)
	}
	msgs := make([]path.Msg, groBatch)
	r := &receiver{conn: conn, lookup: lookup, nc: nc}
	pb := getBuf()
	defer func() { putBuf(pb) }()
	for {
		n, err := g.ReadBatchGRO(bufs, msgs)
		if err != nil {
			if path.IsClosed(err) {
				return
			}
			time.Sleep(time.Millisecond)
			continue
		}
		now := clock() // once per batch
		for i := 0; i < n; i++ {
			m := &msgs[i]
			if m.Truncated {
				nc.RxTruncated.Add(1)
				continue
			}
			for rest := bufs[i][:m.N]; len(rest) > 0; {
				var seg []byte
				seg, rest = path.NextSegment(rest, m.SegSize)
				nc.RxDatagrams.Add(1)
				if len(seg) > len(pb.data) {
					nc.RxTruncated.Add(1)
					continue
				}
				pb.n = copy(pb.data[:], seg)
				if r.handle(now, pb, m.From) {
					pb = getBuf()
				}
			}
		}
		r.flush(now)
	}
}
