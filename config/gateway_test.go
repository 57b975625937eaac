package config

import (
	"net/netip"
	"reflect"
	"strings"
	"testing"
)

// TestEndpointName checks that a client's endpoint may be a DNS name, kept as written and
// never resolved, and that the auto MTU then follows the uplinks' addresses.
func TestEndpointName(t *testing.T) {
	for _, tc := range []struct {
		endpoint string
		want     string
		mtu      int
	}{
		{"vpn.example.com:7350", "vpn.example.com:7350", 1440},
		{"localhost:1", "localhost:1", 1440},
		{"VPN-1.Example.COM.:65535", "VPN-1.Example.COM.:65535", 1440},
		{"x1.example.123a:7350", "x1.example.123a:7350", 1440},
	} {
		text := strings.Replace(clientYAML, "10.99.0.1:7350", tc.endpoint, 1)
		c, err := Parse("test.yaml", []byte(text))
		if err != nil {
			t.Fatalf("%s: %v", tc.endpoint, err)
		}
		p := c.Peers[0]
		if p.EndpointName != tc.want || p.Endpoint.IsValid() || p.EndpointString() != tc.want {
			t.Errorf("%s: EndpointName %q, Endpoint %v, EndpointString %q", tc.endpoint, p.EndpointName, p.Endpoint, p.EndpointString())
		}
		if got := c.MTU(); got != tc.mtu {
			t.Errorf("%s: MTU() = %d, want %d (the uplinks are IPv4)", tc.endpoint, got, tc.mtu)
		}
	}
	// Without uplink addresses nothing tells the family of a named server: room for IPv6.
	text := strings.Replace(clientYAML, "10.99.0.1:7350", "vpn.example.com:7350", 1)
	text = strings.ReplaceAll(strings.ReplaceAll(text, "    address: 10.100.1.2\n", ""), "    address: 10.100.2.2\n", "")
	c, err := Parse("test.yaml", []byte(text))
	if err != nil {
		t.Fatal(err)
	}
	if got := c.MTU(); got != 1420 {
		t.Errorf("MTU() = %d, want 1420", got)
	}
	if c.Peers[0].EndpointString() != "vpn.example.com:7350" {
		t.Errorf("EndpointString() = %q", c.Peers[0].EndpointString())
	}
	lit, err := Parse("test.yaml", []byte(clientYAML))
	if err != nil {
		t.Fatal(err)
	}
	if got := lit.Peers[0].EndpointString(); got != "10.99.0.1:7350" {
		t.Errorf("literal EndpointString() = %q", got)
	}
}

func TestValidHostName(t *testing.T) {
	for s, want := range map[string]bool{
		"a": true, "localhost": true, "a-b.c": true, "example.com.": true, "1.example.com": true,
		"": false, ".": false, "a..b": false, "-a": false, "a-": false, "a_b": false, "a b": false,
		"10.0.0.300": false, "1.2.3": false, "123": false, "ä.com": false,
		strings.Repeat("a", 63) + ".com": true, strings.Repeat("a", 64) + ".com": false,
		strings.Repeat("a.", 125) + "abc": true, strings.Repeat("a.", 126) + "ab": false,
	} {
		if got := validHostName(s); got != want {
			t.Errorf("validHostName(%q) = %v, want %v", s, got, want)
		}
	}
}

// TestGatewayParse checks the gateway section's forms and defaults.
func TestGatewayParse(t *testing.T) {
	v6 := strings.Replace(serverYAML, "[10.77.0.3/32]", "[10.77.0.3/32, 'fd77::3/128']", 1)
	for _, tc := range []struct {
		name, base, section string
		want                *Gateway
	}{
		{"absent", serverYAML, "", nil},
		{"empty turns it on", serverYAML, "gateway:\n", &Gateway{Forward: []Family{IPv4}, NAT: []Family{IPv4}}},
		{"families from the peers", v6, "gateway:\n  out: eth0\n",
			&Gateway{Out: []string{"eth0"}, Forward: []Family{IPv4, IPv6}, NAT: []Family{IPv4, IPv6}}},
		{"out as a list", serverYAML, "gateway:\n  out: [eth0, wwan0]\n",
			&Gateway{Out: []string{"eth0", "wwan0"}, Forward: []Family{IPv4}, NAT: []Family{IPv4}}},
		{"IPv6 routed, IPv4 masqueraded", v6, "gateway:\n  nat: [ipv4]\n",
			&Gateway{Forward: []Family{IPv4, IPv6}, NAT: []Family{IPv4}}},
		{"no NAT at all", serverYAML, "gateway:\n  forward: [ipv4, ipv6]\n  nat: []\n",
			&Gateway{Forward: []Family{IPv4, IPv6}, NAT: []Family{}}},
	} {
		t.Run(tc.name, func(t *testing.T) {
			c, err := Parse("test.yaml", []byte(tc.base+tc.section))
			if err != nil {
				t.Fatal(err)
			}
			if !reflect.DeepEqual(c.Gateway, tc.want) {
				t.Fatalf("Gateway = %+v, want %+v", c.Gateway, tc.want)
			}
		})
	}
}

// TestGatewayValidate checks the rules on a Config built in Go.
func TestGatewayValidate(t *testing.T) {
	srv := validServer(t)
	srv.Gateway = &Gateway{Out: []string{"eth0"}}
	populate(srv)
	if err := validate(srv); err != nil {
		t.Fatalf("valid gateway: %v", err)
	}
	if want := []Family{IPv4, IPv6}; !reflect.DeepEqual(srv.Gateway.Forward, want) || !reflect.DeepEqual(srv.Gateway.NAT, want) {
		t.Errorf("defaults: forward %v nat %v, want %v", srv.Gateway.Forward, srv.Gateway.NAT, want)
	}
	srv.Gateway.NAT = []Family{"ipx"}
	if err := validate(srv); err == nil || !strings.Contains(err.Error(), `gateway.nat[0]: "ipx" is not one of`) {
		t.Errorf("bad nat family: %v", err)
	}
	cl := validClient(t)
	cl.Gateway = &Gateway{Forward: []Family{IPv4}, NAT: []Family{IPv4}}
	if err := validate(cl); err == nil || !strings.Contains(err.Error(), "only a server") {
		t.Errorf("gateway on a client: %v", err)
	}
	cl.Gateway = nil
	cl.Peers[0].EndpointName = "vpn.example.com:7350"
	if err := validate(cl); err == nil || !strings.Contains(err.Error(), "not both") {
		t.Errorf("endpoint and name: %v", err)
	}
	cl.Peers[0].Endpoint = netip.AddrPort{}
	if err := validate(cl); err != nil {
		t.Errorf("named endpoint: %v", err)
	}
	srv.Gateway = nil
	srv.Peers[0].EndpointName = "x.example:1"
	if err := validate(srv); err == nil || !strings.Contains(err.Error(), "have no endpoint") {
		t.Errorf("server peer with a named endpoint: %v", err)
	}
}
