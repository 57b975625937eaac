package session

import (
	"context"
	"crypto/rand"
	"encoding/binary"
	"errors"
	"fmt"
	"log/slog"
	"net"
	"net/netip"
	"sync"
	"sync/atomic"
	"syscall"
	"time"

	wgtun "golang.zx2c4.com/wireguard/tun"

	"github.com/bondtun/bondtun/crypto"
	"github.com/bondtun/bondtun/framing"
	"github.com/bondtun/bondtun/internal/timerq"
	"github.com/bondtun/bondtun/liveness"
	"github.com/bondtun/bondtun/path"
)

// UplinkConfig is one of the client's uplinks.
type UplinkConfig struct {
	Name   string
	Device string     // interface to bind to; empty for none (tests on loopback)
	Source netip.Addr // source address to bind to
	Backup bool       // used only while no primary path is usable
	// FollowAddress: the configuration named only the interface, so the uplink follows
	// whatever global address the interface has (DHCP, PPPoE); Source is the one at start.
	FollowAddress bool
}

func (u UplinkConfig) tier() uint8 {
	if u.Backup {
		return framing.TierBackup
	}
	return framing.TierPrimary
}

// SetTier switches the tier of the uplink called name on the running session, and tells
// the server, which schedules the other direction.
func (c *Client) SetTier(name string, tier uint8) error {
	idx := -1
	for i, u := range c.uplinkConfigs() {
		if u.Name == name {
			idx = i
		}
	}
	if idx < 0 || c.isRetired(idx) {
		return fmt.Errorf("no uplink %q", name)
	}
	if tier > framing.TierDisabled {
		return fmt.Errorf("bad tier %d", tier)
	}
	c.mu.Lock()
	c.tiers[idx] = tier
	s := c.sess
	c.mu.Unlock()
	if s != nil {
		s.setUplinkTier(uint8(idx), tier)
	}
	c.log.Info("uplink tier changed", "uplink", name, "tier", tierName(tier))
	return nil
}

// ClientConfig is what a client needs to run.
type ClientConfig struct {
	Identity   crypto.PrivateKey
	ServerName string
	ServerKey  crypto.PublicKey
	Endpoint   netip.AddrPort // server control (TCP) and data (UDP) port
	Uplinks    []UplinkConfig
	AllowedIPs []netip.Prefix // inner source addresses accepted from the server
	Scheduler  string
	Logger     *slog.Logger
	// OnUplinkChange, if set, is called when an uplink's interface came back or its address
	// changed, before the uplink is used again, so the host's policy routing can follow
	// (tun.Host.RefreshUplink). An error keeps the uplink down.
	OnUplinkChange func(name string, source netip.Addr) error
	// ResolveEndpoint, if set, is called at the start of every connect (not of a resume)
	// and its answer replaces Endpoint: a server named by DNS name is re-resolved each
	// time a new session is needed, so it may move. An error fails that connect like an
	// unreachable server.
	ResolveEndpoint func(ctx context.Context) (netip.AddrPort, error)
	// OnSessionChange, if set, is called from Run with true when a session is established,
	// and with false when the client has no session and its first attempt to open one
	// failed (not when it ends a session and opens the next at once, as for new keys), so
	// the host can route around a tunnel that is down (tun.while_down: direct).
	OnSessionChange func(up bool)

	// Network is where the sockets come from; nil: the host's (path.Host). Tests put an
	// in-memory network here (internal/memnet).
	Network path.Network
	// Timers is the timer queue of the client's sessions; nil: the process's. A test on a
	// fake clock (testing/synctest) gives each bubble its own.
	Timers *timerq.Queue
	// Clock is the client's clock: its sessions read the current time only through it
	// (session/clock.go). Nil: Timers' clock, else the wall clock. A clock needs Timers on
	// the same clock; a test drives both by hand (timerq.Config.Manual, Queue.RunDue).
	Clock func() time.Time

	limits crypto.Limits // tests: small key usage limits (zero: the cipher's)
	rekey  rekeyConfig   // tests: key update interval and overlap (zero: the defaults)
	// serverGen counts SetServer's changes, so that a session opened with the settings
	// before one is not installed after it.
	serverGen uint64
	// Tests: the retry schedule's random source (nil: math/rand/v2) and its wait (nil:
	// sleepOrWake), which reports whether ctx did not end it.
	jitter func() float64
	sleep  func(ctx context.Context, d time.Duration) bool
}

