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
	// unreachable server. It is also called while every path of the session has failed
	// (follow.go): an answer other than the session's address ends the session, and a
	// new one is opened to the new address. The client makes one call at a time.
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
	// allFailed (cap 1): every path of the session has just failed (followName);
	// resolveMu serializes the calls of ResolveEndpoint.
	allFailed chan struct{}
	resolveMu sync.Mutex
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
		wake: make(chan struct{}, 1), changed: make(chan struct{}, 1), allFailed: make(chan struct{}, 1)}
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
