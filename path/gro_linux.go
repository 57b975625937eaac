package path

import (
	"encoding/binary"
	"net/netip"
	"unsafe"

	"golang.org/x/sys/unix"
)

// UDP generic receive offload (GRO) on receive.
//
// With UDP_GRO on, the kernel may hand up several datagrams of one flow, all of one size but the
// last, as one coalesced datagram, and says the segment size in a UDP_GRO control message. One
// trip through the socket layer then moves up to 64 datagrams.

// GROBufferSize is the size each buffer passed to ReadBatchGRO must have: a coalesced datagram
// can be as large as the largest UDP payload.
const GROBufferSize = 64 << 10

// Msg describes one message received by ReadBatchGRO.
type Msg struct {
	// N is the number of bytes in the buffer.
	N int
	// SegSize is the size of the datagrams the kernel coalesced into this message (the last
	// may be shorter); 0 means the message is a single datagram. Split with NextSegment.
	SegSize int
	// From is the sender's address.
	From netip.AddrPort
	// Truncated reports that the message did not fit its buffer. The bytes past N are lost:
	// a single datagram (SegSize 0) is incomplete and should be dropped; of a coalesced one,
	// the whole SegSize-sized segments inside N are intact.
	Truncated bool
}

// EnableGRO turns UDP_GRO on for the socket and reports whether the kernel accepted it. Once it
// is on, read only with ReadBatchGRO: ReadBatch cannot tell coalesced datagrams apart.
func (c *Conn) EnableGRO() bool {
	ok := false
	err := c.rc.Control(func(fd uintptr) {
		if unix.SetsockoptInt(int(fd), unix.IPPROTO_UDP, unix.UDP_GRO, 1) != nil {
			return
		}
		v, err := unix.GetsockoptInt(int(fd), unix.IPPROTO_UDP, unix.UDP_GRO)
		ok = err == nil && v == 1
	})
	ok = ok && err == nil
	if ok {
		c.gro.Store(true)
	}
	return ok
}

// GRO reports whether EnableGRO succeeded on this socket.
func (c *Conn) GRO() bool { return c.gro.Load() }

// ReadBatchGRO reads up to len(bufs) messages (at most MaxBatch) as ReadBatch does, but with
// control messages, so that coalesced datagrams are reported: message i lands in bufs[i] and is
// described by msgs[i]. Each buffer should be GROBufferSize bytes long, else long coalesced
// messages are truncated. It blocks until at least one message is there. It works whether or
// not GRO is enabled (without it, every SegSize is 0). Split a message into its datagrams with
//
//	for rest := bufs[i][:msgs[i].N]; len(rest) > 0; {
//		var seg []byte
//		seg, rest = path.NextSegment(rest, msgs[i].SegSize)
//		// use seg
//	}
func (c *Conn) ReadBatchGRO(bufs [][]byte, msgs []Msg) (int, error) {
	c.rmu.Lock()
	defer c.rmu.Unlock()
	st := &c.rx
	if err := c.recvmmsg(bufs[:min(len(bufs), len(msgs), MaxBatch)], true); err != nil {
		return 0, err
	}
	for i := 0; i < st.done; i++ {
		m := &st.msgs[i]
		ctrl := st.ctrl[i].bytes()
		msgs[i] = Msg{
			N:         int(m.Len),
			SegSize:   parseGROCmsg(ctrl[:min(int(m.Hdr.Controllen), len(ctrl))]),
			From:      sockaddrToAddrPort(&st.names[i]),
			Truncated: m.Hdr.Flags&unix.MSG_TRUNC != 0,
		}
	}
	return st.done, nil
}

// NextSegment cuts the first datagram off b, a message with segment size segSize as
// ReadBatchGRO reports it: seg is b's first segSize bytes (or all of b if it is shorter or
// segSize is not positive) and rest is what follows. It does not allocate.
func NextSegment(b []byte, segSize int) (seg, rest []byte) {
	if segSize <= 0 || segSize >= len(b) {
		return b, nil
	}
	return b[:segSize:segSize], b[segSize:]
}

// cmsgHdrLen and cmsgAlign describe struct cmsghdr on this platform: cmsg_len is a size_t
// (the platform's word), then two ints; every message starts on a word boundary.
const (
	cmsgAlign  = int(unsafe.Sizeof(uintptr(0)))
	cmsgHdrLen = cmsgAlign + 8
)

// parseGROCmsg returns the segment size of a UDP_GRO control message in the control buffer b,
// or 0 if there is none or b is malformed. It reads b by hand, without allocating.
func parseGROCmsg(b []byte) int {
	for len(b) >= cmsgHdrLen {
		var l uint64
		if cmsgAlign == 8 {
			l = binary.NativeEndian.Uint64(b)
		} else {
			l = uint64(binary.NativeEndian.Uint32(b))
		}
		if l < uint64(cmsgHdrLen) || l > uint64(len(b)) {
			return 0
		}
		level := int32(binary.NativeEndian.Uint32(b[cmsgAlign:]))
		typ := int32(binary.NativeEndian.Uint32(b[cmsgAlign+4:]))
		data := b[cmsgHdrLen:l]
		if level == unix.SOL_UDP && typ == unix.UDP_GRO {
			// The kernel writes an int; accept a bare uint16 as well.
			var v int64
			switch {
			case len(data) >= 4:
				v = int64(int32(binary.NativeEndian.Uint32(data)))
			case len(data) >= 2:
				v = int64(binary.NativeEndian.Uint16(data))
			}
			if v < 0 || v > 0xffff {
				return 0
			}
			return int(v)
		}
		next := (int(l) + cmsgAlign - 1) &^ (cmsgAlign - 1)
		if next >= len(b) {
			return 0
		}
		b = b[next:]
	}
	return 0
}
