package session

import (
	"context"
	"crypto/rand"
	"crypto/tls"
	"encoding/binary"
	"errors"
	"fmt"
	"log/slog"
	"net"
	"net/netip"
	"sync"
	"sync/atomic"
	"time"

	wgtun "golang.zx2c4.com/wireguard/tun"

	"github.com/bondtun/bondtun/classify"
	"github.com/bondtun/bondtun/crypto"
	"github.com/bondtun/bondtun/framing"
	"github.com/bondtun/bondtun/internal/timerq"
	"github.com/bondtun/bondtun/path"
)

// PeerConfig is one client a server accepts.
type PeerConfig struct {
	Name       string
	Key        crypto.PublicKey
	AllowedIPs []netip.Prefix // inner addresses routed to this peer and accepted from it
}

// ServerConfig is what a server needs to run.
type ServerConfig struct {
	Identity  crypto.PrivateKey
	Port      int
	Addresses []netip.Addr // addresses to listen on and advertise; empty means the wildcard
	Peers     []PeerConfig
	Scheduler string
	Logger    *slog.Logger
	// Network is where the sockets come from; nil: the host's (path.Host).
	Network path.Network
	// Timers is the timer queue of the server's sessions; nil: the process's.
	Timers *timerq.Queue
	// Clock is the server's clock, as ClientConfig.Clock is the client's.
	Clock func() time.Time

	limits crypto.Limits // tests: small key usage limits (zero: the cipher's)
	rekey  rekeyConfig   // tests: key update interval and overlap (zero: the defaults)
}

// Server is the server side: one TUN, one socket per address, one session per connected peer.
type Server struct {
	cfg     ServerConfig
	log     *slog.Logger
	dev     wgtun.Device   // the TUN device; nil for a message server
	tunw    *tunWriter     // the Deliverer of every session, with a TUN
	handler SessionHandler // a message server's sessions' Deliverers, without one
	tlsCfg  *tls.Config
	now     func() time.Time
	lns     []net.Listener
	net     path.Network
	conns   []path.Transport          // by address id
	peers   atomic.Pointer[peerTable] // swapped whole by SetPeers (peers.go)
	admit   *admission                // which TCP connections get a TLS handshake

	reloadMu sync.Mutex // serializes SetPeers

	mu       sync.Mutex // guards index allocation
	sessions [1 << 16]atomic.Pointer[Session]
	counters NodeCounters
	wg       sync.WaitGroup
	groups   []sendGroup // TUN reader's scratch
	logLimit rateLimit
}

type sendGroup struct {
	s     *Session
	bufs  [][]byte
	sizes []int
}

// SessionHandler is a message server's inner side (the library's listener, package bond).
// SessionStarted is called when a peer's session is set up, before any datagram of it is
// accepted and before WELCOME is sent (the handshake may still fail: SessionEnded follows),
// and returns where the session's messages go. SessionInstalled is called once s is the
// peer's session (it replaced the previous one, which ends without SessionEnded); if it
// returns false the server ends s at once. SessionEnded is called when s ended (BYE, key
// limits, silence, the server stopping, a failed handshake), not when a newer session
// replaced it. None may block or call back into the server.
type SessionHandler interface {
	SessionStarted(peer string, s *Session) Deliverer
	SessionInstalled(peer string, s *Session) bool
	SessionEnded(peer string, s *Session)
}

// NewServer opens the control listeners and data sockets.
func NewServer(cfg ServerConfig, dev wgtun.Device) (*Server, error) {
	sv, err := newServer(cfg)
	if err != nil {
		return nil, err
	}
	sv.dev = dev
	sv.tunw = newTUNWriter(dev, sv.log)
	return sv, nil
}

// NewMessageServer is NewServer without TUN: each session carries opaque messages in one
// lane, in order, between h's Deliverer and Session.SendBatch; nothing is routed by address.
func NewMessageServer(cfg ServerConfig, h SessionHandler) (*Server, error) {
	sv, err := newServer(cfg)
	if err != nil {
		return nil, err
	}
	sv.handler = h
	return sv, nil
}

