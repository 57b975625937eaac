package main

import (
	"os"
	"syscall"
	"unsafe"

	"golang.org/x/sys/unix"
)

// rawIO reads and writes one non-blocking, poller-registered file with raw
// system calls. os.File.Read and Write go through syscall.Syscall, whose
// entersyscall wakes the runtime's sysmon thread with a futex whenever the
// process was idle, which is nearly every packet at emulated rates: in a
// profile at 100 Mbit/s those wakeups took a third of the emulator's CPU.
// A raw read or write on a non-blocking fd cannot block, so skipping
// entersyscall is safe; the poller still parks the goroutine on EAGAIN.
// A TUN write runs the receiving network stack inline, tens of µs at most,
// which is short enough to hold the P.
//
// A rawIO belongs to one goroutine: it keeps the closures and their
// results in fields so that each call allocates nothing.
type rawIO struct {
	rc      syscall.RawConn
	buf     []byte
	n       int
	errno   syscall.Errno
	readFn  func(fd uintptr) bool
	writeFn func(fd uintptr) bool
}

func newRawIO(f *os.File) (*rawIO, error) {
	rc, err := f.SyscallConn()
	if err != nil {
		return nil, err
	}
	r := &rawIO{rc: rc}
	r.readFn = func(fd uintptr) bool { return r.do(unix.SYS_READ, fd) }
	r.writeFn = func(fd uintptr) bool { return r.do(unix.SYS_WRITE, fd) }
	return r, nil
}

// do runs one read or write of r.buf and reports whether it is done (false
// = EAGAIN: let the poller wait for readiness).
func (r *rawIO) do(trap, fd uintptr) bool {
	var p unsafe.Pointer
	if len(r.buf) > 0 {
		p = unsafe.Pointer(&r.buf[0])
	}
	n, _, e := unix.RawSyscall(trap, fd, uintptr(p), uintptr(len(r.buf)))
	if e == unix.EAGAIN {
		return false
	}
	r.n, r.errno = int(n), e
	return true
}

func (r *rawIO) result(err error) (int, error) {
	switch {
	case err != nil: // closed
		return 0, err
	case r.errno == unix.EINTR:
		return 0, nil
	case r.errno != 0:
		return 0, r.errno
	}
	return r.n, nil
}

// Read reads one packet (or timerfd count) into b.
func (r *rawIO) Read(b []byte) (int, error) {
	r.buf = b
	return r.result(r.rc.Read(r.readFn))
}

// Write writes one packet from b.
func (r *rawIO) Write(b []byte) (int, error) {
	r.buf = b
	return r.result(r.rc.Write(r.writeFn))
}
