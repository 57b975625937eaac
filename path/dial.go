package path

import (
	"context"
	"net"
	"net/netip"
)

// DialTCP opens a TCP connection to dst that leaves through an uplink: bound to device (if
// set) and to the source address src (if valid).
func DialTCP(ctx context.Context, device string, src netip.Addr, dst netip.AddrPort) (net.Conn, error) {
	return dialTCP(ctx, device, src, dst, 0)
}

// dialTCP is DialTCP with the socket marked with mark, if it is not 0.
func dialTCP(ctx context.Context, device string, src netip.Addr, dst netip.AddrPort, mark uint32) (net.Conn, error) {
	d := net.Dialer{Control: controlFunc(device, mark)}
	if src.IsValid() {
		d.LocalAddr = net.TCPAddrFromAddrPort(netip.AddrPortFrom(src, 0))
	}
	return d.DialContext(ctx, "tcp", dst.String())
}
