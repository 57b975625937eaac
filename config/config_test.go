package config

import (
	"errors"
	"log/slog"
	"net/netip"
	"os"
	"path/filepath"
	"reflect"
	"strings"
	"testing"

	"github.com/bondtun/bondtun/crypto"
)

// Demo keys (also in configs/). Public knowledge; tests only.
const (
	clientPriv = "J/DdsyCDTAQBOGRTyiaM7lMsmBby6yMtqJ0hB+HNoGg="
	clientPub  = "Tk4Lh+uLFGgRTAR4qQ8EUHQhKR1oGgMm2exjMFj1vVo="
	serverPriv = "dzX6GOvAXtlXf9KUBK6b+vJp9CX3upsRvDlhNjt8DYA="
	serverPub  = "ndeZ8zsM+51YbbCCrnJMDOy+Y4ISDlw4Oi8ELyGIh3w="
	otherPub   = "JWlS7b1hKJ9iEoRnE+Tot17Q3/vG+CXBZ2UsXPAyk3U="
)

// clientYAML is a minimal valid client; line numbers matter to TestParseErrors.
const clientYAML = `version: 1
private_key: "` + clientPriv + `"
tun:
  addresses: [10.77.0.2/24]
uplinks:
  - name: cable
    interface: up0
    address: 10.100.1.2
    gateway: 10.100.1.1
  - name: dsl
    interface: up1
    address: 10.100.2.2
peers:
  - name: server
    public_key: "` + serverPub + `"
    endpoint: 10.99.0.1:7350
    allowed_ips: [10.77.0.0/24]
`

// serverYAML is a minimal valid server.
const serverYAML = `version: 1
private_key: "` + serverPriv + `"
tun:
  addresses: [10.77.0.1/24]
listen:
  addresses: [10.99.0.1]
peers:
  - name: client
    public_key: "` + clientPub + `"
    allowed_ips: [10.77.0.2/32]
  - name: other
    public_key: "` + otherPub + `"
    allowed_ips: [10.77.0.3/32]
`

func mustPub(t testing.TB, s string) crypto.PublicKey {
	t.Helper()
	k, err := crypto.ParsePublicKey(s)
	if err != nil {
		t.Fatal(err)
	}
	return k
}

func mustPriv(t testing.TB, s string) crypto.PrivateKey {
	t.Helper()
	k, err := crypto.ParsePrivateKey(s)
	if err != nil {
		t.Fatal(err)
	}
	return k
}

// TestLoadConfigs loads every example config (configs/*.yaml): they are documentation and must
// never rot.
func TestLoadConfigs(t *testing.T) {
	files, err := filepath.Glob(filepath.Join("..", "configs", "*.yaml"))
	if err != nil {
		t.Fatal(err)
	}
	if len(files) < 4 {
		t.Fatalf("found %d YAML files in configs/, want at least 4", len(files))
	}
	for _, f := range files {
		t.Run(filepath.Base(f), func(t *testing.T) {
			if _, err := Load(f); err != nil {
				t.Fatal(err)
			}
		})
	}
}

func TestLoadDemo(t *testing.T) {
	cl, err := Load("../configs/client.yaml")
	if err != nil {
		t.Fatal(err)
	}
	sv, err := Load("../configs/server.yaml")
	if err != nil {
		t.Fatal(err)
	}
	checks := []struct {
		name      string
		got, want any
	}{
		{"client is client", cl.IsClient(), true},
		{"server is not client", sv.IsClient(), false},
		{"client mtu", cl.MTU(), 1440},
		{"server mtu", sv.MTU(), 1440},
		{"client uplink 1", cl.Uplinks[1], Uplink{Name: "dsl", Interface: "up1",
			Address: netip.MustParseAddr("10.100.2.2"), Gateway: netip.MustParseAddr("10.100.2.1"),
			Table: DefaultTableBase + 1, Tier: TierPrimary}},
		{"client endpoint", cl.Peers[0].Endpoint, netip.MustParseAddrPort("10.99.0.1:7350")},
		{"server listen", *sv.Listen, Listen{Port: 7350, Addresses: []netip.Addr{netip.MustParseAddr("10.99.0.1")}}},
		{"keys pair up: client pins server", cl.Peers[0].PublicKey, sv.PrivateKey.Public()},
		{"keys pair up: server pins client", sv.Peers[0].PublicKey, cl.PrivateKey.Public()},
		{"tun address", cl.TUN.Addresses[0], netip.MustParsePrefix("10.77.0.2/24")},
		{"server tun address", sv.TUN.Addresses[0], netip.MustParsePrefix("10.77.0.1/24")},
	}
	for _, c := range checks {
		if !reflect.DeepEqual(c.got, c.want) {
			t.Errorf("%s: got %v, want %v", c.name, c.got, c.want)
		}
	}
}

func TestMTU(t *testing.T) {
	v4 := netip.MustParseAddr("10.0.0.1")
	v6 := netip.MustParseAddr("2001:db8::1")
	ep4 := netip.MustParseAddrPort("10.99.0.1:7350")
	ep6 := netip.MustParseAddrPort("[2001:db8::2]:7350")
	cases := []struct {
		name string
		c    Config
		want int
	}{
		{"explicit", Config{TUN: TUN{MTU: 1300}, Peers: []Peer{{Endpoint: ep4}}}, 1300},
		{"client v4 endpoint, interface-only uplinks", Config{Uplinks: []Uplink{{Interface: "up0"}}, Peers: []Peer{{Endpoint: ep4}}}, 1440},
		{"client v6 endpoint", Config{Uplinks: []Uplink{{Interface: "up0"}}, Peers: []Peer{{Endpoint: ep6}}}, 1420},
		{"client v6 uplink address", Config{Uplinks: []Uplink{{Address: v6}}, Peers: []Peer{{Endpoint: ep4}}}, 1420},
		{"client v4 mapped endpoint", Config{Peers: []Peer{{Endpoint: netip.MustParseAddrPort("[::ffff:10.0.0.1]:1")}}}, 1440},
		{"server v4 listen", Config{Listen: &Listen{Addresses: []netip.Addr{v4}}}, 1440},
		{"server mixed listen", Config{Listen: &Listen{Addresses: []netip.Addr{v4, v6}}}, 1420},
		{"server wildcard", Config{Listen: &Listen{}}, 1420},
		{"nothing known", Config{}, 1420},
	}
	for _, tc := range cases {
		t.Run(tc.name, func(t *testing.T) {
			if got := tc.c.MTU(); got != tc.want {
				t.Errorf("MTU() = %d, want %d", got, tc.want)
			}
		})
	}
}

