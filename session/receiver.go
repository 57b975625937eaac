package session

import (
	"net/netip"
	"sync/atomic"
	"time"

	"bondtun/framing"
	"bondtun/path"
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
}

// routineReceive reads datagrams from conn until it is closed, and hands each to the session
// its receiver index names (lookup returns nil for none). Unauthenticated input costs a header
// parse and, for a known index, one failed AEAD open; it changes no state.
func routineReceive(conn *path.Conn, lookup func(uint16) *Session, nc *NodeCounters) {
	var (
		bufs    [path.MaxBatch]*packetBuf
		views   [path.MaxBatch][]byte
		sizes   [path.MaxBatch]int
		from    [path.MaxBatch]netip.AddrPort
		touched [path.MaxBatch]*Session
	)
	for i := range bufs {
		bufs[i] = getBuf()
	}
	defer func() {
		for _, b := range bufs {
			putBuf(b)
		}
	}()
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
		now := time.Now()
		nt := 0
		nc.RxDatagrams.Add(uint64(n))
		for i := 0; i < n; i++ {
			if sizes[i] < 0 {
				nc.RxTruncated.Add(1)
				continue
			}
			hdr, err := framing.ParseHeader(views[i][:sizes[i]])
			if err != nil {
				nc.RxBadHeader.Add(1)
				continue
			}
			s := lookup(hdr.Receiver)
			if s == nil {
				nc.RxNoSession.Add(1)
				continue
			}
			bufs[i].n = sizes[i]
			if s.receive(now, conn, from[i], hdr, bufs[i]) {
				bufs[i] = getBuf()
			}
			if nt == 0 || touched[nt-1] != s {
				touched[nt] = s
				nt++
			}
		}
		for i := 0; i < nt; i++ {
			touched[i].flush(now)
			touched[i] = nil
		}
	}
}
