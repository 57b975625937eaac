package bond

import (
	"errors"
	"fmt"
	"log/slog"
	"net/netip"

	"github.com/bondtun/bondtun/session"
)

// DefaultMaxMessageSize is the default largest message: with bondtun's 60 bytes of
// overhead (IPv4, UDP, header, inner header, tag; docs/PROTOCOL.md) it fits a 1500-byte
// path MTU, as the daemon's default inner MTU does.
const DefaultMaxMessageSize = 1420

// MaxMessageSize is the largest Config.MaxMessageSize: the session layer's packet buffers.
const MaxMessageSize = session.MaxInnerMTU

// DefaultReceiveQueue is how many delivered messages a Conn holds for its reader by default.
const DefaultReceiveQueue = 4096

// Uplink is one local way out to the peer.
type Uplink struct {
	// Name labels the uplink in logs and Conn.Paths; empty: the address or interface.
	Name string
	// Addr is the source address to send from; zero: the kernel's choice, or with
	// Interface the interface's first global address of the listener's family, taken at
	// Dial (the uplink does not follow a later change of it).
	Addr netip.Addr
	// Interface, if set, binds the uplink's sockets to that interface (SO_BINDTODEVICE),
	// so its traffic leaves through it whatever the routing table says.
	Interface string
}

func (u Uplink) name() string {
	switch {
	case u.Name != "":
		return u.Name
	case u.Interface != "" && u.Addr.IsValid():
		return u.Interface + "/" + u.Addr.String()
	case u.Interface != "":
		return u.Interface
	case u.Addr.IsValid():
		return u.Addr.String()
	}
	return "default"
}

// Config is what Dial needs.
type Config struct {
	PrivateKey PrivateKey // this end's identity
	PeerKey    PublicKey  // the listener's public key: the only one accepted
	// Uplinks are the local ways out, one path per uplink and listener address; empty:
	// one uplink, the kernel's choice of source. At most 16.
	Uplinks []Uplink
	// MaxMessageSize bounds the messages written and read; zero: DefaultMaxMessageSize.
	MaxMessageSize int
	// ReceiveQueue is how many delivered messages wait for ReadMessage before newer ones
	// are dropped (and counted as lost); zero: DefaultReceiveQueue.
	ReceiveQueue int
	// Scheduler names the path scheduler (as the daemon's `scheduler` key); empty: the
	// default, earliest expected arrival.
	Scheduler string
	// Logger receives the session layer's log; nil: none.
	Logger *slog.Logger
}

// Peer is a client a Listener accepts.
type Peer struct {
	Name string    // for logs and Conn.Peer
	Key  PublicKey // the key its TLS handshake must prove
}

// ListenConfig is what Listen needs.
type ListenConfig struct {
	PrivateKey PrivateKey // this end's identity
	Peers      []Peer     // the only clients accepted
	// Addresses are the addresses to listen on and advertise to clients, one path end
	// each (a server with two uplinks lists both); empty: the address given to Listen.
	// At most 16.
	Addresses []netip.Addr
	// MaxMessageSize, ReceiveQueue, Scheduler and Logger: as in Config.
	MaxMessageSize int
	ReceiveQueue   int
	Scheduler      string
	Logger         *slog.Logger
}

// common are the settings both ends share, with their defaults applied.
type common struct {
	maxMessage int
	queue      int
	scheduler  string
	log        *slog.Logger
}

func newCommon(maxMessage, queue int, scheduler string, log *slog.Logger) (common, error) {
	c := common{maxMessage: maxMessage, queue: queue, scheduler: scheduler, log: log}
	if c.maxMessage == 0 {
		c.maxMessage = DefaultMaxMessageSize
	}
	if c.maxMessage < 1 || c.maxMessage > MaxMessageSize {
		return c, fmt.Errorf("bond: MaxMessageSize %d outside 1..%d", maxMessage, MaxMessageSize)
	}
	if c.queue == 0 {
		c.queue = DefaultReceiveQueue
	}
	if c.queue < 1 {
		return c, fmt.Errorf("bond: ReceiveQueue %d must be positive", queue)
	}
	if c.log == nil {
		c.log = slog.New(slog.DiscardHandler)
	}
	return c, nil
}

func (c *Config) validate() error {
	if c.PrivateKey.IsZero() {
		return errors.New("bond: Config.PrivateKey is not set")
	}
	if c.PeerKey == (PublicKey{}) {
		return errors.New("bond: Config.PeerKey is not set")
	}
	if len(c.Uplinks) > 16 {
		return fmt.Errorf("bond: at most 16 uplinks, have %d", len(c.Uplinks))
	}
	seen := map[string]bool{}
	for _, u := range c.Uplinks {
		n := u.name()
		if seen[n] {
			return fmt.Errorf("bond: two uplinks named %q", n)
		}
		seen[n] = true
	}
	return nil
}

func (c *ListenConfig) validate() error {
	if c.PrivateKey.IsZero() {
		return errors.New("bond: ListenConfig.PrivateKey is not set")
	}
	if len(c.Peers) == 0 {
		return errors.New("bond: ListenConfig.Peers is empty: no client could connect")
	}
	names := map[string]bool{}
	keys := map[PublicKey]bool{}
	for _, p := range c.Peers {
		if p.Key == (PublicKey{}) {
			return fmt.Errorf("bond: peer %q has no key", p.Name)
		}
		if names[p.Name] || keys[p.Key] {
			return fmt.Errorf("bond: peer %q (or its key) is listed twice", p.Name)
		}
		names[p.Name], keys[p.Key] = true, true
	}
	if len(c.Addresses) > 16 {
		return fmt.Errorf("bond: at most 16 addresses, have %d", len(c.Addresses))
	}
	return nil
}
