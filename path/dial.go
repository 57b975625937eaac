package path

import (
	"context"
	"fmt"
	"net"
	"net/netip"
	"syscall"

	"golang.org/x/sys/unix"
)

// DialTCP opens a TCP connection to dst that leaves through an uplink: bound to device (if
// set) and to the source address src (if valid).
func DialTCP(ctx context.Context, device string, src netip.Addr, dst netip.AddrPort) (net.Conn, error) {
	d := net.Dialer{}
	if src.IsValid() {
		d.LocalAddr = net.TCPAddrFromAddrPort(netip.AddrPortFrom(src, 0))
	}
	if device != "" {
		d.Control = func(_, _ string, c syscall.RawConn) error {
			var serr error
			if err := c.Control(func(fd uintptr) { serr = unix.BindToDevice(int(fd), device) }); err != nil {
				return err
			}
			if serr != nil {
				return fmt.Errorf("bind to device %s: %w", device, serr)
			}
			return nil
		}
	}
	return d.DialContext(ctx, "tcp", dst.String())
}
