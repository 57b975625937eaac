// Package memnet is an in-memory network for tests of the session layer on a fake clock
// (testing/synctest): it implements path.Network with datagram transports whose links
// delay, rate-limit, drop, duplicate and reorder as told, and control connections over
// net.Pipe. Every wait in it is a channel or a timer, so a synctest bubble's clock jumps
// over the delays: a ten-second scenario runs in a fraction of a second, the same way every
// time it is given the same seed. NewManual puts it on a clock the caller advances instead,
// without synctest (manual.go).
package memnet

import (
	"container/heap"
	"context"
	"fmt"
	"math/rand/v2"
	"net"
	"net/netip"
	"sync"
	"syscall"
	"time"

	"github.com/bondtun/bondtun/path"
)

// LinkConfig shapes the datagrams from one address to another.
type LinkConfig struct {
	Delay time.Duration // one-way delay
	// Jitter adds a random extra delay in [0, Jitter) to each datagram; with Reorder the
	// datagrams may then overtake each other, else each waits for the one before it.
	Jitter  time.Duration
	Reorder bool
	// RateBps, if set, serializes the datagrams at this many bits per second, with a
	// queue of at most Queue of waiting (a datagram that would wait longer is dropped;
	// zero: 100 ms).
	RateBps   float64
	Queue     time.Duration
	Loss      float64 // probability that a datagram is dropped
	Duplicate float64 // probability that a datagram is delivered twice
	Down      bool    // every datagram is dropped (a cut cable)
}

// Network is an in-memory network. The zero value is not usable; call New.
type Network struct {
	mu      sync.Mutex
	rng     *rand.Rand
	udp     map[netip.AddrPort]*Transport
	tcp     map[netip.AddrPort]*listener
	links   map[[2]netip.Addr]*link
	pipes   []*pipeConn
	next    uint16 // next ephemeral port
	closed  bool
	stopped chan struct{}
	now     func() time.Time // the clock: time.Now, or the caller's (NewManual)
	manual  bool             // NewManual: no timers; Settle delivers (manual.go)
	order   []*link          // the links in creation order (Settle's)
	settled *sync.Cond       // on mu: a transport took what was queued for it (manual)
}

// New returns an empty network whose random choices follow seed.
func New(seed uint64) *Network {
	return &Network{
		rng:     rand.New(rand.NewPCG(seed, seed^0x9e3779b97f4a7c15)),
		udp:     map[netip.AddrPort]*Transport{},
		tcp:     map[netip.AddrPort]*listener{},
		links:   map[[2]netip.Addr]*link{},
		next:    40000,
		stopped: make(chan struct{}),
		now:     time.Now,
	}
}

// SetLink shapes the datagrams from src to dst (one direction) from now on.
func (n *Network) SetLink(src, dst netip.Addr, cfg LinkConfig) {
	n.mu.Lock()
	defer n.mu.Unlock()
	n.linkLocked(src, dst).cfg = cfg
}

// Link returns the shaping from src to dst.
func (n *Network) Link(src, dst netip.Addr) LinkConfig {
	n.mu.Lock()
	defer n.mu.Unlock()
	return n.linkLocked(src, dst).cfg
}

// Close stops every link's delivery and closes every transport and connection, so that
// no goroutine of the network is left (synctest waits for them all).
func (n *Network) Close() {
	n.mu.Lock()
	if n.closed {
		n.mu.Unlock()
		return
	}
	n.closed = true
	close(n.stopped)
	var ts []*Transport
	for _, t := range n.udp {
		ts = append(ts, t)
	}
	var ls []*listener
	for _, l := range n.tcp {
		ls = append(ls, l)
	}
	pipes := n.pipes
	n.mu.Unlock()
	for _, t := range ts {
		t.Close()
	}
	for _, l := range ls {
		l.Close()
	}
	for _, p := range pipes {
		p.Close()
	}
}

// BreakTCP closes every control connection from src (its TCP connections break, as when
// a middlebox drops their state).
func (n *Network) BreakTCP(src netip.Addr) {
	n.mu.Lock()
	var hit []*pipeConn
	for _, p := range n.pipes {
		if p.local.Addr() == src || p.remote.Addr() == src {
			hit = append(hit, p)
		}
	}
	n.mu.Unlock()
	for _, p := range hit {
		p.Close()
	}
}

func (n *Network) port() uint16 {
	n.next++
	return n.next
}

// ListenPacket opens a datagram transport at opts.Addr (port 0: an ephemeral one).
// Devices are ignored: addresses name the hosts' interfaces.
func (n *Network) ListenPacket(opts path.ListenOptions) (path.Transport, error) {
	n.mu.Lock()
	defer n.mu.Unlock()
	if n.closed {
		return nil, net.ErrClosed
	}
	ap := opts.Addr
	if !ap.Addr().IsValid() {
		return nil, fmt.Errorf("memnet: ListenPacket needs an address, got %v", ap)
	}
	if ap.Port() == 0 {
		ap = netip.AddrPortFrom(ap.Addr(), n.port())
	}
	if n.udp[ap] != nil {
		return nil, fmt.Errorf("memnet: listen udp %v: %w", ap, syscall.EADDRINUSE)
	}
	t := &Transport{n: n, local: ap, in: make(chan datagram, 8192), done: make(chan struct{})}
	n.udp[ap] = t
	return t, nil
}

