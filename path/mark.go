package path

import (
	"context"
	"fmt"
	"net"
	"net/netip"
	"strconv"
	"syscall"

	"golang.org/x/sys/unix"
)

// MarkedHost is the host's network (as [Host]) with every socket it opens carrying the
// firewall mark mark (SO_MARK): the path sockets, the control connections dialled and
// the control listener (whose accepted connections, and the SYN-ACKs before them, take
// the listener's mark). `bondtun up` uses it so that the policy rule "not fwmark MARK
// lookup TABLE" keeps the tunnel's own outer traffic out of the tunnel (package tun).
// Setting a mark needs CAP_NET_ADMIN; the library (package bond) uses [Host], unmarked.
// A mark of 0 is [Host].
func MarkedHost(mark uint32) Network { return hostNetwork{mark: mark} }

// setMark sets SO_MARK on fd unless mark is 0.
func setMark(fd int, mark uint32) error {
	if mark == 0 {
		return nil
	}
	if err := unix.SetsockoptInt(fd, unix.SOL_SOCKET, unix.SO_MARK, int(mark)); err != nil {
		return fmt.Errorf("set firewall mark %#x (SO_MARK needs CAP_NET_ADMIN): %w", mark, err)
	}
	return nil
}

// MarkControl is a net.Dialer or net.ListenConfig Control that sets the firewall mark
// mark (SO_MARK) on the socket; nil for 0. For the sockets of `up` outside this package
// (the resolver's), which must stay out of the tunnel as the path sockets do.
func MarkControl(mark uint32) func(_, _ string, c syscall.RawConn) error {
	return controlFunc("", mark)
}

// controlFunc is a net.Dialer or net.ListenConfig Control that binds the socket to device
// (if set) and marks it (if mark is not 0).
func controlFunc(device string, mark uint32) func(_, _ string, c syscall.RawConn) error {
	if device == "" && mark == 0 {
		return nil
	}
	return func(_, _ string, c syscall.RawConn) error {
		var serr error
		err := c.Control(func(fd uintptr) {
			if serr = setMark(int(fd), mark); serr != nil {
				return
			}
			if device != "" {
				if err := unix.BindToDevice(int(fd), device); err != nil {
					serr = fmt.Errorf("bind to device %s: %w", device, err)
				}
			}
		})
		if err != nil {
			return err
		}
		return serr
	}
}

// listenTCP listens for control connections on addr (an invalid address: the wildcard,
// port addr.Port()), marked with mark if it is not 0.
func listenTCP(addr netip.AddrPort, mark uint32) (net.Listener, error) {
	host := addr.String()
	if !addr.Addr().IsValid() {
		host = net.JoinHostPort("", strconv.Itoa(int(addr.Port())))
	}
	lc := net.ListenConfig{Control: controlFunc("", mark)}
	return lc.Listen(context.Background(), "tcp", host)
}
