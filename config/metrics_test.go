package config

import (
	"net/netip"
	"strings"
	"testing"
)

func TestMetricsListen(t *testing.T) {
	good := []struct{ in, want string }{
		{"127.0.0.1:9725", "127.0.0.1:9725"},
		{"0.0.0.0:9725", "0.0.0.0:9725"},
		{"[::1]:9725", "[::1]:9725"},
		{"[::]:80", "[::]:80"},
		{"[::ffff:10.0.0.1]:9725", "10.0.0.1:9725"}, // unmapped, one form per address
		{"10.77.0.1:65535", "10.77.0.1:65535"},
	}
	for _, tc := range good {
		for _, base := range []string{clientYAML, serverYAML} {
			c, err := Parse("m.yaml", []byte(base+"metrics:\n  listen: \""+tc.in+"\"\n"))
			if err != nil {
				t.Errorf("%s: %v", tc.in, err)
				continue
			}
			if c.Metrics == nil || c.Metrics.Listen != netip.MustParseAddrPort(tc.want) {
				t.Errorf("%s: Metrics = %+v, want listen %s", tc.in, c.Metrics, tc.want)
			}
		}
	}
	line := strings.Count(clientYAML, "\n") + 2 // the line of "listen:"
	bad := []struct{ name, body, field, msg string }{
		{"no port", "  listen: 127.0.0.1", "metrics.listen", `"127.0.0.1" is not IP:port`},
		{"no address", `  listen: ":9725"`, "metrics.listen", `no address: use 127.0.0.1:9725`},
		{"name", "  listen: localhost:9725", "metrics.listen", `"localhost": host must be an IP literal`},
		{"port range", "  listen: 127.0.0.1:65536", "metrics.listen", `port "65536" is not a number in 1..65535`},
		{"port name", "  listen: 127.0.0.1:http", "metrics.listen", `port "http" is not a number`},
		{"port 0", "  listen: 127.0.0.1:0", "metrics.listen", "port 0"},
		{"ipv6 unbracketed", "  listen: ::1:9725", "metrics.listen", "is not IP:port"},
		{"zone", `  listen: "[fe80::1%eth0]:9725"`, "metrics.listen", "zones are not supported"},
		{"multicast", "  listen: 224.0.0.1:9725", "metrics.listen", "not a unicast address"},
		{"broadcast", "  listen: 255.255.255.255:9725", "metrics.listen", "not a unicast address"},
		{"number", "  listen: 9725", "metrics.listen", `"9725" is not IP:port`},
		{"list", "  listen: [127.0.0.1:9725]", "metrics.listen", "expected a string, got a list"},
		{"unknown key", "  path: /metrics", "metrics.path", "unknown field"},
		{"listen missing", "  listen:", "metrics.listen", "required when metrics is set"},
		{"not a mapping", "", "metrics", "expected a mapping"},
	}
	for _, tc := range bad {
		text := clientYAML + "metrics:\n" + tc.body + "\n"
		if tc.body == "" {
			text = clientYAML + "metrics: 127.0.0.1:9725\n"
		}
		_, err := Parse("m.yaml", []byte(text))
		if err == nil {
			t.Errorf("%s: accepted", tc.name)
			continue
		}
		e, ok := err.(*Error)
		if !ok || e.Field != tc.field || !strings.Contains(e.Msg, tc.msg) {
			t.Errorf("%s: got %v, want %s: …%s…", tc.name, err, tc.field, tc.msg)
			continue
		}
		want := line
		if tc.name == "listen missing" {
			want-- // placed at "metrics:", the nearest key present
		}
		if tc.body != "" && e.Line != want {
			t.Errorf("%s: line %d, want %d (%v)", tc.name, e.Line, want, err)
		}
	}
}

// TestMetricsAbsent: without a metrics section there is no endpoint, and "metrics:"
// with nothing under it counts as absent, like every other key.
func TestMetricsAbsent(t *testing.T) {
	for _, text := range []string{clientYAML, clientYAML + "metrics:\n"} {
		c, err := Parse("m.yaml", []byte(text))
		if err != nil {
			t.Fatal(err)
		}
		if c.Metrics != nil {
			t.Errorf("Metrics = %+v, want nil", c.Metrics)
		}
	}
}

func TestValidateMetricsInGo(t *testing.T) {
	c := validServer(t)
	c.Metrics = &Metrics{}
	if err := validate(c); err == nil || !strings.Contains(err.Error(), "metrics.listen: required") {
		t.Errorf("empty Metrics: %v", err)
	}
	c.Metrics.Listen = netip.MustParseAddrPort("127.0.0.1:9725")
	if err := validate(c); err != nil {
		t.Errorf("valid Metrics: %v", err)
	}
}