// Client is the client side: it keeps one session with the server over all its uplinks.
type Client struct {
	cfg     ClientConfig
	log     *slog.Logger
	dev     wgtun.Device // the TUN device; nil for a message client
	inner   Deliverer    // where released packets go: the TUN writer, or the library's connection
	net     path.Network
	now     func() time.Time
	uplinks []path.Transport
	index   uint16

	mu       sync.Mutex
	sess     *Session
	current  atomic.Pointer[Session] // c.sess, for the per-datagram lookup without c.mu
	tiers    [16]uint8               // current tier per uplink index
	bound    [16]bool                // uplink i has its own socket (not the placeholder)
	retired  [16]bool                // uplink i was removed (RemoveUplink); its slot may be reused
	helloIDs uint16                  // the uplink ids a HELLO in flight lists (connect): not reused
	counters NodeCounters
	messages bool          // a message client (NewMessageClient)
	wake     chan struct{} // cap 1: an uplink appeared, retry now rather than at the backoff's time
	// changed (cap 1) tells watchUplinks that uplinks were added or removed; syncMu
	// serializes syncUplinks (uplinkset.go).
	changed chan struct{}
	syncMu  sync.Mutex
	wg      sync.WaitGroup

	// On mu. started: Run has started the receive loops, so an uplink's new socket gets
	// its own (receiveLocked); closed: the sockets were closed (Run returned, Close), so
	// no uplink can be added.
	started, closed bool
	gen             [16]uint32 // counts AddUplink's and RemoveUplink's changes of slot i (rebind)
}

// NewClient opens one UDP socket per uplink. dev is the TUN device (or a fake); the client
// reads and writes it but does not configure it.
func NewClient(cfg ClientConfig, dev wgtun.Device) (*Client, error) {
	if cfg.Logger == nil {
		cfg.Logger = slog.New(slog.DiscardHandler)
	}
	return buildClient(cfg, dev, newTUNWriter(dev, cfg.Logger), false)
}

// NewMessageClient is NewClient for a client without TUN (the library, package bond): what
// the caller passes to Send are opaque messages, carried in one lane and so kept in order,
// and what the server's side sends is handed to d.
func NewMessageClient(cfg ClientConfig, d Deliverer) (*Client, error) {
	return buildClient(cfg, nil, d, true)
}

func buildClient(cfg ClientConfig, dev wgtun.Device, inner Deliverer, messages bool) (*Client, error) {
	if len(cfg.Uplinks) == 0 || len(cfg.Uplinks) > 16 {
		return nil, fmt.Errorf("need 1 to 16 uplinks, have %d", len(cfg.Uplinks))
	}
	if cfg.Logger == nil {
		cfg.Logger = slog.New(slog.DiscardHandler)
	}
	now, err := nodeClock(cfg.Clock, cfg.Timers)
	if err != nil {
		return nil, err
	}
	c := &Client{cfg: cfg, log: cfg.Logger, dev: dev, inner: inner, now: now, messages: messages, net: cfg.Network,
		wake: make(chan struct{}, 1), changed: make(chan struct{}, 1)}
	if c.net == nil {
		c.net = path.Host
	}
	for i, u := range cfg.Uplinks {
		c.tiers[i] = u.tier()
	}
	for i, u := range cfg.Uplinks {
		conn, err := c.openUplink(u)
		if err != nil {
			c.closeSockets()
			return nil, err
		}
		c.bound[i] = conn != nil
		if conn == nil {
			// Not there yet (a modem still syncing, a DHCP lease not yet granted): the
			// uplink joins when netmon sees its interface up with its address (rebind).
			c.log.Warn("uplink not ready; it joins when its interface and address appear", "uplink", u.Name, "interface", u.Device)
			if conn, err = closedSocket(); err != nil {
				c.closeSockets()
				return nil, fmt.Errorf("uplink %s: %w", u.Name, err)
			}
		}
		c.uplinks = append(c.uplinks, conn)
	}
	var b [2]byte
	rand.Read(b[:])
	c.index = binary.BigEndian.Uint16(b[:])
	return c, nil
}

// openUplink opens u's socket. For an uplink on an interface, an interface that is missing
// or has not its address yet is not an error: openUplink returns nil, nil.
func (c *Client) openUplink(u UplinkConfig) (path.Transport, error) {
	if u.Device != "" && !u.Source.IsValid() {
		return nil, nil // the caller found no address on the interface
	}
	opts := path.ListenOptions{Device: u.Device}
	if u.Source.IsValid() {
		opts.Addr = netip.AddrPortFrom(u.Source, 0)
	}
	conn, err := c.net.ListenPacket(opts)
	if err != nil {
		if u.Device != "" && (errors.Is(err, syscall.ENODEV) || errors.Is(err, syscall.EADDRNOTAVAIL)) {
			return nil, nil
		}
		return nil, fmt.Errorf("uplink %s: %w", u.Name, err)
	}
	return conn, nil
}

