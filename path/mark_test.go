package path

import (
	"context"
	"errors"
	"net"
	"net/netip"
	"syscall"
	"testing"

	"golang.org/x/sys/unix"
)

// sockMark reads SO_MARK of a socket.
func sockMark(t *testing.T, sc syscall.Conn) int {
	t.Helper()
	rc, err := sc.SyscallConn()
	if err != nil {
		t.Fatal(err)
	}
	var mark int
	var gerr error
	if err := rc.Control(func(fd uintptr) { mark, gerr = unix.GetsockoptInt(int(fd), unix.SOL_SOCKET, unix.SO_MARK) }); err != nil {
		t.Fatal(err)
	}
	if gerr != nil {
		t.Fatal(gerr)
	}
	return mark
}

// TestMarkedHost: every socket of MarkedHost carries the mark — the path socket, the
// control connection dialled, the listener and the connection it accepts — and Host's
// carry none.
func TestMarkedHost(t *testing.T) {
	const mark = 0x1cb5
	nw := MarkedHost(mark)
	tr, err := nw.ListenPacket(ListenOptions{Addr: netip.MustParseAddrPort("127.0.0.1:0")})
	if errors.Is(err, unix.EPERM) {
		t.Skip("SO_MARK needs CAP_NET_ADMIN")
	}
	if err != nil {
		t.Fatal(err)
	}
	defer tr.Close()
	if got := sockMark(t, tr.(*Conn).uc); got != mark {
		t.Fatalf("path socket mark %#x, want %#x", got, mark)
	}
	ln, err := nw.ListenTCP(netip.MustParseAddrPort("127.0.0.1:0"))
	if err != nil {
		t.Fatal(err)
	}
	defer ln.Close()
	if got := sockMark(t, ln.(*net.TCPListener)); got != mark {
		t.Fatalf("listener mark %#x, want %#x", got, mark)
	}
	dst := ln.Addr().(*net.TCPAddr).AddrPort()
	c, err := nw.DialTCP(context.Background(), "", netip.MustParseAddr("127.0.0.1"), dst)
	if err != nil {
		t.Fatal(err)
	}
	defer c.Close()
	if got := sockMark(t, c.(*net.TCPConn)); got != mark {
		t.Fatalf("dialled control connection mark %#x, want %#x", got, mark)
	}
	a, err := ln.Accept()
	if err != nil {
		t.Fatal(err)
	}
	defer a.Close()
	if got := sockMark(t, a.(*net.TCPConn)); got != mark {
		t.Fatalf("accepted control connection mark %#x, want %#x", got, mark)
	}

	plain, err := Host.ListenPacket(ListenOptions{Addr: netip.MustParseAddrPort("127.0.0.1:0")})
	if err != nil {
		t.Fatal(err)
	}
	defer plain.Close()
	if got := sockMark(t, plain.(*Conn).uc); got != 0 {
		t.Fatalf("Host's path socket has mark %#x, want none", got)
	}
	pc, err := Host.DialTCP(context.Background(), "", netip.Addr{}, dst)
	if err != nil {
		t.Fatal(err)
	}
	defer pc.Close()
	if got := sockMark(t, pc.(*net.TCPConn)); got != 0 {
		t.Fatalf("Host's control connection has mark %#x, want none", got)
	}
}