func TestIsClient(t *testing.T) {
	cases := []struct {
		name string
		c    Config
		want bool
	}{
		{"uplinks", Config{Uplinks: []Uplink{{Name: "a"}}}, true},
		{"listen", Config{Listen: &Listen{}}, false},
		{"both", Config{Uplinks: []Uplink{{Name: "a"}}, Listen: &Listen{}}, false},
		{"neither", Config{}, false},
	}
	for _, tc := range cases {
		t.Run(tc.name, func(t *testing.T) {
			if got := tc.c.IsClient(); got != tc.want {
				t.Errorf("IsClient() = %v, want %v", got, tc.want)
			}
		})
	}
}

func TestPrivateKeyFile(t *testing.T) {
	dir := t.TempDir()
	write := func(name, text string, mode os.FileMode) {
		if err := os.WriteFile(filepath.Join(dir, name), []byte(text), mode); err != nil {
			t.Fatal(err)
		}
		if err := os.Chmod(filepath.Join(dir, name), mode); err != nil { // umask-proof
			t.Fatal(err)
		}
	}
	write("ok.key", clientPriv+"\n", 0o600)
	write("loose.key", clientPriv, 0o644)
	write("bad.key", "not a key\n", 0o600)
	if err := os.Mkdir(filepath.Join(dir, "sub"), 0o700); err != nil {
		t.Fatal(err)
	}
	keyLine := `private_key: "` + clientPriv + `"`
	cases := []struct {
		name   string
		value  string // private_key_file value; relative to dir
		errMsg string // substring of the error, "" for success
	}{
		{"relative", "ok.key", ""},
		{"absolute", filepath.Join(dir, "ok.key"), ""},
		{"loose permissions load (up refuses them)", "loose.key", ""},
		{"bad key", "bad.key", "bad key"},
		{"missing file", "nope.key", "no such file"},
		{"directory", "sub", "not a regular file"},
	}
	for _, tc := range cases {
		t.Run(tc.name, func(t *testing.T) {
			text := strings.Replace(clientYAML, keyLine, "private_key_file: "+tc.value, 1)
			c, err := Parse(filepath.Join(dir, "c.yaml"), []byte(text))
			if tc.errMsg != "" {
				if err == nil || !strings.Contains(err.Error(), tc.errMsg) ||
					!strings.Contains(err.Error(), "c.yaml:2: private_key_file: ") {
					t.Fatalf("got %v, want error at c.yaml:2 containing %q", err, tc.errMsg)
				}
				return
			}
			if err != nil {
				t.Fatal(err)
			}
			if c.PrivateKey != mustPriv(t, clientPriv) {
				t.Error("wrong key loaded")
			}
		})
	}
}

func TestErrorText(t *testing.T) {
	cause := errors.New("cause")
	cases := []struct {
		name string
		err  *Error
		want string
	}{
		{"full", &Error{File: "c.yaml", Line: 3, Field: "tun.mtu", Msg: "bad"}, "c.yaml:3: tun.mtu: bad"},
		{"no line", &Error{File: "c.yaml", Field: "tun.mtu", Msg: "bad"}, "c.yaml: tun.mtu: bad"},
		{"no field", &Error{File: "c.yaml", Line: 1, Msg: "bad"}, "c.yaml:1: bad"},
		{"no file", &Error{Field: "tun.mtu", Msg: "bad", Err: cause}, "tun.mtu: bad"},
		{"control characters escaped", &Error{File: "c.yaml", Line: 2, Field: "a\nb", Msg: "unknown field"}, `c.yaml:2: a\x0ab: unknown field`},
	}
	for _, tc := range cases {
		t.Run(tc.name, func(t *testing.T) {
			if got := tc.err.Error(); got != tc.want {
				t.Errorf("got %q, want %q", got, tc.want)
			}
		})
	}
	if !errors.Is(cases[3].err, cause) {
		t.Error("Unwrap does not reach the cause")
	}
}

func TestLogLevels(t *testing.T) {
	for name, want := range logLevels {
		t.Run(name, func(t *testing.T) {
			c, err := Parse("c.yaml", []byte(clientYAML+"log_level: "+name+"\n"))
			if err != nil {
				t.Fatal(err)
			}
			if c.LogLevel != want {
				t.Errorf("LogLevel = %v, want %v", c.LogLevel, want)
			}
		})
	}
	c, err := Parse("c.yaml", []byte(clientYAML))
	if err != nil {
		t.Fatal(err)
	}
	if c.LogLevel != slog.LevelInfo {
		t.Errorf("default LogLevel = %v, want info", c.LogLevel)
	}
}

func TestLoadMissingFile(t *testing.T) {
	_, err := Load(filepath.Join(t.TempDir(), "none.yaml"))
	if !errors.Is(err, os.ErrNotExist) {
		t.Fatalf("got %v, want ErrNotExist", err)
	}
}
