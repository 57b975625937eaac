package session

import (
	"context"
	"errors"
	"fmt"
	"time"

	"github.com/bondtun/bondtun/crypto"
	"github.com/bondtun/bondtun/framing"
	"github.com/bondtun/bondtun/liveness"
)

// Opening a client's session: connect (dial, handshake, install), resume of a lost control
// channel on another uplink, and endSession.

// Connect establishes the first session, in one attempt. It fails with an error wrapping
// ErrRejected when the server is not bondtun or the keys do not match, and with other errors
// for network problems. A caller that waits out faults skips it: Run opens the first session
// itself and retries until it succeeds.
func (c *Client) Connect(ctx context.Context) error {
	return c.connect(ctx)
}

// connect dials the server from the first uplink that works, runs the handshake and
// installs the new session with one path per uplink × server address.
func (c *Client) connect(ctx context.Context) error {
	cfg := c.config() // SetServer may change the server's settings meanwhile
	if cfg.ResolveEndpoint != nil {
		ep, err := c.resolveEndpoint(ctx, cfg.ResolveEndpoint)
		if err != nil {
			return err
		}
		c.mu.Lock() // resume dials the address this session was opened to
		if c.cfg.serverGen == cfg.serverGen {
			c.cfg.Endpoint = ep
		}
		c.mu.Unlock()
		cfg.Endpoint = ep
	}
	tlsCfg, err := crypto.ClientTLSConfig(cfg.Identity, cfg.ServerKey)
	if err != nil {
		return err
	}
	hello := &framing.Hello{
		Version:       ProtocolVersion,
		Caps:          framing.CapKeyUpdate | framing.CapUplinks,
		Ciphers:       cipherIDs(crypto.PreferredCiphers()),
		ReceiverIndex: c.index,
	}
	uplinks := c.uplinkConfigs()
	hello.Uplinks = c.helloUplinks()
	defer c.helloDone()
	var lastErr error
	for ui, u := range uplinks {
		if !c.isBound(ui) {
			continue
		}
		dctx, cancel := context.WithTimeout(ctx, handshakeTimeout)
		raw, err := c.net.DialTCP(dctx, u.Device, u.Source, cfg.Endpoint)
		if err != nil {
			cancel()
			lastErr = fmt.Errorf("connect to %s via %s: %w", cfg.Endpoint, u.Name, err)
			continue
		}
		ctrl, w, send, recv, err := clientHandshake(dctx, raw, tlsCfg, hello)
		cancel()
		if err != nil {
			raw.Close()
			if errors.Is(err, ErrRejected) {
				return fmt.Errorf("server %s: %w", cfg.Endpoint, err)
			}
			lastErr = fmt.Errorf("handshake with %s via %s: %w", cfg.Endpoint, u.Name, err)
			continue
		}
		return c.install(cfg, ctrl, ui, w, send, recv, hello.Uplinks)
	}
	if lastErr == nil {
		lastErr = errors.New("no uplink is ready (interfaces missing, down or without their address)")
	}
	return lastErr
}

// resume moves s to a new control connection when the old one is lost, trying the uplinks
// that still carry data first. The data plane does not notice: same keys, same paths.
func (c *Client) resume(ctx context.Context, s *Session) error {
	cfg := c.config()
	tlsCfg, err := crypto.ClientTLSConfig(cfg.Identity, cfg.ServerKey)
	if err != nil {
		return err
	}
	uplinks := c.uplinkConfigs()
	var lastErr error
	for _, ui := range c.uplinkOrder(s, len(uplinks)) {
		u := uplinks[ui]
		if !c.isBound(ui) {
			continue
		}
		dctx, cancel := context.WithTimeout(ctx, resumeTimeout)
		raw, err := c.net.DialTCP(dctx, u.Device, u.Source, cfg.Endpoint)
		if err != nil {
			cancel()
			lastErr = fmt.Errorf("connect to %s via %s: %w", cfg.Endpoint, u.Name, err)
			continue
		}
		ctrl, err := clientResume(dctx, raw, tlsCfg, framing.Resume{ServerIndex: s.remote, ClientIndex: s.local})
		cancel()
		if err != nil {
			raw.Close()
			if errors.Is(err, ErrRejected) {
				return err // the server has no such session: start a new one
			}
			lastErr = fmt.Errorf("resume via %s: %w", u.Name, err)
			continue
		}
		if old := s.ctrl.Swap(ctrl); old != nil {
			old.Close()
		}
		s.ctrlUplink.Store(int32(ui))
		c.log.Info("control channel resumed", "via", u.Name)
		c.sendUplinks(s) // one sent on the broken channel may be lost
		return nil
	}
	if lastErr == nil {
		lastErr = errors.New("no uplink")
	}
	return lastErr
}

