// Package config reads a bondtun side's YAML file into a typed, validated [Config].
//
// One file describes one side: a client (it has uplinks and exactly one peer with an
// endpoint) or a server (it has listen). The format is versioned (version: 1) and
// strict: unknown keys, wrong types, anchors/aliases and duplicate keys are refused, and
// every error is one line naming the file, the line and the field path, for example
//
//	configs/client.yaml:12: uplinks[1].interface: "up0" is already used by uplinks[0]
//
// Loading runs three steps: decode (the file's node tree, from a fast parser of the plain
// block style or else from yaml.v3, into typed structs; the tree is kept for the lines of
// fields in errors), [populate] (fill defaults for zero values) and validate (check every
// rule, report the first error in file order). The data plane only ever sees the
// resulting *Config; it never parses files.
package config

import (
	"fmt"
	"log/slog"
	"net/netip"
	"os"
	"strings"
	"unicode"

	"github.com/bondtun/bondtun/crypto"
)

// Version is the only configuration format version this build reads.
const Version = 1

// Defaults that populate applies to zero-valued fields, and limits that validate
// enforces.
const (
	DefaultTUNName   = "bt0"
	DefaultPort      = 7350
	DefaultScheduler = SchedulerEAT
	// DefaultTableBase numbers the uplinks' policy routing tables: uplink i gets table
	// TableBase+i (7350..7365), unless it sets its own. 7350 is bondtun's default port,
	// as wg-quick numbers its table after its port (51820), so the two never collide; it
	// is also clear of the traditional 1..252 range of /etc/iproute2/rt_tables and of
	// the tables other tools take by default (Tailscale 52, strongSwan 220).
	DefaultTableBase = 7350
	// DefaultTunnelTable (tun.table) holds the tunnel's routes, and DefaultFWMark
	// (tun.fwmark) marks the tunnel's own sockets, whose traffic the rules into that table
	// skip. 7349 (0x1cb5), just below the uplink tables, collides neither with wg-quick's
	// 51820 (0xca6c) nor with the marks of kube-proxy (0x4000, 0x8000) or Tailscale
	// (0x80000/0xff0000).
	DefaultTunnelTable = 7349
	DefaultFWMark      = 0x1cb5
	MaxUplinks         = 16
	MinMTU             = 1280
	MaxMTU             = 9000
	autoMTUIPv4Outer   = 1440 // 1500 - (20 IPv4 + 8 UDP + 16 header + 16 tag)
	autoMTUIPv6Outer   = 1420 // 1500 - (40 IPv6 + 8 UDP + 16 header + 16 tag)
	maxKeyFileSize     = 4096
	maxNameLen         = 32
	maxIfaceNameLen    = 15 // IFNAMSIZ - 1
)

// Scheduler names accepted in the scheduler field.
const (
	SchedulerEAT        = "eat"
	SchedulerDRR        = "drr"
	SchedulerLowLatency = "lowlatency"
)

// Tier says when an uplink carries traffic.
type Tier string

// Uplink tiers.
const (
	TierPrimary  Tier = "primary"  // carries traffic whenever it is alive (default)
	TierBackup   Tier = "backup"   // carries traffic only when no primary uplink is alive
	TierDisabled Tier = "disabled" // configured but never used
)

// Config is one side's configuration. Zero values of optional fields mean "default";
// after Load or Parse every default has been filled in, except TUN.MTU (0 = auto, see
// [Config.MTU]).
type Config struct {
	Path       string            // file the config came from, as given to Load/Parse
	Version    int               // format version; must be [Version]
	PrivateKey crypto.PrivateKey // this side's key (private_key or private_key_file); zero after LoadPublic
	LogLevel   slog.Level        // debug|info|warn|error; default info
	TUN        TUN
	Uplinks    []Uplink // client only, 1..16
	Listen     *Listen  // server only; nil on a client
	Peers      []Peer   // client: exactly 1; server: at least 1
	Scheduler  string   // eat|drr|lowlatency; default eat
	// TableBase (table_base) numbers the uplinks' policy routing tables (client only):
	// uplink i without its own table gets TableBase+i. Default DefaultTableBase; 0 on a
	// server.
	TableBase int
	// Gateway (gateway, server only) forwards the peers' traffic on to other networks
	// and masquerades it; nil: the server forwards nothing.
	Gateway *Gateway
	// Metrics configures the Prometheus endpoint; nil (no metrics section): none.
	Metrics *Metrics

	// SecretFile is the file that holds the private key: Path for an inline
	// private_key, else the private_key_file, resolved against Path's directory.
	// Empty for a Config built in Go. [CheckSecretPermissions] checks its mode.
	SecretFile string

	secretField string // "private_key" or "private_key_file", for errors
	tree        *node  // the file's tree, for the lines of fields in errors (line); nil if built in Go
}

