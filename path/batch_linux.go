package path

import (
	"encoding/binary"
	"fmt"
	"net/netip"
	"os"
	"syscall"
	"unsafe"

	"golang.org/x/sys/unix"
)

// MaxBatch is the largest number of datagrams moved by one ReadBatch or WriteBatch call.
const MaxBatch = 128

// batchState is the reused scratch of one direction of a Conn: the mmsghdr array handed to
// recvmmsg/sendmmsg, its iovecs and socket addresses. The closures are built once so a call
// allocates nothing.
type batchState struct {
	msgs  [MaxBatch]unix.Mmsghdr
	iovs  [MaxBatch]unix.Iovec
	names [MaxBatch]unix.RawSockaddrInet6
	ctrl  [MaxBatch]cmsgBuf // UDP_SEGMENT on send, UDP_GRO on receive (ReadBatchGRO)
	n     int               // messages to move
	done  int               // messages moved
	errno syscall.Errno
	fn    func(fd uintptr) bool
}

func setSocketOptions(fd int, device string, mark uint32) error {
	if err := setMark(fd, mark); err != nil {
		return err
	}
	if device != "" {
		if err := unix.BindToDevice(fd, device); err != nil {
			return fmt.Errorf("bind to device %s: %w", device, err)
		}
	}
	// Prefer the FORCE variants (root may exceed rmem_max); fall back silently.
	if unix.SetsockoptInt(fd, unix.SOL_SOCKET, unix.SO_RCVBUFFORCE, DefaultSocketBuffer) != nil {
		_ = unix.SetsockoptInt(fd, unix.SOL_SOCKET, unix.SO_RCVBUF, DefaultSocketBuffer)
	}
	if unix.SetsockoptInt(fd, unix.SOL_SOCKET, unix.SO_SNDBUFFORCE, DefaultSocketBuffer) != nil {
		_ = unix.SetsockoptInt(fd, unix.SOL_SOCKET, unix.SO_SNDBUF, DefaultSocketBuffer)
	}
	return nil
}

// ReadBatch reads up to len(bufs) datagrams (at most MaxBatch). Datagram i lands in bufs[i],
// its length in sizes[i] and its source in from[i]. A datagram longer than its buffer is
// reported with sizes[i] = -1 (truncated; the caller drops it). It blocks until at least one
// datagram is there. After EnableGRO, use ReadBatchGRO instead: ReadBatch would return
// coalesced datagrams as one.
func (c *Conn) ReadBatch(bufs [][]byte, sizes []int, from []netip.AddrPort) (int, error) {
	c.rmu.Lock()
	defer c.rmu.Unlock()
	st := &c.rx
	if err := c.recvmmsg(bufs[:min(len(bufs), len(sizes), len(from), MaxBatch)], false); err != nil {
		return 0, err
	}
	for i := 0; i < st.done; i++ {
		m := &st.msgs[i]
		if m.Hdr.Flags&unix.MSG_TRUNC != 0 {
			sizes[i] = -1
		} else {
			sizes[i] = int(m.Len)
		}
		from[i] = sockaddrToAddrPort(&st.names[i])
	}
	return st.done, nil
}

// recvmmsg reads into bufs (at most MaxBatch) with one recvmmsg, each message with its
// source address and, if withCtrl, its control buffer; st.done says how many arrived.
// c.rmu must be held.
func (c *Conn) recvmmsg(bufs [][]byte, withCtrl bool) error {
	st := &c.rx
	for i := range bufs {
		st.iovs[i].Base = unsafe.SliceData(bufs[i])
		st.iovs[i].SetLen(len(bufs[i]))
		h := &st.msgs[i].Hdr
		h.Name = (*byte)(unsafe.Pointer(&st.names[i]))
		h.Namelen = unix.SizeofSockaddrInet6
		h.Iov = &st.iovs[i]
		h.SetIovlen(1)
		if withCtrl {
			h.Control = (*byte)(unsafe.Pointer(&st.ctrl[i]))
			h.SetControllen(len(st.ctrl[i].bytes()))
		} else {
			h.Control = nil
			h.SetControllen(0)
		}
		h.Flags = 0
		st.msgs[i].Len = 0
	}
	st.n = len(bufs)
	st.setup(unix.SYS_RECVMMSG)
	st.errno = 0
	if err := c.rc.Read(st.fn); err != nil {
		return err
	}
	if st.errno != 0 {
		return os.NewSyscallError("recvmmsg", st.errno)
	}
	return nil
}

