package session

import (
	"context"
	"crypto/tls"
	"errors"
	"fmt"
	"net"
	"net/netip"
	"time"

	"github.com/bondtun/bondtun/crypto"
	"github.com/bondtun/bondtun/framing"
)

// handleConn authenticates one control connection, answers its HELLO, installs the session
// and serves its control channel. Nothing is created before the TLS handshake has proved
// the client holds a configured key. t is the connection's handshake slot (admit.go),
// given back when the TLS handshake ends.
func (sv *Server) handleConn(ctx context.Context, raw net.Conn, t *ticket) {
	accepted := ioDeadline(0) // the connection's clock, for both of its deadlines below
	tc, ps := sv.authenticate(ctx, raw, t, accepted)
	if ps == nil {
		return
	}
	raw.SetDeadline(accepted.Add(handshakeTimeout)) // the client is authenticated: HELLO may take longer
	c := &ctrlConn{Conn: tc}
	s, mt := sv.open(c, ps, raw)
	if s == nil {
		return
	}
	raw.SetDeadline(time.Time{})
	c.dropHandshakeBuffers()
	// A reload during the handshake (SetPeers) may have dropped the key or changed its
	// allowed_ips after s was made: SetPeers writes the table, then reads ps.sess; this
	// wrote ps.sess, then reads the table, so one of the two sees the other.
	if ps.removed.Load() {
		sv.removeSession(ps, s, true)
		return
	}
	s.setAllowed(ps.cfg.Load().AllowedIPs)
	if mt == framing.CtrlResume {
		sv.log.Info("control channel resumed", "peer", ps.name(), "remote", raw.RemoteAddr())
	} else {
		sv.log.Info("session established", "peer", ps.name(), "remote", raw.RemoteAddr(), "paths", len(s.pathList()), "cipher", s.cipherName)
	}
	// The channel is served for the session's life by a goroutine of its own: this one's
	// stack grew through the TLS handshake (16–32 KiB, which the GC does not give back while
	// the goroutine waits in a read with a few KiB of it in use); a new one starts at 2 KiB
	// and grows only to what reading the channel needs.
	sv.wg.Add(1) // sv.wg counts this goroutine: its Wait cannot have returned
	go func() {
		defer sv.wg.Done()
		sv.serveConn(ctx, ps, s, c)
	}()
}

// authenticate runs the TLS handshake of raw (accepted at accepted, on the connection's
// clock) and returns the connection and the configured peer whose key it proved, or a nil
// peer once it has counted, logged (rate-limited) and closed a failure. It gives the
// handshake slot t back either way.
func (sv *Server) authenticate(ctx context.Context, raw net.Conn, t *ticket, accepted time.Time) (*tls.Conn, *peerState) {
	raw.SetDeadline(accepted.Add(tlsTimeout))
	tc := tls.Server(raw, sv.tlsCfg)
	hctx, cancel := context.WithTimeout(ctx, tlsTimeout)
	err := tc.HandshakeContext(hctx)
	cancel()
	var key crypto.PublicKey
	if err == nil {
		key, err = crypto.PeerPublicKey(tc.ConnectionState())
	}
	ps := sv.peers.Load().byKey[key]
	if err == nil && ps == nil { // VerifyConnection already refused unknown keys
		err = crypto.ErrUnauthorizedKey
	}
	sv.admit.done(sv.now(), t, err == nil)
	if err != nil {
		sv.counters.HandshakesFailed.Add(1)
		if sv.logLimit.allow(sv.now(), time.Second) {
			sv.log.Info("control handshake failed", "remote", raw.RemoteAddr(), "err", err)
		}
		raw.Close()
		return nil, nil
	}
	return tc, ps
}

// open reads the authenticated peer's first control message and creates the session a
// HELLO asks for, or takes back the one a RESUME names. It returns the session and the
// message's type, or a nil session once it has answered ERROR and closed c.
func (sv *Server) open(c *ctrlConn, ps *peerState, raw net.Conn) (*Session, framing.CtrlType) {
	var s *Session
	mt, msg, err := c.recv()
	switch {
	case err != nil:
		err = fmt.Errorf("read HELLO: %w", err)
	case mt == framing.CtrlHello:
		s, err = sv.accept(c, ps, raw.LocalAddr(), msg)
	case mt == framing.CtrlResume:
		s, err = sv.resume(c, ps, msg)
	default:
		err = fmt.Errorf("expected HELLO or RESUME, got control message %d", mt)
	}
	if err != nil {
		sv.log.Warn("session refused", "peer", ps.name(), "remote", raw.RemoteAddr(), "err", err)
		c.SetWriteDeadline(ioDeadline(time.Second))
		c.send(framing.CtrlError, []byte(err.Error()))
		c.Close()
		return nil, mt
	}
	return s, mt
}

