package path

import (
	"context"
	"net"
	"net/netip"
)

// Transport is what the session layer sends and receives a path's datagrams through: a UDP
// socket of the host (Conn), an in-memory network in tests (internal/memnet), TCP stripes
// next. ReadBatch is called from one goroutine at a time; WriteBatch from several.
type Transport interface {
	// ReadBatch reads up to len(bufs) datagrams (at most MaxBatch): datagram i lands in
	// bufs[i], its length in sizes[i] (-1: truncated, dropped by the caller) and its source
	// in from[i]. It blocks until at least one datagram is there, and fails with an error
	// for which IsClosed holds once the transport is closed.
	ReadBatch(bufs [][]byte, sizes []int, from []netip.AddrPort) (int, error)
	// WriteBatch sends every datagram of bufs to dst and returns how many went. It keeps
	// none of bufs once it returns: the caller reuses them (pooled scratch, packet buffers).
	WriteBatch(bufs [][]byte, dst netip.AddrPort) (int, error)
	// LocalAddr is the address datagrams are sent from.
	LocalAddr() netip.AddrPort
	// Close closes the transport; a blocked ReadBatch returns.
	Close() error
}

// GROReader is implemented by a Transport whose reads can take coalesced trains of
// datagrams (UDP GRO, Conn): a receiver that finds it calls EnableGRO once and, if that
// succeeds, reads with ReadBatchGRO only.
type GROReader interface {
	EnableGRO() bool
	ReadBatchGRO(bufs [][]byte, msgs []Msg) (int, error)
}

// Network is where a node's transports and control connections come from: the host's
// sockets (Host) or an in-memory network (internal/memnet, for tests on a fake clock).
type Network interface {
	// ListenPacket opens a datagram transport as opts says.
	ListenPacket(opts ListenOptions) (Transport, error)
	// DialTCP opens a control connection to dst through an uplink: bound to device (if
	// set) and to the source address src (if valid).
	DialTCP(ctx context.Context, device string, src netip.Addr, dst netip.AddrPort) (net.Conn, error)
	// ListenTCP listens for control connections on addr (an invalid address: the
	// wildcard, port addr.Port()). Accepted connections' addresses are *net.TCPAddr.
	ListenTCP(addr netip.AddrPort) (net.Listener, error)
}

// Host is the host's network: UDP sockets with batched I/O (Listen) and TCP.
var Host Network = hostNetwork{}

// hostNetwork is the host's network; mark, if not 0, marks every socket (MarkedHost).
type hostNetwork struct{ mark uint32 }

func (h hostNetwork) ListenPacket(opts ListenOptions) (Transport, error) {
	if h.mark != 0 {
		opts.Mark = h.mark
	}
	c, err := Listen(opts)
	if err != nil {
		return nil, err // not a typed nil in the interface
	}
	return c, nil
}

func (h hostNetwork) DialTCP(ctx context.Context, device string, src netip.Addr, dst netip.AddrPort) (net.Conn, error) {
	return dialTCP(ctx, device, src, dst, h.mark)
}

func (h hostNetwork) ListenTCP(addr netip.AddrPort) (net.Listener, error) {
	return listenTCP(addr, h.mark)
}

var (
	_ Transport = (*Conn)(nil)
	_ GROReader = (*Conn)(nil)
)