type datagram struct {
	b    []byte
	from netip.AddrPort
}

// Transport is one datagram endpoint of a Network.
type Transport struct {
	n     *Network
	local netip.AddrPort
	in    chan datagram
	done  chan struct{}
	once  sync.Once
	// Manual networks (manual.go): datagrams put in `in` and not yet handed back by the
	// reader (guarded by n.mu), and how many the reader's last ReadBatch took (its own).
	queued, taken int
}

// LocalAddr is the transport's address.
func (t *Transport) LocalAddr() netip.AddrPort { return t.local }

// Close closes the transport.
func (t *Transport) Close() error {
	t.once.Do(func() {
		close(t.done)
		t.n.mu.Lock()
		if t.n.udp[t.local] == t {
			delete(t.n.udp, t.local)
		}
		t.n.mu.Unlock()
	})
	return nil
}

// ReadBatch waits for a datagram, then takes what else is there, up to len(bufs).
func (t *Transport) ReadBatch(bufs [][]byte, sizes []int, from []netip.AddrPort) (int, error) {
	if t.n.manual {
		t.handBack()
	}
	var d datagram
	select {
	case d = <-t.in:
	case <-t.done:
		return 0, net.ErrClosed
	}
	k := 0
	for {
		sizes[k] = copy(bufs[k], d.b)
		if len(d.b) > len(bufs[k]) {
			sizes[k] = -1
		}
		from[k] = d.from
		k++
		t.taken = k // only this reader uses it (handBack, manual networks)
		if k == len(bufs) || k == path.MaxBatch {
			return k, nil
		}
		select {
		case d = <-t.in:
		default:
			return k, nil
		}
	}
}

// WriteBatch sends each datagram of bufs to dst over the link between their addresses.
func (t *Transport) WriteBatch(bufs [][]byte, dst netip.AddrPort) (int, error) {
	select {
	case <-t.done:
		return 0, net.ErrClosed
	default:
	}
	n := t.n
	n.mu.Lock()
	defer n.mu.Unlock()
	if n.closed {
		return 0, net.ErrClosed
	}
	l := n.linkLocked(t.local.Addr(), dst.Addr())
	now := n.now()
	for _, b := range bufs {
		l.sendLocked(now, n.rng, datagram{b: append([]byte(nil), b...), from: t.local}, dst)
	}
	return len(bufs), nil
}

// deliver hands d to the transport at dst, if there is one with room (else it is lost, as
// UDP would lose it).
func (n *Network) deliver(d datagram, dst netip.AddrPort) {
	n.mu.Lock()
	defer n.mu.Unlock()
	n.deliverLocked(d, dst)
}

// deliverLocked is deliver with n.mu held.
func (n *Network) deliverLocked(d datagram, dst netip.AddrPort) {
	t := n.udp[dst]
	if t == nil { // a socket bound to the wildcard address
		t = n.udp[netip.AddrPortFrom(netip.IPv4Unspecified(), dst.Port())]
	}
	if t == nil {
		return
	}
	select {
	case t.in <- d:
		t.queued++
	default:
	}
}

// link is one direction between two addresses: a heap of datagrams by delivery time and
// the goroutine that delivers them.
type link struct {
	n       *Network
	cfg     LinkConfig
	q       flightHeap
	seq     uint64
	free    time.Time // when the serializer is free (RateBps)
	last    time.Time // the latest delivery time given (order kept without Reorder)
	wake    chan struct{}
	running bool
}

func (n *Network) linkLocked(src, dst netip.Addr) *link {
	k := [2]netip.Addr{src, dst}
	l := n.links[k]
	if l == nil {
		l = &link{n: n, wake: make(chan struct{}, 1)}
		n.links[k] = l
		n.order = append(n.order, l)
	}
	return l
}

type flight struct {
	at  time.Time
	seq uint64
	d   datagram
	dst netip.AddrPort
}

type flightHeap []flight

func (h flightHeap) Len() int { return len(h) }
func (h flightHeap) Less(i, j int) bool {
	if !h[i].at.Equal(h[j].at) {
		return h[i].at.Before(h[j].at)
	}
	return h[i].seq < h[j].seq
}
func (h flightHeap) Swap(i, j int) { h[i], h[j] = h[j], h[i] }
func (h *flightHeap) Push(x any)   { *h = append(*h, x.(flight)) }
func (h *flightHeap) Pop() any {
	old := *h
	f := old[len(old)-1]
	*h = old[:len(old)-1]
	return f
}