// closedSocket is the placeholder socket of an uplink that is not there yet: its paths
// exist (the server has them from HELLO) but are kept Down, and a send on it by mistake
// fails instead of leaving through whatever the main routing table says.
func closedSocket() (path.Transport, error) { return closedTransport{}, nil }

// closedTransport is a transport that is closed from the start.
type closedTransport struct{}

func (closedTransport) ReadBatch([][]byte, []int, []netip.AddrPort) (int, error) {
	return 0, net.ErrClosed
}
func (closedTransport) WriteBatch([][]byte, netip.AddrPort) (int, error) { return 0, net.ErrClosed }
func (closedTransport) LocalAddr() netip.AddrPort                        { return netip.AddrPort{} }
func (closedTransport) Close() error                                     { return nil }

// isBound reports whether uplink i has its own socket.
func (c *Client) isBound(i int) bool {
	c.mu.Lock()
	defer c.mu.Unlock()
	return c.bound[i]
}

// Close closes the client's sockets. Run does it when it returns; Close is for a client
// whose Connect failed, or that is dropped without Run.
func (c *Client) Close() { c.closeSockets() }

func (c *Client) closeSockets() {
	c.mu.Lock()
	defer c.mu.Unlock()
	c.closed = true
	for _, u := range c.uplinks {
		u.Close()
	}
}

// uplinkConfigs returns a copy of the uplinks' settings (rebind changes their sources).
func (c *Client) uplinkConfigs() []UplinkConfig {
	c.mu.Lock()
	defer c.mu.Unlock()
	return append([]UplinkConfig(nil), c.cfg.Uplinks...)
}

// Session returns the current session, or nil between sessions.
func (c *Client) Session() *Session {
	c.mu.Lock()
	defer c.mu.Unlock()
	return c.sess
}

// Counters returns the node-level drop counters.
func (c *Client) Counters() *NodeCounters { return &c.counters }

func (c *Client) lookup(idx uint16) *Session {
	s := c.current.Load()
	if s == nil || s.local != idx {
		return nil
	}
	return s
}

// Connect establishes the first session, in one attempt. It fails with an error wrapping
// ErrRejected when the server is not bondtun or the keys do not match, and with other errors
// for network problems. A caller that waits out faults skips it: Run opens the first session
// itself and retries until it succeeds.
func (c *Client) Connect(ctx context.Context) error {
	return c.connect(ctx)
}

// ErrPeerClosed is what a message client's Run returns when the server ended the session
// (BYE): the library's connection is over. A TUN client opens a new session instead.
var ErrPeerClosed = errors.New("the peer closed the session")

// Run moves packets until ctx is done, opening a session when there is none (first, if
// Connect was not called) and re-establishing it whenever the control channel breaks.
// Unreachable servers, closed connections and uplinks that are not there yet are waited
// out, retrying on the schedule of backoff.go; only an authenticated refusal (an error
// wrapping ErrRefused: wrong server key, our key refused, incompatible server) ends Run,
// which returns it. It closes the sockets when it returns but not the TUN device, which
// belongs to the caller.
func (c *Client) Run(ctx context.Context) error {
	c.mu.Lock()
	c.started = true
	for _, conn := range c.uplinks {
		c.receiveLocked(conn)
	}
	c.mu.Unlock()
	watchCtx, stopWatch := context.WithCancel(ctx)
	watchDone := make(chan struct{})
	go func() {
		defer close(watchDone)
		c.watchUplinks(watchCtx)
	}()
	if c.dev != nil {
		go routineReadTUN(c.dev, c.log, c.Send) // ends when the caller closes the device
	}
	result := c.runSessions(ctx)
	stopWatch()
	<-watchDone
	c.closeSockets()
	c.wg.Wait()
	return result
}