// TUN configures the tunnel interface.
type TUN struct {
	// Name is the interface name; default "bt0". At most 15 characters of
	// [A-Za-z0-9_.-], or a kernel pattern with one "%d" such as "bt%d".
	Name string
	// Addresses are the interface's own addresses (host bits allowed); at least one.
	Addresses []netip.Prefix
	// MTU is the inner MTU, 1280..9000, or 0 for automatic (see [Config.MTU]).
	MTU int
	// Routes are extra prefixes routed into the tunnel; 0.0.0.0/0 and ::/0 are allowed.
	Routes []netip.Prefix
	// WhileDown is what a client whose Routes include a default route (whole-host mode)
	// does with that traffic while it has no session: [WhileDownBlock] (default) or
	// [WhileDownDirect].
	WhileDown WhileDown
	// Table (tun.table) is the routing table of this instance's own that holds the
	// routes into the tunnel; default DefaultTunnelTable.
	Table int
	// FWMark (tun.fwmark) is the firewall mark of the tunnel's own sockets (path and
	// control), whose traffic never uses the routes into the tunnel; default
	// DefaultFWMark.
	FWMark uint32
}

// WhileDown is tun.while_down.
type WhileDown string

// What a whole-host client does with its traffic while the tunnel is down.
const (
	// WhileDownBlock keeps the routes into the tunnel: the traffic is dropped there,
	// nothing leaves outside the tunnel (default).
	WhileDownBlock WhileDown = "block"
	// WhileDownDirect removes the tunnel's default routes while there is no session, so
	// the traffic goes out through the host's own default route, and adds them again
	// when a session is established.
	WhileDownDirect WhileDown = "direct"
)

// Uplink is one physical path on a client. At least one of Interface and Address is set.
type Uplink struct {
	Name      string     // unique, [a-z0-9_-]{1,32}
	Interface string     // network interface to bind to; empty if only Address is set
	Address   netip.Addr // source address to bind to; invalid (zero) if unset
	Gateway   netip.Addr // next hop; invalid (zero) means the route is "dev Interface"
	Table     int        // policy routing table; default TableBase + index
	Tier      Tier       // default TierPrimary
}

// Listen configures a server's control (TCP) and data (UDP) port.
type Listen struct {
	Port int // 1..65535; default 7350
	// Addresses to bind data sockets on and advertise. Empty means the wildcard
	// address, advertising the address the client connected to.
	Addresses []netip.Addr
}

// Peer is the other side of a tunnel.
type Peer struct {
	Name      string           // unique, [A-Za-z0-9_.-]{1,32}
	PublicKey crypto.PublicKey // pinned key of the peer
	// Endpoint is the server's address when the file gives an IP literal. A client
	// has it or EndpointName; a server's peers have neither.
	Endpoint netip.AddrPort
	// EndpointName is the server's "host:port" when the file names it by DNS name
	// (endpoint: vpn.example.com:7350); Endpoint is then zero. Loading never resolves
	// it: `up` does, at every connect (docs/GATEWAY.md).
	EndpointName string
	// AllowedIPs are the inner source prefixes the peer may send from; at least one,
	// and on a server no two peers' prefixes overlap.
	AllowedIPs []netip.Prefix
}

// Family is an IP version, as gateway.forward and gateway.nat name it.
type Family string

// Families.
const (
	IPv4 Family = "ipv4"
	IPv6 Family = "ipv6"
)

// Gateway is a server's forwarding of its peers' traffic (gateway:). See
// docs/GATEWAY.md for what `up` changes on the host for it.
type Gateway struct {
	// Out are the interfaces towards the other networks (out: eth0, or a list). Empty
	// means every interface but the tunnel's.
	Out []string
	// Forward are the families forwarded (the net.ipv4.ip_forward and
	// net.ipv6.conf.all.forwarding sysctls); default: the families of the peers'
	// allowed_ips.
	Forward []Family
	// NAT are the families whose peer traffic leaving through Out is masqueraded
	// behind Out's address, and shielded from connections opened from outside; a subset
	// of Forward, default Forward. nat: [] forwards without translating (routed).
	NAT []Family
}

// EndpointString is the peer's endpoint as the file gave it: the IP:port, or the
// host:port of a name; empty on a server's peer.
func (p Peer) EndpointString() string {
	if p.EndpointName != "" {
		return p.EndpointName
	}
	if p.Endpoint.IsValid() {
		return p.Endpoint.String()
	}
	return ""
}

// IsClient reports whether c describes a client (it has uplinks and no listen section).
func (c *Config) IsClient() bool {
	return len(c.Uplinks) > 0 && c.Listen == nil
}