// serveConn serves session s's control channel c, then removes the session or watches it
// without a channel, as the reason the channel ended asks.
func (sv *Server) serveConn(ctx context.Context, ps *peerState, s *Session, c *ctrlConn) {
	err := s.serveControl(ctx)
	switch {
	case ctx.Err() != nil:
		// Run ends every session, but this one may have been installed after it looked.
		sv.removeSession(ps, s, true)
	case s.ctrl.Load() != c:
		return // resumed on another connection, which serves it now
	case errors.Is(err, errPeerBye):
		sv.removeSession(ps, s, false)
	case errors.Is(err, errKeysUsedUp):
		sv.removeSession(ps, s, true) // BYE: the client opens a new session with new keys
	default:
		// The control channel broke, maybe with the uplink that carried it; the data paths
		// may still work. Keep the session while authenticated datagrams arrive; the client
		// reconnects and replaces it.
		sv.log.Info("control channel lost", "peer", ps.name(), "err", err)
		sv.watchIdle(ctx, ps, s, c)
	}
}

// accept creates the session a HELLO (msg) asks for and answers WELCOME.
func (sv *Server) accept(c *ctrlConn, ps *peerState, local net.Addr, msg []byte) (*Session, error) {
	h, cipher, err := parseHello(msg)
	if err != nil {
		return nil, err
	}
	send, recv, err := deriveServerKeys(c)
	if err != nil {
		return nil, err
	}
	addrs := sv.advertised(local)
	s, err := newSession(sessionParams{
		log:         sv.log,
		peerName:    ps.name(),
		remoteIndex: h.ReceiverIndex,
		cipher:      cipher,
		send:        send,
		recv:        recv,
		allowed:     ps.cfg.Load().AllowedIPs,
		scheduler:   sv.cfg.Scheduler,
		deliver:     sv.tunw,
		isServer:    true,
		messages:    sv.handler != nil,
		limits:      sv.cfg.limits,
		timers:      sv.cfg.Timers,
		clock:       sv.now,
		keyUpdate:   h.Caps&framing.CapKeyUpdate != 0,
		exporter:    exporterOf(c),
		rekey:       sv.cfg.rekey,
	})
	if err != nil {
		return nil, err
	}
	s.ctrl.Store(c)
	s.ctrlUplink.Store(-1)
	for _, u := range h.Uplinks {
		for i, a := range addrs {
			p := &Path{
				id:   u.ID<<4 | a.ID,
				name: fmt.Sprintf("%s→%s", printable([]byte(u.Name)), a.AddrPort),
			}
			p.setTransport(sv.conns[i])
			if err := s.addPath(p); err != nil {
				return nil, fmt.Errorf("bad HELLO: %w", err)
			}
		}
	}
	if sv.handler != nil {
		s.deliver = sv.handler.SessionStarted(ps.name(), s) // before any datagram can reach s
	}
	s.local = sv.allocIndex(s)
	s.uplinksCap = h.Caps&framing.CapUplinks != 0
	if s.uplinksCap {
		s.newUplinkPaths = sv.uplinkPaths(addrs)
	}
	if err := sv.welcome(c, ps, s, h.Caps, cipher, addrs); err != nil {
		return nil, err
	}
	s.start()
	sv.replaceSession(ps, s)
	if sv.handler != nil && !sv.handler.SessionInstalled(ps.name(), s) {
		sv.removeSession(ps, s, false)
		return nil, errors.New("the listener closed the connection")
	}
	return s, nil
}

// parseHello parses a HELLO and checks it: the protocol version, and a cipher in common,
// which it returns.
func parseHello(msg []byte) (framing.Hello, crypto.CipherID, error) {
	h, err := framing.ParseHello(msg)
	if err != nil {
		return h, 0, fmt.Errorf("bad HELLO: %w", err)
	}
	if h.Version != ProtocolVersion {
		return h, 0, fmt.Errorf("client speaks protocol version %d, server speaks %d", h.Version, ProtocolVersion)
	}
	theirs := make([]crypto.CipherID, len(h.Ciphers))
	for i, id := range h.Ciphers {
		theirs[i] = crypto.CipherID(id)
	}
	cipher, ok := crypto.ChooseCipher(crypto.PreferredCiphers(), theirs)
	if !ok {
		return h, 0, errors.New("no cipher in common")
	}
	return h, cipher, nil
}

