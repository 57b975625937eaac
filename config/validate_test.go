package config

import (
	"errors"
	"log/slog"
	"math/rand/v2"
	"net/netip"
	"reflect"
	"regexp"
	"strings"
	"testing"

	"github.com/bondtun/bondtun/crypto"
)

// validClient builds a populated, valid client config in Go (no line numbers).
func validClient(t *testing.T) *Config {
	c := &Config{
		Path:       "go",
		Version:    1,
		PrivateKey: mustPriv(t, clientPriv),
		TUN:        TUN{Addresses: []netip.Prefix{netip.MustParsePrefix("10.77.0.2/24")}},
		Uplinks: []Uplink{
			{Name: "cable", Interface: "up0", Address: netip.MustParseAddr("10.100.1.2"), Gateway: netip.MustParseAddr("10.100.1.1")},
			{Name: "dsl", Interface: "up1"},
		},
		Peers: []Peer{{Name: "server", PublicKey: mustPub(t, serverPub),
			Endpoint: netip.MustParseAddrPort("10.99.0.1:7350"), AllowedIPs: []netip.Prefix{netip.MustParsePrefix("10.77.0.0/24")}}},
	}
	populate(c)
	return c
}

func validServer(t *testing.T) *Config {
	c := &Config{
		Path:       "go",
		Version:    1,
		PrivateKey: mustPriv(t, serverPriv),
		TUN:        TUN{Addresses: []netip.Prefix{netip.MustParsePrefix("10.77.0.1/24")}},
		Listen:     &Listen{},
		Peers: []Peer{
			{Name: "a", PublicKey: mustPub(t, clientPub), AllowedIPs: []netip.Prefix{netip.MustParsePrefix("10.77.0.2/32")}},
			{Name: "b", PublicKey: mustPub(t, otherPub), AllowedIPs: []netip.Prefix{netip.MustParsePrefix("fd00::/64")}},
		},
	}
	populate(c)
	return c
}

