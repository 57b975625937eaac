package main

import (
	"encoding/binary"
	"errors"
	"fmt"
	"os"
	"strings"
	"syscall"
	"unsafe"

	"golang.org/x/sys/unix"
)

// mptcpSysctl is the switch that makes the kernel accept IPPROTO_MPTCP.
const mptcpSysctl = "/proc/sys/net/mptcp/enabled"

// checkMPTCP fails clearly when the kernel would refuse MPTCP sockets. Go's
// SetMultipathTCP silently falls back to plain TCP, which would make an
// MPTCP measurement lie.
func checkMPTCP() error {
	b, err := os.ReadFile(mptcpSysctl)
	if err != nil {
		return fmt.Errorf("mptcp not available (%v)", err)
	}
	if v := strings.TrimSpace(string(b)); v != "1" {
		return fmt.Errorf("mptcp disabled: net.mptcp.enabled=%s", v)
	}
	return nil
}

// setCC sets TCP_CONGESTION on a socket; "" keeps the kernel default.
func setCC(rc syscall.RawConn, name string) error {
	if name == "" {
		return nil
	}
	var serr error
	err := rc.Control(func(fd uintptr) {
		serr = unix.SetsockoptString(int(fd), unix.IPPROTO_TCP, unix.TCP_CONGESTION, name)
	})
	if err == nil {
		err = serr
	}
	if err != nil {
		return fmt.Errorf("set congestion control %q: %w", name, err)
	}
	return nil
}

// From linux/mptcp.h; x/sys/unix does not define them.
const (
	mptcpInfoOpt          = 1 // MPTCP_INFO
	mptcpInfoFlagFallback = 1 // MPTCP_INFO_FLAG_FALLBACK
	mptcpInfoFlagsOff     = 8 // offset of mptcpi_flags in struct mptcp_info
)

// mptcpFallback reports whether an MPTCP socket fell back to plain TCP (the
// peer did not answer MP_CAPABLE). Go's TCPConn.MultipathTCP misses this on
// recent kernels, which answer MPTCP_INFO on a fallen-back socket with the
// fallback flag set instead of failing; older kernels fail with EOPNOTSUPP
// or ENOPROTOOPT, which means fallback too.
func mptcpFallback(rc syscall.RawConn) (bool, error) {
	var (
		buf      [64]byte
		fallback bool
		serr     error
	)
	err := rc.Control(func(fd uintptr) {
		n := uint32(len(buf))
		_, _, e := unix.Syscall6(unix.SYS_GETSOCKOPT, fd, unix.SOL_MPTCP, mptcpInfoOpt,
			uintptr(unsafe.Pointer(&buf[0])), uintptr(unsafe.Pointer(&n)), 0)
		switch {
		case e == unix.EOPNOTSUPP || e == unix.ENOPROTOOPT:
			fallback = true
		case e != 0:
			serr = e
		case n < mptcpInfoFlagsOff+4:
			serr = errors.New("short MPTCP_INFO")
		default:
			fallback = binary.NativeEndian.Uint32(buf[mptcpInfoFlagsOff:])&mptcpInfoFlagFallback != 0
		}
	})
	if err == nil {
		err = serr
	}
	if err != nil {
		return false, fmt.Errorf("read MPTCP_INFO: %w", err)
	}
	return fallback, nil
}
