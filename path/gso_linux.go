package path

import (
	"encoding/binary"
	"syscall"
	"unsafe"

	"golang.org/x/sys/unix"
)

// UDP generic segmentation offload (GSO) on send.
//
// WriteBatch groups consecutive datagrams of equal size into one GSO train: a single mmsghdr
// whose iovecs point at the caller's buffers in turn (nothing is copied), with a UDP_SEGMENT
// control message giving the segment size. The kernel walks the stack once per train and cuts
// it into datagrams at the device (or in software just before it), which is what makes sending
// cheap (0.67 instead of 2.8 µs per 1400-byte datagram on loopback, measured here; docs/DECISIONS.md).

const (
	// MaxGSOSegments is the largest number of datagrams in one GSO train: the kernel's
	// UDP_MAX_SEGMENTS as older kernels have it, and as much as GRO puts in one message.
	MaxGSOSegments = 64
	// MaxGSOBytes is the largest number of payload bytes in one GSO train: an IPv4 packet
	// of 65,535 bytes less the IPv4 and UDP headers. It also bounds IPv6 trains.
	MaxGSOBytes = 65507
)

// cmsgBuf is the control buffer of one message, 8-byte aligned as a cmsghdr must be. It holds
// the UDP_SEGMENT message on send and receives the UDP_GRO message (and any other) on receive.
type cmsgBuf [8]uint64

// bytes is b as a byte slice.
func (b *cmsgBuf) bytes() []byte { return unsafe.Slice((*byte)(unsafe.Pointer(b)), len(b)*8) }

// segCmsgLen is the length of a UDP_SEGMENT control message (a uint16 payload), padded.
var segCmsgLen = unix.CmsgSpace(2)

// GSO reports whether WriteBatch sends GSO trains on this socket: the kernel supports
// UDP_SEGMENT, and neither a send error (EIO: no checksum offload on the device) nor
// DisableGSO turned it off.
func (c *Conn) GSO() bool { return c.gso.Load() }

// DisableGSO makes WriteBatch send one datagram per message from now on.
func (c *Conn) DisableGSO() { c.gso.Store(false) }

// probeGSO asks the kernel whether the socket supports UDP_SEGMENT.
func probeGSO(rc syscall.RawConn) bool {
	ok := false
	err := rc.Control(func(fd uintptr) {
		_, err := unix.GetsockoptInt(int(fd), unix.IPPROTO_UDP, unix.UDP_SEGMENT)
		ok = err == nil
	})
	return err == nil && ok
}

// trainLen returns how many datagrams from the start of bufs form the first GSO train: all of
// bufs[0]'s size, then at most one shorter (non-empty) one that ends it, within MaxGSOSegments
// and MaxGSOBytes. A result of 1 means bufs[0] goes alone. Empty datagrams never join a train
// (a segment size of 0 means no segmentation to the kernel).
func trainLen(bufs [][]byte) int {
	if len(bufs) == 0 {
		return 0
	}
	seg := len(bufs[0])
	if seg == 0 {
		return 1
	}
	total := seg
	n := 1
	for n < len(bufs) && n < MaxGSOSegments {
		l := len(bufs[n])
		if l == 0 || l > seg || total+l > MaxGSOBytes {
			break
		}
		total += l
		n++
		if l < seg {
			break
		}
	}
	return n
}

// fillTrains sets up st.msgs for the datagrams in bufs (at most MaxBatch of them) as GSO
// trains, one message per train, all to st.names[0]. iovec i always describes datagram i, so a
// train's message points into st.iovs at its first datagram.
func (st *batchState) fillTrains(bufs [][]byte, namelen uint32) {
	k := min(len(bufs), MaxBatch)
	for i := 0; i < k; i++ {
		st.iovs[i].Base = unsafe.SliceData(bufs[i])
		st.iovs[i].SetLen(len(bufs[i]))
	}
	n := 0
	for i := 0; i < k; {
		t := trainLen(bufs[i:k])
		h := &st.msgs[n].Hdr
		h.Name = (*byte)(unsafe.Pointer(&st.names[0]))
		h.Namelen = namelen
		h.Iov = &st.iovs[i]
		h.SetIovlen(t)
		h.Flags = 0
		if t > 1 {
			putSegmentCmsg(&st.ctrl[n], len(bufs[i]))
			h.Control = (*byte)(unsafe.Pointer(&st.ctrl[n]))
			h.SetControllen(segCmsgLen)
		} else {
			h.Control = nil
			h.SetControllen(0)
		}
		st.msgs[n].Len = 0
		n++
		i += t
	}
	st.n = n
}

// putSegmentCmsg writes a UDP_SEGMENT control message with segment size seg into b.
func putSegmentCmsg(b *cmsgBuf, seg int) {
	h := (*unix.Cmsghdr)(unsafe.Pointer(b))
	h.Level = unix.SOL_UDP
	h.Type = unix.UDP_SEGMENT
	h.SetLen(unix.CmsgLen(2))
	binary.NativeEndian.PutUint16(b.bytes()[unix.CmsgLen(0):], uint16(seg))
}

// sentDatagrams is the number of datagrams carried by the first st.done messages.
func (st *batchState) sentDatagrams() int {
	k := 0
	for i := 0; i < st.done; i++ {
		k += int(st.msgs[i].Hdr.Iovlen)
	}
	return k
}

// retryWithoutGSO decides, after sendmmsg failed with errno on the first message, whether to
// send again without GSO. EIO means the device cannot checksum for us, which UDP_SEGMENT
// requires: GSO stays off for the socket, as in wireguard-go. EINVAL or EMSGSIZE on a train
// means the kernel refused its segment size (larger than the path MTU allows, for example):
// the rest of this call goes without GSO.
func (c *Conn) retryWithoutGSO(st *batchState, errno syscall.Errno) bool {
	if st.n == 0 || st.msgs[0].Hdr.Iovlen < 2 {
		return false // the failed message was a plain datagram
	}
	switch errno {
	case unix.EIO:
		c.gso.Store(false)
		return true
	case unix.EINVAL, unix.EMSGSIZE:
		return true
	}
	return false
}