// sendLocked shapes one datagram. n.mu must be held.
func (l *link) sendLocked(now time.Time, rng *rand.Rand, d datagram, dst netip.AddrPort) {
	c := l.cfg
	if c.Down || (c.Loss > 0 && rng.Float64() < c.Loss) {
		return
	}
	at := now
	if c.RateBps > 0 {
		queue := c.Queue
		if queue == 0 {
			queue = 100 * time.Millisecond
		}
		start := l.free
		if start.Before(now) {
			start = now
		}
		if start.Sub(now) > queue {
			return // tail drop: the link's buffer is full
		}
		l.free = start.Add(time.Duration(float64(len(d.b)*8) / c.RateBps * float64(time.Second)))
		at = l.free
	}
	at = at.Add(c.Delay)
	if c.Jitter > 0 {
		at = at.Add(time.Duration(rng.Int64N(int64(c.Jitter))))
	}
	if !c.Reorder && at.Before(l.last) {
		at = l.last
	}
	l.last = at
	copies := 1
	if c.Duplicate > 0 && rng.Float64() < c.Duplicate {
		copies = 2
	}
	for range copies {
		l.seq++
		heap.Push(&l.q, flight{at: at, seq: l.seq, d: d, dst: dst})
	}
	if !l.running && !l.n.manual {
		l.running = true
		go l.run()
	}
	select {
	case l.wake <- struct{}{}:
	default:
	}
}

// run delivers the link's datagrams at their times, until the network closes.
func (l *link) run() {
	n := l.n
	timer := time.NewTimer(time.Hour)
	defer timer.Stop()
	for {
		n.mu.Lock()
		var due []flight
		now := n.now()
		for len(l.q) > 0 && !l.q[0].at.After(now) {
			due = append(due, heap.Pop(&l.q).(flight))
		}
		wait := time.Hour
		if len(l.q) > 0 {
			wait = l.q[0].at.Sub(now)
		}
		n.mu.Unlock()
		for _, f := range due {
			n.deliver(f.d, f.dst)
		}
		if len(due) > 0 {
			continue
		}
		timer.Reset(wait)
		select {
		case <-timer.C:
		case <-l.wake:
		case <-n.stopped:
			return
		}
	}
}

// ListenTCP listens for control connections at addr (port 0: an ephemeral one).
func (n *Network) ListenTCP(addr netip.AddrPort) (net.Listener, error) {
	n.mu.Lock()
	defer n.mu.Unlock()
	if n.closed {
		return nil, net.ErrClosed
	}
	if addr.Port() == 0 {
		addr = netip.AddrPortFrom(addr.Addr(), n.port())
	}
	if n.tcp[addr] != nil {
		return nil, fmt.Errorf("memnet: listen tcp %v: %w", addr, syscall.EADDRINUSE)
	}
	l := &listener{n: n, addr: addr, conns: make(chan net.Conn, 64), done: make(chan struct{})}
	n.tcp[addr] = l
	return l, nil
}

// DialTCP connects to the listener at dst (or to one on dst's port at the wildcard
// address) from src. Without one it fails with ECONNREFUSED, at once.
func (n *Network) DialTCP(ctx context.Context, _ string, src netip.Addr, dst netip.AddrPort) (net.Conn, error) {
	n.mu.Lock()
	if n.closed {
		n.mu.Unlock()
		return nil, net.ErrClosed
	}
	l := n.tcp[dst]
	if l == nil {
		l = n.tcp[netip.AddrPortFrom(netip.Addr{}, dst.Port())]
	}
	if l == nil || !src.IsValid() {
		n.mu.Unlock()
		return nil, &net.OpError{Op: "dial", Net: "tcp", Err: syscall.ECONNREFUSED}
	}
	local := netip.AddrPortFrom(src, n.port())
	a, b := net.Pipe()
	ca := &pipeConn{Conn: a, local: local, remote: dst}
	cb := &pipeConn{Conn: b, local: dst, remote: local}
	n.pipes = append(n.pipes, ca, cb)
	n.mu.Unlock()
	select {
	case l.conns <- cb:
		return ca, nil
	case <-l.done:
	case <-ctx.Done():
	}
	ca.Close()
	cb.Close()
	return nil, &net.OpError{Op: "dial", Net: "tcp", Err: syscall.ECONNREFUSED}
}

type listener struct {
	n     *Network
	addr  netip.AddrPort
	conns chan net.Conn
	done  chan struct{}
	once  sync.Once
}

func (l *listener) Accept() (net.Conn, error) {
	select {
	case c := <-l.conns:
		return c, nil
	case <-l.done:
		return nil, net.ErrClosed
	}
}

func (l *listener) Close() error {
	l.once.Do(func() {
		close(l.done)
		l.n.mu.Lock()
		if l.n.tcp[l.addr] == l {
			delete(l.n.tcp, l.addr)
		}
		l.n.mu.Unlock()
	})
	return nil
}

func (l *listener) Addr() net.Addr { return net.TCPAddrFromAddrPort(l.addr) }

// pipeConn is one end of a control connection, with TCP addresses.
type pipeConn struct {
	net.Conn
	local, remote netip.AddrPort
}

func (c *pipeConn) LocalAddr() net.Addr  { return net.TCPAddrFromAddrPort(c.local) }
func (c *pipeConn) RemoteAddr() net.Addr { return net.TCPAddrFromAddrPort(c.remote) }

var _ path.Network = (*Network)(nil)