// setup builds st.fn once (a batchState serves one direction): it runs trap (SYS_RECVMMSG or SYS_SENDMMSG) on st.msgs[:st.n]
// without blocking, and reports false on EAGAIN so the runtime poller waits and calls again.
func (st *batchState) setup(trap uintptr) {
	if st.fn != nil {
		return
	}
	st.fn = func(fd uintptr) bool {
		r, _, e := unix.Syscall6(trap, fd, uintptr(unsafe.Pointer(&st.msgs[0])), uintptr(st.n), unix.MSG_DONTWAIT, 0, 0)
		if e == unix.EAGAIN {
			return false
		}
		st.errno = e
		st.done = int(r)
		return true
	}
}

// WriteBatch sends bufs[i] as one datagram each to dst. It returns how many were sent; on an
// error, the datagrams from the returned index on were not sent. While GSO is on (see GSO),
// runs of equal-size datagrams leave as GSO trains; the receiver sees the same datagrams.
func (c *Conn) WriteBatch(bufs [][]byte, dst netip.AddrPort) (int, error) {
	c.wmu.Lock()
	defer c.wmu.Unlock()
	st := &c.tx
	namelen := putSockaddr(&st.names[0], dst, c.v6)
	st.setup(unix.SYS_SENDMMSG)
	gso := c.gso.Load()
	sent := 0
	for sent < len(bufs) {
		if gso {
			st.fillTrains(bufs[sent:], namelen)
		} else {
			st.fillPlain(bufs[sent:], namelen)
		}
		st.errno = 0
		if err := c.rc.Write(st.fn); err != nil {
			return sent, err
		}
		if st.errno != 0 {
			if gso && c.retryWithoutGSO(st, st.errno) {
				gso = false
				continue
			}
			return sent, os.NewSyscallError("sendmmsg", st.errno)
		}
		sent += st.sentDatagrams()
	}
	return sent, nil
}

// fillPlain sets up st.msgs with one datagram of bufs each (at most MaxBatch), all to
// st.names[0].
func (st *batchState) fillPlain(bufs [][]byte, namelen uint32) {
	n := min(len(bufs), MaxBatch)
	for i := 0; i < n; i++ {
		b := bufs[i]
		st.iovs[i].Base = unsafe.SliceData(b)
		st.iovs[i].SetLen(len(b))
		h := &st.msgs[i].Hdr
		h.Name = (*byte)(unsafe.Pointer(&st.names[0]))
		h.Namelen = namelen
		h.Iov = &st.iovs[i]
		h.SetIovlen(1)
		h.Control = nil
		h.SetControllen(0)
		h.Flags = 0
	}
	st.n = n
}

func sockaddrToAddrPort(sa *unix.RawSockaddrInet6) netip.AddrPort {
	switch sa.Family {
	case unix.AF_INET:
		sa4 := (*unix.RawSockaddrInet4)(unsafe.Pointer(sa))
		port := binary.BigEndian.Uint16((*[2]byte)(unsafe.Pointer(&sa4.Port))[:])
		return netip.AddrPortFrom(netip.AddrFrom4(sa4.Addr), port)
	case unix.AF_INET6:
		port := binary.BigEndian.Uint16((*[2]byte)(unsafe.Pointer(&sa.Port))[:])
		return netip.AddrPortFrom(netip.AddrFrom16(sa.Addr).Unmap(), port)
	}
	return netip.AddrPort{}
}

// putSockaddr writes dst into sa in the socket's family and returns the length to pass.
func putSockaddr(sa *unix.RawSockaddrInet6, dst netip.AddrPort, v6 bool) uint32 {
	if !v6 {
		sa4 := (*unix.RawSockaddrInet4)(unsafe.Pointer(sa))
		*sa4 = unix.RawSockaddrInet4{Family: unix.AF_INET, Addr: dst.Addr().Unmap().As4()}
		binary.BigEndian.PutUint16((*[2]byte)(unsafe.Pointer(&sa4.Port))[:], dst.Port())
		return unix.SizeofSockaddrInet4
	}
	*sa = unix.RawSockaddrInet6{Family: unix.AF_INET6, Addr: dst.Addr().As16()}
	binary.BigEndian.PutUint16((*[2]byte)(unsafe.Pointer(&sa.Port))[:], dst.Port())
	return unix.SizeofSockaddrInet6
}