// MTU returns the inner MTU to configure: TUN.MTU if set, else 1440 when every outer
// address this side knows of is IPv4 and 1420 otherwise (room for an IPv6 outer header).
// A client's outer addresses are its peer endpoint and uplink addresses; a server's
// are its listen addresses, and a wildcard listen counts as possibly IPv6. An endpoint
// given by name counts as of no family: the uplinks' addresses decide.
func (c *Config) MTU() int {
	if c.TUN.MTU != 0 {
		return c.TUN.MTU
	}
	var outer []netip.Addr
	if c.Listen != nil {
		if len(c.Listen.Addresses) == 0 {
			return autoMTUIPv6Outer
		}
		outer = append(outer, c.Listen.Addresses...)
	}
	for _, u := range c.Uplinks {
		if u.Address.IsValid() {
			outer = append(outer, u.Address)
		}
	}
	for _, p := range c.Peers {
		if p.Endpoint.IsValid() {
			outer = append(outer, p.Endpoint.Addr())
		}
	}
	if len(outer) == 0 {
		return autoMTUIPv6Outer
	}
	for _, a := range outer {
		if !a.Unmap().Is4() {
			return autoMTUIPv6Outer
		}
	}
	return autoMTUIPv4Outer
}

// Load reads, decodes, populates and validates the config file at path, private key
// included. Only `up` needs the key; everything else uses [LoadPublic].
func Load(path string) (*Config, error) {
	return load(path, true)
}

// LoadPublic is [Load] without the secret: private_key is not parsed and
// private_key_file is not opened (only recorded in SecretFile), so PrivateKey is
// zero. The rest is validated as by Load. `status`, `tier` and `down` use it: they
// need the device name and the tables, never the key.
func LoadPublic(path string) (*Config, error) {
	return load(path, false)
}

// LoadPrivate is [Load] for a command that is going to use the key (`up`, its reload):
// it refuses, as [CheckSecretPermissions] does, a key that group or others may read,
// and it checks a private_key_file's mode before it opens it, so a key file it refuses
// is never read.
func LoadPrivate(path string) (*Config, error) {
	data, err := os.ReadFile(path)
	if err != nil {
		return nil, fmt.Errorf("config: %w", err)
	}
	c, err := parse(path, data, readPrivateKeyFile, true)
	if err != nil {
		return nil, err
	}
	if err := CheckSecretPermissions(c); err != nil { // an inline key: the YAML's own mode
		return nil, err
	}
	return c, nil
}

func load(path string, secrets bool) (*Config, error) {
	data, err := os.ReadFile(path)
	if err != nil {
		return nil, fmt.Errorf("config: %w", err)
	}
	return parse(path, data, readKeyFile, secrets)
}

// Parse decodes, populates and validates data, the contents of the file at path. path
// names the file in errors and anchors a relative private_key_file, the only file
// Parse reads.
func Parse(path string, data []byte) (*Config, error) {
	return parse(path, data, readKeyFile, true)
}

// parse is Parse with the key file reader injected, so that fuzzing never opens
// files named by random input; secrets false leaves the private key out (LoadPublic).
func parse(path string, data []byte, readKey keyFileReader, secrets bool) (*Config, error) {
	c, err := decode(path, data, readKey, secrets)
	if err != nil {
		return nil, err
	}
	populate(c)
	if err := validate(c); err != nil {
		return nil, err
	}
	return c, nil
}

// Error is a configuration error tied to a place in a file. Its text is one line:
// "FILE:LINE: FIELD: MSG", leaving out the parts that are unknown.
type Error struct {
	File  string // path as given to Load or Parse
	Line  int    // 1-based line, 0 if unknown
	Field string // field path such as "uplinks[1].interface"; empty for the whole file
	Msg   string
	Err   error // underlying cause, if any
}

// Error returns the one-line text "FILE:LINE: FIELD: MSG". Control characters that
// came from the file (in a key or a path) are escaped so the text stays one line.
func (e *Error) Error() string {
	s := e.File
	if e.Line > 0 {
		s = fmt.Sprintf("%s:%d", s, e.Line)
	}
	if s != "" {
		s += ": "
	}
	if e.Field != "" {
		s += e.Field + ": "
	}
	return escapeControl(s + e.Msg)
}

func escapeControl(s string) string {
	if !strings.ContainsFunc(s, unicode.IsControl) {
		return s
	}
	var b strings.Builder
	for _, r := range s {
		if unicode.IsControl(r) {
			fmt.Fprintf(&b, "\\x%02x", r)
			continue
		}
		b.WriteRune(r)
	}
	return b.String()
}

// Unwrap returns the underlying cause.
func (e *Error) Unwrap() error { return e.Err }