func TestValidate(t *testing.T) {
	cases := []struct {
		name   string
		server bool
		mutate func(c *Config)
		field  string // "" with msg "" means valid
		msg    string
	}{
		{"valid client", false, func(c *Config) {}, "", ""},
		{"valid server", true, func(c *Config) {}, "", ""},
		{"kernel pattern tun name", false, func(c *Config) { c.TUN.Name = "bt%d" }, "", ""},
		{"default routes", false, func(c *Config) {
			c.TUN.Routes = []netip.Prefix{netip.MustParsePrefix("0.0.0.0/0"), netip.MustParsePrefix("::/0")}
		}, "", ""},
		{"version 0", false, func(c *Config) { c.Version = 0 }, "version", "required"},
		{"version 3", false, func(c *Config) { c.Version = 3 }, "version", "unsupported"},
		{"no key", false, func(c *Config) { c.PrivateKey = crypto.PrivateKey{} }, "private_key", "required"},
		{"odd log level", false, func(c *Config) { c.LogLevel = slog.Level(3) }, "log_level", "not one of"},
		{"scheduler", false, func(c *Config) { c.Scheduler = "rr" }, "scheduler", "not one of"},
		{"tun name dotdot", false, func(c *Config) { c.TUN.Name = ".." }, "tun.name", "not an interface name"},
		{"tun name slash", false, func(c *Config) { c.TUN.Name = "a/b" }, "tun.name", "not an interface name"},
		{"tun pattern only", false, func(c *Config) { c.TUN.Name = "%d" }, "tun.name", "not an interface name"},
		{"no tun address", false, func(c *Config) { c.TUN.Addresses = nil }, "tun.addresses", "at least one"},
		{"duplicate tun address", false, func(c *Config) {
			c.TUN.Addresses = append(c.TUN.Addresses, netip.MustParsePrefix("10.77.0.2/16"))
		}, "tun.addresses[1]", "already used by tun.addresses[0]"},
		{"mtu high", false, func(c *Config) { c.TUN.MTU = 9001 }, "tun.mtu", "out of range"},
		{"tun table main", false, func(c *Config) { c.TUN.Table = 254 }, "tun.table", "reserved by the kernel"},
		{"tun table negative", true, func(c *Config) { c.TUN.Table = -1 }, "tun.table", "out of range"},
		{"tun table is an uplink's", false, func(c *Config) { c.TUN.Table = c.Uplinks[1].Table }, "uplinks[1].table", "the tunnel's routes' (tun.table)"},
		{"duplicate route", false, func(c *Config) {
			c.TUN.Routes = []netip.Prefix{netip.MustParsePrefix("10.1.0.0/16"), netip.MustParsePrefix("10.1.0.0/16")}
		}, "tun.routes[1]", "already listed"},
		{"17 uplinks", false, func(c *Config) {
			c.Uplinks = nil
			for i := range 17 {
				c.Uplinks = append(c.Uplinks, Uplink{Name: string(rune('a' + i)), Interface: "eth" + string(rune('a'+i))})
			}
			populate(c)
		}, "uplinks[16]", "at most 16"},
		{"uplink name too long", false, func(c *Config) { c.Uplinks[0].Name = strings.Repeat("a", 33) }, "uplinks[0].name", "not a name"},
		{"uplink interface bad", false, func(c *Config) { c.Uplinks[1].Interface = "eth 0" }, "uplinks[1].interface", "not an interface name"},
		{"uplink multicast address", false, func(c *Config) { c.Uplinks[1].Address = netip.MustParseAddr("224.0.0.1") }, "uplinks[1].address", "not a unicast"},
		{"uplink gateway is own address", false, func(c *Config) { c.Uplinks[0].Gateway = c.Uplinks[0].Address }, "uplinks[0].gateway", "own address"},
		{"uplink table negative", false, func(c *Config) { c.Uplinks[0].Table = -1 }, "uplinks[0].table", "out of range"},
		{"uplink tier", false, func(c *Config) { c.Uplinks[0].Tier = "Primary" }, "uplinks[0].tier", "not one of"},
		{"client zero peers", false, func(c *Config) { c.Peers = nil }, "peers", "exactly one"},
		{"client endpoint port 0", false, func(c *Config) { c.Peers[0].Endpoint = netip.MustParseAddrPort("10.99.0.1:0") }, "peers[0].endpoint", "port 0"},
		{"client endpoint unspecified", false, func(c *Config) { c.Peers[0].Endpoint = netip.MustParseAddrPort("0.0.0.0:1") }, "peers[0].endpoint", "not a unicast"},
		{"allowed_ips host bits", false, func(c *Config) { c.Peers[0].AllowedIPs[0] = netip.MustParsePrefix("10.77.0.1/24") }, "peers[0].allowed_ips[0]", "did you mean 10.77.0.0/24"},
		{"peer name bad", false, func(c *Config) { c.Peers[0].Name = "a b" }, "peers[0].name", "not a name"},
		{"server no peers", true, func(c *Config) { c.Peers = nil }, "peers", "at least one"},
		{"server port", true, func(c *Config) { c.Listen.Port = 65536 }, "listen.port", "out of range"},
		{"server duplicate listen address", true, func(c *Config) {
			a := netip.MustParseAddr("10.99.0.1")
			c.Listen.Addresses = []netip.Addr{a, a}
		}, "listen.addresses[1]", "already listed"},
		{"server overlap v6", true, func(c *Config) {
			c.Peers[0].AllowedIPs = append(c.Peers[0].AllowedIPs, netip.MustParsePrefix("fd00::1/128"))
		}, "peers[1].allowed_ips[0]", "overlaps fd00::1/128 of peers[0] (a)"},
		{"server self peer", true, func(c *Config) { c.Peers[1].PublicKey = c.PrivateKey.Public() }, "peers[1].public_key", "own public key"},
		{"server no listen and no uplinks", true, func(c *Config) { c.Listen = nil }, "", "neither"},
	}
	for _, tc := range cases {
		t.Run(tc.name, func(t *testing.T) {
			c := validClient(t)
			if tc.server {
				c = validServer(t)
			}
			tc.mutate(c)
			before := *c
			err := validate(c)
			if !reflect.DeepEqual(before, *c) {
				t.Error("validate modified the config")
			}
			if tc.field == "" && tc.msg == "" {
				if err != nil {
					t.Fatalf("want valid, got %v", err)
				}
				return
			}
			var ce *Error
			if !errors.As(err, &ce) {
				t.Fatalf("got %v, want *Error", err)
			}
			if ce.Field != tc.field || !strings.Contains(ce.Msg, tc.msg) || ce.Line != 0 || ce.File != "go" {
				t.Errorf("got %+v, want field %q, msg containing %q, no line", ce, tc.field, tc.msg)
			}
		})
	}
}

// validPeerName is the regular expression ^[A-Za-z0-9_.-]{1,32}$, written as a loop.
func TestValidPeerNameIsTheRegexp(t *testing.T) {
	re := regexp.MustCompile(`^[A-Za-z0-9_.-]{1,32}$`)
	r := rand.New(rand.NewPCG(3, 4))
	alphabet := "aZ09_.-/ é\n\x00"
	for range 20000 {
		b := make([]byte, r.IntN(36))
		for i := range b {
			b[i] = alphabet[r.IntN(len(alphabet))]
		}
		if s := string(b); validPeerName(s) != re.MatchString(s) {
			t.Fatalf("validPeerName(%q) = %v", s, validPeerName(s))
		}
	}
}