// uplinkPaths returns a session's newUplinkPaths: the paths of a client's uplink id, one
// from each of the advertised addresses addrs, on that address's socket.
func (sv *Server) uplinkPaths(addrs []framing.ServerAddr) func(id uint8, name string) []*Path {
	return func(id uint8, name string) []*Path {
		out := make([]*Path, len(addrs))
		for i, a := range addrs {
			out[i] = &Path{id: id<<4 | a.ID, name: fmt.Sprintf("%s→%s", name, a.AddrPort)}
			out[i].setTransport(sv.conns[i])
		}
		return out
	}
}

// welcome answers the HELLO that asked for s with WELCOME (the capabilities of caps the
// server has, the cipher, s's receiver index, the addresses). If it cannot be sent, s is
// dropped: its index freed, s closed, the handler told.
func (sv *Server) welcome(c *ctrlConn, ps *peerState, s *Session, caps uint32, cipher crypto.CipherID, addrs []framing.ServerAddr) error {
	w := framing.Welcome{Version: ProtocolVersion, Caps: caps & (framing.CapKeyUpdate | framing.CapUplinks), Cipher: uint8(cipher), ReceiverIndex: s.local, Addrs: addrs}
	body, err := w.Append(nil)
	if err == nil {
		c.SetWriteDeadline(ioDeadline(handshakeTimeout))
		err = c.send(framing.CtrlWelcome, body)
		c.SetWriteDeadline(time.Time{})
	}
	if err != nil {
		sv.sessions[s.local].CompareAndSwap(s, nil)
		s.Close()
		if sv.handler != nil {
			sv.handler.SessionEnded(ps.name(), s)
		}
		return fmt.Errorf("send WELCOME: %w", err)
	}
	return nil
}

// replaceSession makes s the peer's session, and ends the one it replaces, if any: its
// index freed, its control channel and itself closed.
func (sv *Server) replaceSession(ps *peerState, s *Session) {
	if old := ps.sess.Swap(s); old != nil {
		sv.log.Info("session replaced", "peer", ps.name())
		sv.sessions[old.local].CompareAndSwap(old, nil)
		if oc := old.ctrl.Load(); oc != nil {
			oc.Close()
		}
		old.Close()
	}
}

// resume moves the peer's current session to control connection c, as a RESUME (msg) asks,
// and acknowledges with KEEPALIVE. Only the session of the peer that c authenticated can be
// resumed, and only if both receiver indexes match it.
func (sv *Server) resume(c *ctrlConn, ps *peerState, msg []byte) (*Session, error) {
	r, err := framing.ParseResume(msg)
	if err != nil {
		return nil, fmt.Errorf("bad RESUME: %w", err)
	}
	s := ps.sess.Load()
	if s == nil || s.local != r.ServerIndex || s.remote != r.ClientIndex {
		return nil, errors.New("no such session to resume")
	}
	c.SetWriteDeadline(ioDeadline(handshakeTimeout))
	err = c.send(framing.CtrlKeepalive, nil)
	c.SetWriteDeadline(time.Time{})
	if err != nil {
		return nil, fmt.Errorf("acknowledge RESUME: %w", err)
	}
	if old := s.ctrl.Swap(c); old != nil {
		old.Close() // its serveControl returns
	}
	return s, nil
}

// advertised lists the server addresses the client should send to: the configured ones,
// or with a wildcard listener the address the client reached.
func (sv *Server) advertised(local net.Addr) []framing.ServerAddr {
	if len(sv.cfg.Addresses) == 0 {
		ap := local.(*net.TCPAddr).AddrPort()
		ap = netip.AddrPortFrom(ap.Addr().Unmap(), uint16(sv.cfg.Port))
		return []framing.ServerAddr{{ID: 0, AddrPort: ap}}
	}
	out := make([]framing.ServerAddr, len(sv.cfg.Addresses))
	for i, a := range sv.cfg.Addresses {
		out[i] = framing.ServerAddr{ID: uint8(i), AddrPort: netip.AddrPortFrom(a, uint16(sv.cfg.Port))}
	}
	return out
}

// watchIdle arms the timer of s, whose control channel c was lost, to end it once no
// authenticated datagram has arrived for dataIdleTimeout, or its keys are used up, unless
// it was resumed, replaced or the server stops first. No goroutine waits for it.
func (sv *Server) watchIdle(ctx context.Context, ps *peerState, s *Session, c *ctrlConn) {
	s.watchData(c, func(keys bool) {
		if ctx.Err() != nil || ps.sess.Load() != s {
			return // Run tears it down, or it was replaced (and closed)
		}
		if !keys {
			sv.log.Info("peer silent, ending its session", "peer", ps.name())
		}
		sv.removeSession(ps, s, false) // no channel to say BYE on; the client's session ends too
	})
}

func deriveServerKeys(c *ctrlConn) (send, recv crypto.DirectionKeys, err error) {
	cs := c.ConnectionState()
	return crypto.DeriveKeys(cs.ExportKeyingMaterial, false)
}