// runSessions is Run's loop: serve the session, resume or replace it, retry until ctx ends.
func (c *Client) runSessions(ctx context.Context) error {
	bo := newBackoff(c.cfg.jitter)
	sleep := c.cfg.sleep
	if sleep == nil {
		sleep = c.sleepOrWake
	}
	up := c.Session() != nil // as last told OnSessionChange (Connect's session counts)
	tell := func(now bool) {
		if now != up && c.cfg.OnSessionChange != nil {
			c.cfg.OnSessionChange(now)
		}
		up = now
	}
	for ctx.Err() == nil {
		if s := c.Session(); s != nil {
			err := s.serveControl(ctx)
			if c.Session() != s {
				continue // SetServer ended it: open a session with the new server
			}
			if errors.Is(err, errKeysUsedUp) {
				// Resuming would keep the keys: end the session (BYE) and open a new one.
				// The host's routes stay; packets meanwhile count as TxNoSession.
				c.endSession(s, true)
				continue
			}
			if ctx.Err() == nil && !errors.Is(err, errPeerBye) {
				// The data paths may be fine: keep the session, move its control channel.
				c.log.Warn("control channel lost; resuming it", "err", err)
				rerr := c.resumeRetrying(ctx, s, &bo, sleep)
				if rerr == nil {
					continue
				}
				if errors.Is(rerr, ErrRefused) {
					c.endSession(s, false)
					tell(false)
					return rerr
				}
				if ctx.Err() == nil {
					c.log.Warn("resume failed; opening a new session", "err", rerr)
				}
			}
			c.endSession(s, ctx.Err() != nil)
			if ctx.Err() != nil {
				break
			}
			if c.messages && errors.Is(err, errPeerBye) {
				tell(false)
				return ErrPeerClosed
			}
		}
		err := c.connect(ctx)
		if err == nil {
			bo.reset()
			tell(true)
			continue
		}
		if ctx.Err() != nil {
			break
		}
		if errors.Is(err, errServerChanged) {
			continue // connect again at once, to the new server
		}
		if errors.Is(err, ErrRefused) {
			tell(false)
			return err
		}
		tell(false)
		d := bo.wait()
		c.log.Warn("no session; retrying", "err", err, "retry_in", d.Round(time.Millisecond))
		sleep(ctx, d)
	}
	return nil
}

// resumeRetrying resumes s's control channel, retrying transient failures on bo's schedule
// while s still has a usable path (its data flows without the channel) and for at most
// controlIdleTimeout. It gives up at once on a rejection: the server has no such session
// (it restarted), or refuses us.
func (c *Client) resumeRetrying(ctx context.Context, s *Session, bo *backoff, sleep func(context.Context, time.Duration) bool) error {
	giveUp := c.now().Add(controlIdleTimeout)
	for {
		err := c.resume(ctx, s)
		if err == nil || errors.Is(err, ErrRejected) || ctx.Err() != nil {
			if err == nil {
				bo.reset()
			}
			return err
		}
		if !c.hasUsablePath(s) || c.now().After(giveUp) {
			return err
		}
		d := bo.wait()
		c.log.Warn("resume failed; the paths still carry data, retrying", "err", err, "retry_in", d.Round(time.Millisecond))
		if !sleep(ctx, d) {
			return ctx.Err()
		}
	}
}

// sleepOrWake waits d, until ctx is done, or until an uplink comes up (wakeUp), and reports
// whether it was not cut short by ctx.
func (c *Client) sleepOrWake(ctx context.Context, d time.Duration) bool {
	select {
	case <-c.wake: // an uplink that came up before this wait, while a session ran
	default:
	}
	t := time.NewTimer(d)
	defer t.Stop()
	select {
	case <-ctx.Done():
		return false
	case <-t.C:
	case <-c.wake:
	}
	return true
}

// wakeUp cuts the current retry wait short.
func (c *Client) wakeUp() {
	select {
	case c.wake <- struct{}{}:
	default:
	}
}

// hasUsablePath reports whether one of s's paths is usable now.
func (c *Client) hasUsablePath(s *Session) bool {
	now := c.now()
	for _, p := range s.pathList() {
		p.mu.Lock()
		ok := p.usableLocked(now)
		p.mu.Unlock()
		if ok {
			return true
		}
	}
	return false
}

// Send sends a batch of inner packets (SendBatch's form) on the current session, or counts
// them as TxNoSession between sessions. One goroutine at a time may call it: the TUN
// reader, or the library's writer.
func (c *Client) Send(bufs [][]byte, sizes []int, n int) {
	s := c.Session()
	if s == nil {
		c.counters.TxNoSession.Add(uint64(n))
		return
	}
	s.SendBatch(bufs, sizes, n)
}

// connect dials the server from the first uplink that works, runs the handshake and
// installs the new session with one path per uplink × server address.
func (c *Client) connect(ctx context.Context) error {
	cfg := c.config() // SetServer may change the server's settings meanwhile
	if cfg.ResolveEndpoint != nil {
		ep, err := cfg.ResolveEndpoint(ctx)
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
	s.newUplinkPaths = func(id uint8, name string) []*Path {
		c.mu.Lock()
		tier, conn := c.tiers[id], c.uplinks[id]
		c.mu.Unlock()
		out := make([]*Path, len(w.Addrs))
		for i, a := range w.Addrs {
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
