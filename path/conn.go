package path

import (
	"context"
	"errors"
	"fmt"
	"net"
	"net/netip"
	"sync"
	"sync/atomic"
	"syscall"
)

// DefaultSocketBuffer is the send and receive buffer size requested for every socket. Large
// buffers absorb bursts while a core is busy sealing or opening (wireguard-go uses 7 MiB).
const DefaultSocketBuffer = 4 << 20

// ListenOptions says how a socket is bound.
type ListenOptions struct {
	// Device, if set, binds the socket to that interface (SO_BINDTODEVICE), so its datagrams
	// leave through it whatever the main routing table says.
	Device string
	// Addr is the local address and port; an invalid address means the wildcard of Network.
	Addr netip.AddrPort
	// IPv6 selects udp6 when Addr is the zero value.
	IPv6 bool
	// Mark, if not 0, is set on the socket as its firewall mark (SO_MARK, which needs
	// CAP_NET_ADMIN), so policy routing can keep its datagrams out of the tunnel
	// (docs/DECISIONS.md "The tunnel's routes in a table of its own").
	Mark uint32
}

// Conn is one UDP socket with batched I/O. ReadBatch must be called from one goroutine at a
// time; WriteBatch may be called from several (writes are serialized).
type Conn struct {
	uc    *net.UDPConn
	rc    syscall.RawConn
	local netip.AddrPort
	v6    bool
	gso   atomic.Bool // WriteBatch sends GSO trains
	gro   atomic.Bool // UDP_GRO is on: read with ReadBatchGRO

	rmu sync.Mutex
	rx  batchState

	wmu sync.Mutex
	tx  batchState
}

// Listen opens a UDP socket as opts says.
func Listen(opts ListenOptions) (*Conn, error) {
	network := "udp4"
	if (opts.Addr.IsValid() && opts.Addr.Addr().Is6() && !opts.Addr.Addr().Is4In6()) || (!opts.Addr.IsValid() && opts.IPv6) {
		network = "udp6"
	}
	laddr := ""
	if opts.Addr.IsValid() {
		laddr = opts.Addr.String()
	} else if network == "udp6" {
		laddr = "[::]:0"
	} else {
		laddr = "0.0.0.0:0"
	}
	lc := net.ListenConfig{Control: func(_, _ string, c syscall.RawConn) error {
		var serr error
		err := c.Control(func(fd uintptr) { serr = setSocketOptions(int(fd), opts.Device, opts.Mark) })
		if err != nil {
			return err
		}
		return serr
	}}
	pc, err := lc.ListenPacket(context.Background(), network, laddr)
	if err != nil {
		return nil, fmt.Errorf("listen %s %s: %w", network, laddrLabel(laddr, opts.Device), err)
	}
	uc := pc.(*net.UDPConn)
	rc, err := uc.SyscallConn()
	if err != nil {
		uc.Close()
		return nil, err
	}
	c := &Conn{uc: uc, rc: rc, v6: network == "udp6"}
	c.local = uc.LocalAddr().(*net.UDPAddr).AddrPort()
	c.gso.Store(probeGSO(rc))
	return c, nil
}

func laddrLabel(laddr, dev string) string {
	if dev == "" {
		return laddr
	}
	return laddr + " on " + dev
}

// LocalAddr is the address the socket is bound to.
func (c *Conn) LocalAddr() netip.AddrPort { return c.local }

// Close closes the socket; a blocked ReadBatch returns an error wrapping net.ErrClosed.
func (c *Conn) Close() error { return c.uc.Close() }

// ErrClosed is returned by I/O on a closed Conn.
var ErrClosed = net.ErrClosed

// IsClosed reports whether err means the socket was closed.
func IsClosed(err error) bool { return errors.Is(err, net.ErrClosed) }