func newServer(cfg ServerConfig) (*Server, error) {
	if cfg.Logger == nil {
		cfg.Logger = slog.New(slog.DiscardHandler)
	}
	if len(cfg.Addresses) > 16 {
		return nil, fmt.Errorf("at most 16 listen addresses, have %d", len(cfg.Addresses))
	}
	now, err := nodeClock(cfg.Clock, cfg.Timers)
	if err != nil {
		return nil, err
	}
	sv := &Server{cfg: cfg, log: cfg.Logger, now: now, net: cfg.Network}
	if sv.net == nil {
		sv.net = path.Host
	}
	sv.admit = newAdmission(defaultAdmit, &sv.counters)
	table, err := buildPeerTable(cfg.Peers, nil)
	if err != nil {
		return nil, err
	}
	sv.peers.Store(table)
	sv.cfg.Peers = nil // the table holds them; SetPeers changes them
	sv.tlsCfg, err = crypto.ServerTLSConfig(cfg.Identity, func(k crypto.PublicKey) error {
		if _, ok := sv.peers.Load().byKey[k]; !ok {
			return fmt.Errorf("%w: %s", crypto.ErrUnauthorizedKey, k)
		}
		return nil
	})
	if err != nil {
		return nil, err
	}
	addrs := cfg.Addresses
	if len(addrs) == 0 {
		addrs = []netip.Addr{{}}
	}
	for _, a := range addrs {
		ap := netip.AddrPortFrom(a, uint16(cfg.Port))
		ln, err := sv.net.ListenTCP(ap)
		if err != nil {
			sv.closeAll()
			return nil, fmt.Errorf("control listener: %w", err)
		}
		sv.lns = append(sv.lns, ln)
		if cfg.Port == 0 { // tests: take the kernel's port for TCP and UDP alike
			cfg.Port = ln.Addr().(*net.TCPAddr).Port
			sv.cfg.Port = cfg.Port
			ap = netip.AddrPortFrom(a, uint16(cfg.Port))
		}
		opts := path.ListenOptions{Addr: ap}
		if !a.IsValid() {
			opts.Addr = netip.AddrPortFrom(netip.IPv4Unspecified(), uint16(cfg.Port))
		}
		conn, err := sv.net.ListenPacket(opts)
		if err != nil {
			sv.closeAll()
			return nil, err
		}
		sv.conns = append(sv.conns, conn)
	}
	return sv, nil
}

func (sv *Server) closeAll() {
	for _, ln := range sv.lns {
		ln.Close()
	}
	for _, c := range sv.conns {
		c.Close()
	}
}

// Port is the control and data port the server listens on.
func (sv *Server) Port() int { return sv.cfg.Port }

// Counters returns the node-level drop counters.
func (sv *Server) Counters() *NodeCounters { return &sv.counters }

// Sessions returns the established sessions.
func (sv *Server) Sessions() []*Session {
	var out []*Session
	for _, ps := range sv.peers.Load().byKey {
		if s := ps.sess.Load(); s != nil {
			out = append(out, s)
		}
	}
	return out
}

func (sv *Server) lookup(idx uint16) *Session { return sv.sessions[idx].Load() }

// Run serves until ctx is done, then sends BYE to every peer and closes its sockets. The TUN
// device belongs to the caller.
func (sv *Server) Run(ctx context.Context) error {
	for _, c := range sv.conns {
		sv.wg.Add(1)
		go func() {
			defer sv.wg.Done()
			routineReceive(c, sv.lookup, &sv.counters, sv.now)
		}()
	}
	if sv.dev != nil {
		go routineReadTUN(sv.dev, sv.log, sv.handleTUN)
	}
	var acceptWG sync.WaitGroup
	for _, ln := range sv.lns {
		acceptWG.Add(1)
		go func() {
			defer acceptWG.Done()
			sv.routineAccept(ctx, ln)
		}()
	}
	<-ctx.Done()
	for _, ln := range sv.lns {
		ln.Close()
	}
	acceptWG.Wait()
	for _, ps := range sv.peers.Load().byKey {
		if s := ps.sess.Load(); s != nil {
			sv.removeSession(ps, s, true)
		}
	}
	for _, c := range sv.conns {
		c.Close()
	}
	sv.wg.Wait()
	return nil
}

