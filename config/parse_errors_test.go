package config

import (
	"errors"
	"fmt"
	"strings"
	"testing"
)

// TestParseErrors checks that each bad input is refused with an error naming the
// right line and field path. Each case edits a valid base file (clientYAML or
// serverYAML; see their line numbers there) with old->new replacements.
func TestParseErrors(t *testing.T) {
	const dsl = "  - name: dsl\n    interface: up1\n    address: 10.100.2.2\n"
	cases := []struct {
		name  string
		base  string
		edits []string // old, new, old, new, ...
		line  int
		field string
		msg   string
	}{
		{"unknown top-level key", clientYAML, []string{"peers:", "colour: blue\npeers:"}, 13, "colour", "unknown field"},
		{"unknown key in tun", clientYAML, []string{"uplinks:", "  mtux: 1400\nuplinks:"}, 5, "tun.mtux", "unknown field"},
		{"unknown key in uplink", clientYAML, []string{"    gateway: 10.100.1.1", "    gw: 10.100.1.1"}, 9, "uplinks[0].gw", "unknown field"},
		{"unknown key in peer", clientYAML, []string{"    endpoint:", "    port: 1\n    endpoint:"}, 16, "peers[0].port", "unknown field"},
		{"mtu wrong type", clientYAML, []string{"uplinks:", "  mtu: big\nuplinks:"}, 5, "tun.mtu", `expected an integer, got "big"`},
		{"while_down unknown", clientYAML, []string{"uplinks:", "  while_down: leak\nuplinks:"}, 5, "tun.while_down", `"leak" is not one of block, direct`},
		{"while_down direct on a server", serverYAML, []string{"listen:", "  while_down: direct\nlisten:"}, 5, "tun.while_down", "direct is for a client"},
		{"mtu too small", clientYAML, []string{"uplinks:", "  mtu: 100\nuplinks:"}, 5, "tun.mtu", "out of range 1280..9000"},
		{"fwmark zero", clientYAML, []string{"uplinks:", "  fwmark: 0\nuplinks:"}, 5, "tun.fwmark", "out of range 1..0xffffffff"},
		{"fwmark past 32 bits", serverYAML, []string{"listen:", "  fwmark: 0x100000000\nlisten:"}, 5, "tun.fwmark", "out of range 1..0xffffffff"},
		{"fwmark a string", clientYAML, []string{"uplinks:", "  fwmark: ca6c\nuplinks:"}, 5, "tun.fwmark", "expected an integer"},
		{"mtu huge", clientYAML, []string{"uplinks:", "  mtu: 99999999999999999999\nuplinks:"}, 5, "tun.mtu", "expected an integer"},
		{"version missing", clientYAML, []string{"version: 1\n", ""}, 1, "version", "required"},
		{"version 2", clientYAML, []string{"version: 1", "version: 2"}, 1, "version", "unsupported version 2"},
		{"version 2 beats unknown keys", clientYAML, []string{"version: 1", "newthing: x\nversion: 2"}, 2, "version", "unsupported version 2"},
		{"version as string", clientYAML, []string{"version: 1", `version: "1"`}, 1, "version", "expected an integer"},
		{"duplicate key", clientYAML, []string{"version: 1", "version: 1\nversion: 1"}, 2, "version", "duplicate key"},
		{"bad private key", clientYAML, []string{`private_key: "` + clientPriv + `"`, `private_key: "abc"`}, 2, "private_key", "bad key"},
		{"private key missing", clientYAML, []string{`private_key: "` + clientPriv + `"` + "\n", ""}, 1, "private_key", "required"},
		{"key and key file", clientYAML, []string{"tun:", "private_key_file: k\ntun:"}, 3, "private_key_file", "only one of"},
		{"log level", clientYAML, []string{"tun:", "log_level: loud\ntun:"}, 3, "log_level", `"loud" is not one of`},
		{"tun name too long", clientYAML, []string{"tun:", "tun:\n  name: averyveryverylongname"}, 4, "tun.name", "not an interface name"},
		{"tun name two patterns", clientYAML, []string{"tun:", "tun:\n  name: bt%d%d"}, 4, "tun.name", "not an interface name"},
		{"tun address not prefix", clientYAML, []string{"[10.77.0.2/24]", "[10.77.0.2]"}, 4, "tun.addresses[0]", "not an IP prefix"},
		{"tun addresses empty", clientYAML, []string{"[10.77.0.2/24]", "[]"}, 4, "tun.addresses", "at least one"},
		{"tun addresses not a list", clientYAML, []string{"[10.77.0.2/24]", "10.77.0.2/24"}, 4, "tun.addresses", "expected a list"},
		{"route host bits", clientYAML, []string{"uplinks:", "  routes: [10.78.0.0/24, 10.79.0.1/16]\nuplinks:"}, 5, "tun.routes[1]", "did you mean 10.79.0.0/16"},
		{"uplinks not a list", clientYAML, []string{"uplinks:\n", "uplinks: cable\nx:\n"}, 5, "uplinks", "expected a list"},
		{"uplink bad name", clientYAML, []string{"name: cable", "name: Cable"}, 6, "uplinks[0].name", "not a name"},
		{"uplink duplicate name", clientYAML, []string{"name: dsl", "name: cable"}, 10, "uplinks[1].name", `"cable" is already used by uplinks[0]`},
		{"uplink duplicate interface", clientYAML, []string{"interface: up1", "interface: up0"}, 11, "uplinks[1].interface", `"up0" is already used by uplinks[0]`},
		{"uplink duplicate address", clientYAML, []string{"address: 10.100.2.2", "address: 10.100.1.2"}, 12, "uplinks[1].address", "already used by uplinks[0]"},
		{"uplink bad address", clientYAML, []string{"10.100.1.2", "10.100.1.300"}, 8, "uplinks[0].address", "not an IP address"},
		{"uplink without interface or address", clientYAML, []string{dsl, "  - name: dsl\n    tier: backup\n"}, 10, "uplinks[1]", "set interface, address or both"},
		{"uplink gateway family", clientYAML, []string{"gateway: 10.100.1.1", "gateway: fe80::1"}, 9, "uplinks[0].gateway", "address family"},
		{"uplink reserved table", clientYAML, []string{"    address: 10.100.2.2", "    address: 10.100.2.2\n    table: 254"}, 13, "uplinks[1].table", "reserved"},
		{"uplink duplicate table", clientYAML, []string{"    address: 10.100.2.2", "    address: 10.100.2.2\n    table: 7350"}, 13, "uplinks[1].table", "already used by uplinks[0]"},
		{"table_base collides with an explicit table", clientYAML + "table_base: 99\n", []string{"    address: 10.100.2.2", "    address: 10.100.2.2\n    table: 99"}, 13, "uplinks[1].table", "already used by uplinks[0]"},
		{"table_base out of range", clientYAML + "table_base: -1\n", nil, 18, "table_base", "out of range"},
		{"table_base too high", clientYAML + "table_base: 2147483640\n", nil, 18, "table_base", "out of range"},
		{"table_base spans reserved tables", clientYAML + "table_base: 240\n", nil, 18, "table_base", "reserved"},
		{"table_base on a server", serverYAML + "table_base: 7350\n", nil, 14, "table_base", "only a client"},
		{"uplink tier", clientYAML, []string{"    address: 10.100.2.2", "    address: 10.100.2.2\n    tier: spare"}, 13, "uplinks[1].tier", `"spare" is not one of`},
		{"client peer without key", clientYAML, []string{`    public_key: "` + serverPub + `"` + "\n", ""}, 14, "peers[0].public_key", "required"},
		{"client peer without endpoint", clientYAML, []string{"    endpoint: 10.99.0.1:7350\n", ""}, 14, "peers[0].endpoint", "required on a client"},
		{"client peer bad key", clientYAML, []string{serverPub, "AAAA"}, 15, "peers[0].public_key", "bad key"},
		{"endpoint name without port", clientYAML, []string{"10.99.0.1:7350", "vpn.example.com"}, 16, "peers[0].endpoint", "not IP:port or name:port"},
		{"endpoint name port 0", clientYAML, []string{"10.99.0.1:7350", "vpn.example.com:0"}, 16, "peers[0].endpoint", `port "0" is not 1..65535`},
		{"endpoint name port name", clientYAML, []string{"10.99.0.1:7350", "vpn.example.com:https"}, 16, "peers[0].endpoint", "is not 1..65535"},
		{"endpoint name underscore", clientYAML, []string{"10.99.0.1:7350", "vpn_1.example.com:7350"}, 16, "peers[0].endpoint", "neither an IP address nor a host name"},
		{"endpoint name hyphen", clientYAML, []string{"10.99.0.1:7350", "-vpn.example.com:7350"}, 16, "peers[0].endpoint", "neither an IP address nor a host name"},
		{"endpoint bad IPv4 is no name", clientYAML, []string{"10.99.0.1:7350", "10.99.0.300:7350"}, 16, "peers[0].endpoint", "neither an IP address nor a host name"},
		{"endpoint IPv4 port range", clientYAML, []string{"10.99.0.1:7350", "10.99.0.1:70000"}, 16, "peers[0].endpoint", "is not 1..65535"},
		{"endpoint IPv6 without brackets", clientYAML, []string{"10.99.0.1:7350", "'2001:db8::1:7350'"}, 16, "peers[0].endpoint", "use [addr]:port"},
		{"gateway on a client", clientYAML + "gateway:\n  out: eth0\n", nil, 18, "gateway", "only a server"},
		{"gateway unknown key", serverYAML + "gateway:\n  masquerade: true\n", nil, 15, "gateway.masquerade", "unknown field"},
		{"gateway out is the tunnel", serverYAML + "gateway:\n  out: [eth0, bt0]\n", nil, 15, "gateway.out[1]", "the tunnel's own device"},
		{"gateway out twice", serverYAML + "gateway:\n  out: [eth0, eth0]\n", nil, 15, "gateway.out[1]", "already listed as gateway.out[0]"},
		{"gateway out bad name", serverYAML + "gateway:\n  out: a/b\n", nil, 15, "gateway.out", "not an interface name"},
		{"gateway forward family", serverYAML + "gateway:\n  forward: [ipv5]\n", nil, 15, "gateway.forward[0]", `"ipv5" is not one of ipv4, ipv6`},
		{"gateway forward empty", serverYAML + "gateway:\n  forward: []\n", nil, 15, "gateway.forward", "at least one"},
		{"gateway forward twice", serverYAML + "gateway:\n  forward: [ipv4, ipv4]\n", nil, 15, "gateway.forward[1]", "already listed"},
		{"gateway nat not forwarded", serverYAML + "gateway:\n  forward: [ipv4]\n  nat: [ipv6]\n", nil, 16, "gateway.nat[0]", "ipv6 is not forwarded"},
		{"gateway not a mapping", serverYAML + "gateway: true\n", nil, 14, "gateway", "expected a mapping"},
		{"endpoint without port", clientYAML, []string{"10.99.0.1:7350", "10.99.0.1"}, 16, "peers[0].endpoint", "not IP:port"},
		{"endpoint family differs from uplink", clientYAML, []string{"10.99.0.1:7350", "'[2001:db8::1]:7350'"}, 8, "uplinks[0].address", "other address family"},
		{"self peer", clientYAML, []string{serverPub, clientPub}, 15, "peers[0].public_key", "own public key"},
		{"allowed_ips missing", clientYAML, []string{"    allowed_ips: [10.77.0.0/24]\n", ""}, 14, "peers[0].allowed_ips", "at least one"},
		{"client with two peers", clientYAML, []string{"    allowed_ips: [10.77.0.0/24]\n", "    allowed_ips: [10.77.0.0/24]\n  - name: b\n    public_key: \"" + otherPub + "\"\n    endpoint: 10.99.0.2:1\n    allowed_ips: [10.1.0.0/16]\n"}, 13, "peers", "exactly one peer"},
		{"client and server", clientYAML, []string{"peers:", "listen:\n  port: 7350\npeers:"}, 13, "listen", "not both"},
		{"neither client nor server", serverYAML, []string{"listen:\n  addresses: [10.99.0.1]\n", ""}, 1, "", "neither uplinks (client) nor listen (server)"},
		{"empty listen is a server", serverYAML, []string{"listen:\n  addresses: [10.99.0.1]\n", "listen:\n", "    allowed_ips: [10.77.0.2/32]", "    allowed_ips: [10.77.0.2/32]\n    endpoint: 10.0.0.1:1"}, 10, "peers[0].endpoint", "have no endpoint"},
		{"server port range", serverYAML, []string{"  addresses: [10.99.0.1]", "  port: 70000"}, 6, "listen.port", "out of range 1..65535"},
		{"server wildcard address", serverYAML, []string{"[10.99.0.1]", "[0.0.0.0]"}, 6, "listen.addresses[0]", "leave addresses empty"},
		{"server peer with endpoint", serverYAML, []string{"    allowed_ips: [10.77.0.2/32]", "    allowed_ips: [10.77.0.2/32]\n    endpoint: 10.0.0.1:1"}, 11, "peers[0].endpoint", "have no endpoint"},
		{"server overlapping allowed_ips", serverYAML, []string{"[10.77.0.3/32]", "[10.77.0.0/24]"}, 13, "peers[1].allowed_ips[0]", "overlaps 10.77.0.2/32 of peers[0] (client)"},
		{"server duplicate peer key", serverYAML, []string{otherPub, clientPub}, 12, "peers[1].public_key", "already used by peers[0]"},
		{"server duplicate peer name", serverYAML, []string{"name: other", "name: client"}, 11, "peers[1].name", "already used by peers[0]"},
		{"scheduler", serverYAML, []string{"peers:", "scheduler: fast\npeers:"}, 7, "scheduler", `"fast" is not one of`},
		{"first error in file order", clientYAML, []string{"interface: up1", "interface: up0", "peers:", "scheduler: fast\npeers:"}, 11, "uplinks[1].interface", "already used"},
		{"alias", clientYAML, []string{"[10.77.0.2/24]", "&a [10.77.0.2/24]\n  routes: *a"}, 4, "tun.addresses", "anchors are not supported"},
		{"merge key", serverYAML, []string{"listen:\n  addresses: [10.99.0.1]", "listen:\n  <<: {port: 1}"}, 6, "listen", "keys must be plain strings"},
		{"syntax error", clientYAML, []string{"tun:\n", "tun: a: b\n"}, 3, "", "invalid YAML: mapping values are not allowed"},
		{"tab indentation", clientYAML, []string{"  addresses: [10.77.0.2/24]", "\taddresses: [10.77.0.2/24]"}, 4, "", "invalid YAML"},
		{"two documents", clientYAML, []string{"peers:", "---\npeers:"}, 13, "", "one YAML document"},
		{"not a mapping", "- a\n- b\n", nil, 1, "", "expected a mapping"},
	}
	for _, tc := range cases {
		t.Run(tc.name, func(t *testing.T) {
			text := tc.base
			for i := 0; i+1 < len(tc.edits); i += 2 {
				if n := strings.Count(text, tc.edits[i]); n != 1 {
					t.Fatalf("edit %q matches %d times, want 1", tc.edits[i], n)
				}
				text = strings.Replace(text, tc.edits[i], tc.edits[i+1], 1)
			}
			_, err := Parse("test.yaml", []byte(text))
			if err == nil {
				t.Fatalf("Parse succeeded, want error\n%s", text)
			}
			var ce *Error
			if !errors.As(err, &ce) {
				t.Fatalf("error %T is not *Error: %v", err, err)
			}
			prefix := fmt.Sprintf("test.yaml:%d: ", tc.line)
			if tc.field != "" {
				prefix += tc.field + ": "
			}
			msg := err.Error()
			if !strings.HasPrefix(msg, prefix) || !strings.Contains(msg, tc.msg) || strings.Contains(msg, "\n") {
				t.Errorf("error %q\nwant one line starting %q containing %q", msg, prefix, tc.msg)
			}
		})
	}
}

func TestEmptyFile(t *testing.T) {
	for _, tc := range []struct{ name, text string }{
		{"empty", ""},
		{"comment only", "# nothing\n"},
	} {
		t.Run(tc.name, func(t *testing.T) {
			_, err := Parse("e.yaml", []byte(tc.text))
			if err == nil || !strings.HasPrefix(err.Error(), "e.yaml: ") {
				t.Fatalf("got %v, want an error naming e.yaml", err)
			}
		})
	}
}
