package bond

import (
	"context"
	"fmt"
	"net"
	"net/netip"
	"sync"
	"sync/atomic"

	"github.com/bondtun/bondtun/session"
)

// Listener accepts message connections from the peers of its ListenConfig.
type Listener struct {
	sv     *session.Server
	common common
	cancel context.CancelFunc
	done   chan struct{}

	mu      sync.Mutex
	conns   map[string]*Conn // by peer name: the open connection of each peer
	pending []*Conn          // established, not yet accepted
	notify  chan struct{}
	closed  bool
}

// Listen listens on addr ("host:port", or ":port" for every address; port 0 picks one)
// for TCP control connections and UDP datagrams on the same port.
func Listen(addr string, cfg *ListenConfig) (*Listener, error) {
	if err := cfg.validate(); err != nil {
		return nil, err
	}
	cm, err := newCommon(cfg.MaxMessageSize, cfg.ReceiveQueue, cfg.Scheduler, cfg.Logger)
	if err != nil {
		return nil, err
	}
	host, port, err := net.SplitHostPort(addr)
	if err != nil {
		return nil, fmt.Errorf("bond: listen address %q: %w", addr, err)
	}
	ap, err := netip.ParseAddrPort(net.JoinHostPort(orZero(host), port))
	if err != nil {
		return nil, fmt.Errorf("bond: listen address %q: %w", addr, err)
	}
	addrs := cfg.Addresses
	if len(addrs) == 0 && !ap.Addr().IsUnspecified() {
		addrs = []netip.Addr{ap.Addr()}
	}
	var peers []session.PeerConfig
	for _, p := range cfg.Peers {
		peers = append(peers, session.PeerConfig{Name: p.Name, Key: p.Key})
	}
	l := &Listener{common: cm, conns: map[string]*Conn{}, notify: make(chan struct{}, 1), done: make(chan struct{})}
	l.sv, err = session.NewMessageServer(session.ServerConfig{
		Identity:  cfg.PrivateKey,
		Port:      int(ap.Port()),
		Addresses: addrs,
		Peers:     peers,
		Scheduler: cm.scheduler,
		Logger:    cm.log,
	}, (*listenerHandler)(l))
	if err != nil {
		return nil, fmt.Errorf("bond: %w", err)
	}
	ctx, cancel := context.WithCancel(context.Background())
	l.cancel = cancel
	go func() {
		defer close(l.done)
		l.sv.Run(ctx)
	}()
	return l, nil
}

func orZero(host string) string {
	if host == "" {
		return "0.0.0.0"
	}
	return host
}

// Port is the port the listener took (useful after Listen with port 0).
func (l *Listener) Port() int { return l.sv.Port() }

// Accept waits for the next peer to connect, and returns its connection. A peer that
// reconnects (its control channel broke, or it opened a new session) while its
// connection is open goes on on the same Conn.
func (l *Listener) Accept(ctx context.Context) (*Conn, error) {
	for {
		l.mu.Lock()
		if l.closed {
			l.mu.Unlock()
			return nil, net.ErrClosed
		}
		if len(l.pending) > 0 {
			c := l.pending[0]
			l.pending = l.pending[1:]
			l.mu.Unlock()
			return c, nil
		}
		l.mu.Unlock()
		select {
		case <-l.notify:
		case <-l.done:
		case <-ctx.Done():
			return nil, ctx.Err()
		}
	}
}

// Close stops listening and ends every connection (BYE to each peer).
func (l *Listener) Close() error {
	l.mu.Lock()
	if l.closed {
		l.mu.Unlock()
		return nil
	}
	l.closed = true
	pending := l.pending
	l.pending = nil
	l.mu.Unlock()
	l.cancel()
	<-l.done
	for _, c := range pending {
		c.Close()
	}
	return nil
}

// listenerHandler is the Listener as the session layer sees it (session.SessionHandler).
type listenerHandler Listener

func (h *listenerHandler) SessionStarted(peer string, s *session.Session) session.Deliverer {
	l := (*Listener)(h)
	l.mu.Lock()
	defer l.mu.Unlock()
	if c := l.conns[peer]; c != nil && !c.peerGone.Load() {
		return c.in // the Conn moves to s once it is installed (SessionInstalled)
	}
	c := newConn(peer, l.common)
	ss := &sessionSender{}
	ss.s.Store(s)
	c.out = ss
	c.closeFn = func() {
		l.mu.Lock()
		if l.conns[peer] == c {
			delete(l.conns, peer)
		}
		l.mu.Unlock()
		if s := ss.s.Load(); s != nil {
			l.sv.EndSession(s)
		}
	}
	l.conns[peer] = c // Accept gets it once s is installed
	return c.in
}

func (h *listenerHandler) SessionInstalled(peer string, s *session.Session) bool {
	l := (*Listener)(h)
	l.mu.Lock()
	defer l.mu.Unlock()
	c := l.conns[peer]
	if l.closed || c == nil || c.peerGone.Load() {
		return false // closed while s's handshake ran
	}
	select {
	case <-c.closing:
		return false
	default:
	}
	c.out.(*sessionSender).s.Store(s)
	if !c.listed {
		c.listed = true
		l.pending = append(l.pending, c)
		select {
		case l.notify <- struct{}{}:
		default:
		}
	}
	return true
}

func (h *listenerHandler) SessionEnded(peer string, s *session.Session) {
	l := (*Listener)(h)
	l.mu.Lock()
	c := l.conns[peer]
	if c == nil || c.out.session() != s {
		l.mu.Unlock()
		return
	}
	delete(l.conns, peer)
	l.mu.Unlock()
	c.peerEnded()
}

// sessionSender sends on one session of the listener (replaced when the peer reconnects).
type sessionSender struct {
	s atomic.Pointer[session.Session]
}

func (ss *sessionSender) send(bufs [][]byte, sizes []int, n int) {
	if s := ss.s.Load(); s != nil {
		s.SendBatch(bufs, sizes, n)
	}
}
func (ss *sessionSender) session() *session.Session { return ss.s.Load() }