func (sv *Server) routineAccept(ctx context.Context, ln net.Listener) {
	for {
		raw, err := ln.Accept()
		if err != nil {
			if errors.Is(err, net.ErrClosed) {
				return
			}
			time.Sleep(10 * time.Millisecond)
			continue
		}
		var src netip.Addr
		if ta, ok := raw.RemoteAddr().(*net.TCPAddr); ok {
			src = ta.AddrPort().Addr()
		}
		t := sv.admit.admit(sv.now(), src, func() { raw.Close() })
		if t == nil {
			raw.Close() // a per-source limit, or every slot busy (counted)
			continue
		}
		sv.wg.Add(1)
		go func() {
			defer sv.wg.Done()
			sv.handleConn(ctx, raw, t)
		}()
	}
}

// handleTUN routes each packet read from the TUN to the session of the peer whose allowed
// addresses contain its destination, and sends each session its share of the batch.
func (sv *Server) handleTUN(bufs [][]byte, sizes []int, n int) {
	groups := sv.groups[:0]
	peers := sv.peers.Load()
	for i := 0; i < n; i++ {
		pkt := bufs[i][framing.PayloadOffset : framing.PayloadOffset+sizes[i]]
		dst := classify.Dst(pkt)
		if !dst.IsValid() {
			sv.counters.TxNotIP.Add(1)
			continue
		}
		ps := peers.route(dst)
		if ps == nil {
			sv.counters.TxNoRoute.Add(1)
			continue
		}
		s := ps.sess.Load()
		if s == nil {
			sv.counters.TxNoSession.Add(1)
			continue
		}
		g := -1
		for j := range groups {
			if groups[j].s == s {
				g = j
				break
			}
		}
		if g < 0 {
			if len(groups) < cap(groups) {
				groups = groups[:len(groups)+1]
			} else {
				groups = append(groups, sendGroup{})
			}
			g = len(groups) - 1
			groups[g].s = s
			groups[g].bufs = groups[g].bufs[:0]
			groups[g].sizes = groups[g].sizes[:0]
		}
		groups[g].bufs = append(groups[g].bufs, bufs[i])
		groups[g].sizes = append(groups[g].sizes, sizes[i])
	}
	for j := range groups {
		g := &groups[j]
		g.s.SendBatch(g.bufs, g.sizes, len(g.bufs))
		g.s = nil
		clear(g.bufs)
	}
	sv.groups = groups[:0]
}

// allocIndex picks an unused receiver index for a new session.
func (sv *Server) allocIndex(s *Session) uint16 {
	sv.mu.Lock()
	defer sv.mu.Unlock()
	for {
		var b [2]byte
		rand.Read(b[:])
		idx := binary.BigEndian.Uint16(b[:])
		if sv.sessions[idx].Load() == nil {
			sv.sessions[idx].Store(s)
			return idx
		}
	}
}

// removeSession takes s out of service, telling the peer with BYE when bye is set, if it
// is still the peer's session: one that a newer session replaced was closed then, and
// when two goroutines end s at once (Run stopping while s is installed), one does it.
func (sv *Server) removeSession(ps *peerState, s *Session, bye bool) {
	if !ps.sess.CompareAndSwap(s, nil) {
		return
	}
	sv.sessions[s.local].CompareAndSwap(s, nil)
	if c := s.ctrl.Load(); c != nil {
		if bye {
			c.SetWriteDeadline(ioDeadline(time.Second))
			c.send(framing.CtrlBye, nil)
		}
		c.Close()
	}
	s.Close()
	if sv.handler != nil {
		sv.handler.SessionEnded(ps.name(), s)
	}
	sv.log.Info("session ended", "peer", ps.name())
}

// rateLimit allows one event per interval; used to keep unauthenticated failures from
// flooding the log.
type rateLimit struct{ last atomic.Int64 }

func (r *rateLimit) allow(now time.Time, every time.Duration) bool {
	last := r.last.Load()
	if now.UnixNano()-last < int64(every) {
		return false
	}
	return r.last.CompareAndSwap(last, now.UnixNano())
}

// EndSession ends s, if it is still its peer's session, telling the peer with BYE (the
// library's Conn.Close on the listening side).
func (sv *Server) EndSession(s *Session) {
	for _, ps := range sv.peers.Load().byKey {
		if ps.sess.Load() == s {
			sv.removeSession(ps, s, true)
			return
		}
	}
}