// uplinkOrder lists the n uplinks' indexes, those with a usable path in s first.
func (c *Client) uplinkOrder(s *Session, n int) []int {
	usable := make([]bool, n)
	now := c.now()
	for _, p := range s.pathList() {
		p.mu.Lock()
		if ui := int(p.id >> 4); ui < n && p.usableLocked(now) {
			usable[ui] = true
		}
		p.mu.Unlock()
	}
	var first, rest []int
	for i := range n {
		if usable[i] {
			first = append(first, i)
		} else {
			rest = append(rest, i)
		}
	}
	return append(first, rest...)
}

// install makes the session the handshake agreed on (its keys, the server's addresses in
// WELCOME), with the paths of the uplinks listed in the HELLO, starts it and makes it the
// client's current one, unless SetServer changed the server meanwhile (errServerChanged).
func (c *Client) install(cfg ClientConfig, ctrl *ctrlConn, uplink int, w framing.Welcome, send, recv crypto.DirectionKeys, listed []framing.UplinkInfo) error {
	s, err := newSession(sessionParams{
		log:         c.log,
		peerName:    cfg.ServerName,
		localIndex:  c.index,
		remoteIndex: w.ReceiverIndex,
		cipher:      crypto.CipherID(w.Cipher),
		send:        send,
		recv:        recv,
		allowed:     cfg.AllowedIPs,
		scheduler:   cfg.Scheduler,
		deliver:     c.inner,
		messages:    c.messages,
		limits:      cfg.limits,
		timers:      cfg.Timers,
		clock:       c.now,
		keyUpdate:   w.Caps&framing.CapKeyUpdate != 0,
		exporter:    exporterOf(ctrl),
		rekey:       cfg.rekey,
	})
	if err != nil {
		ctrl.Close()
		return err
	}
	s.ctrl.Store(ctrl)
	s.ctrlUplink.Store(int32(uplink))
	s.sendsTiers = true
	s.uplinksCap = w.Caps&framing.CapUplinks != 0
	s.newUplinkPaths = c.uplinkPaths(w.Addrs)
	s.onAllFailed = c.noteAllFailed
	for _, u := range listed {
		if err := s.addUplink(u.ID, u.Name); err != nil {
			ctrl.Close()
			return err
		}
	}
	c.log.Info("session established", "server", cfg.Endpoint, "cipher", crypto.CipherID(w.Cipher).String(), "paths", len(s.pathList()))
	s.start()
	c.mu.Lock()
	if c.cfg.serverGen != cfg.serverGen {
		c.mu.Unlock()
		// SetServer changed the server while this session was being opened with the old one.
		ctrl.SetWriteDeadline(ioDeadline(time.Second))
		ctrl.send(framing.CtrlBye, nil)
		ctrl.Close()
		s.Close()
		return errServerChanged
	}
	c.sess = s
	c.current.Store(s)
	bound := c.bound
	c.mu.Unlock()
	for _, u := range listed {
		if !bound[u.ID] {
			c.uplinkLive(int(u.ID), func(now time.Time, l *liveness.Path) liveness.Transition {
				return l.OnLocalDown(now, "uplink not ready")
			})
		}
	}
	c.syncUplinks(s) // uplinks added or removed since the HELLO
	return nil
}

// uplinkPaths returns a session's newUplinkPaths: the paths of uplink id, one to each of
// the server's addresses, on the uplink's socket and tier at the time of the call.
func (c *Client) uplinkPaths(addrs []framing.ServerAddr) func(id uint8, name string) []*Path {
	return func(id uint8, name string) []*Path {
		c.mu.Lock()
		tier, conn := c.tiers[id], c.uplinks[id]
		c.mu.Unlock()
		out := make([]*Path, len(addrs))
		for i, a := range addrs {
			out[i] = &Path{
				id:     id<<4 | a.ID&0x0f,
				name:   fmt.Sprintf("%s→%s", name, a.AddrPort),
				tier:   tier,
				remote: a.AddrPort,
			}
			out[i].setTransport(conn)
		}
		return out
	}
}

// endSession removes s; with bye it tells the server first.
func (c *Client) endSession(s *Session, bye bool) {
	c.mu.Lock()
	if c.sess == s {
		c.sess = nil
		c.current.Store(nil)
	}
	c.mu.Unlock()
	ctrl := s.ctrl.Load()
	if bye {
		ctrl.SetWriteDeadline(ioDeadline(time.Second))
		ctrl.send(framing.CtrlBye, nil)
	}
	ctrl.Close()
	s.Close()
}

func cipherIDs(ids []crypto.CipherID) []uint8 {
	out := make([]uint8, len(ids))
	for i, id := range ids {
		out[i] = uint8(id)
	}
	return out
}
