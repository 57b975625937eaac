package main

import (
	"context"
	"errors"
	"log/slog"
	"net/netip"
	"strings"
	"testing"
)

func addrs(s ...string) []netip.Addr {
	var out []netip.Addr
	for _, x := range s {
		out = append(out, netip.MustParseAddr(x))
	}
	return out
}

func TestPickAddr(t *testing.T) {
	for _, tc := range []struct {
		name           string
		answer, source []netip.Addr
		want           string // "" for none
	}{
		{"first of any family without sources", addrs("2001:db8::1", "192.0.2.1"), nil, "2001:db8::1"},
		{"IPv4 uplinks skip IPv6", addrs("2001:db8::1", "192.0.2.1"), addrs("10.100.1.2"), "192.0.2.1"},
		{"IPv6 uplinks skip IPv4", addrs("192.0.2.1", "2001:db8::1"), addrs("2001:db8:1::2"), "2001:db8::1"},
		{"mixed uplinks take the first", addrs("192.0.2.1", "2001:db8::1"), addrs("2001:db8:1::2", "10.1.1.1"), "192.0.2.1"},
		{"mapped is IPv4", addrs("::ffff:192.0.2.7"), addrs("10.100.1.2"), "192.0.2.7"},
		{"unusable skipped", addrs("0.0.0.0", "224.0.0.1", "192.0.2.9"), nil, "192.0.2.9"},
		{"no usable family", addrs("2001:db8::1"), addrs("10.100.1.2"), ""},
		{"empty answer", nil, nil, ""},
	} {
		got, ok := pickAddr(tc.answer, tc.source)
		if tc.want == "" {
			if ok {
				t.Errorf("%s: picked %v, want none", tc.name, got)
			}
			continue
		}
		if !ok || got != netip.MustParseAddr(tc.want) {
			t.Errorf("%s: got %v %v, want %s", tc.name, got, ok, tc.want)
		}
	}
}

// TestEndpointResolver checks that each call looks the name up again (the server may
// move), keeps the port, and reports a failure naming the host.
func TestEndpointResolver(t *testing.T) {
	answers := [][]netip.Addr{addrs("192.0.2.1"), addrs("2001:db8::1", "192.0.2.2"), nil}
	var asked []string
	lookup := func(ctx context.Context, host string) ([]netip.Addr, error) {
		if _, ok := ctx.Deadline(); !ok {
			t.Error("lookup without a deadline")
		}
		asked = append(asked, host)
		a := answers[0]
		answers = answers[1:]
		if a == nil {
			return nil, errors.New("no such host")
		}
		return a, nil
	}
	resolve := endpointResolver("vpn.example.com:7350", addrs("10.100.1.2"), lookup, slog.New(slog.DiscardHandler))
	for _, want := range []string{"192.0.2.1:7350", "192.0.2.2:7350"} {
		ep, err := resolve(context.Background())
		if err != nil || ep != netip.MustParseAddrPort(want) {
			t.Fatalf("resolve = %v, %v; want %s", ep, err, want)
		}
	}
	if _, err := resolve(context.Background()); err == nil || !strings.Contains(err.Error(), "vpn.example.com") || !strings.Contains(err.Error(), "no such host") {
		t.Fatalf("failed lookup: %v", err)
	}
	if strings.Join(asked, ",") != "vpn.example.com,vpn.example.com,vpn.example.com" {
		t.Errorf("asked %v", asked)
	}
}

// TestUplinkLookupLocalhost resolves "localhost" with the real resolver, which answers it
// from /etc/hosts (or, by RFC 6761, itself) without any network.
func TestUplinkLookupLocalhost(t *testing.T) {
	resolve := endpointResolver("localhost:7350", nil, uplinkLookup(addrs("10.100.1.2"), 0), slog.New(slog.DiscardHandler))
	ep, err := resolve(context.Background())
	if err != nil {
		t.Fatal(err)
	}
	if !ep.Addr().IsLoopback() || ep.Port() != 7350 {
		t.Fatalf("localhost resolved to %v", ep)
	}
}

func TestUplinkDialers(t *testing.T) {
	src := addrs("10.100.1.2", "2001:db8::2", "10.100.2.2")
	if d := uplinkDialers("udp", "127.0.0.53:53", src, 0); d != nil {
		t.Errorf("a name server on loopback got %d bound dialers", len(d))
	}
	d := uplinkDialers("udp", "192.0.2.53:53", src, 0x1cb5)
	if len(d) != 2 || d[0].LocalAddr.String() != "10.100.1.2:0" || d[1].LocalAddr.String() != "10.100.2.2:0" {
		t.Errorf("IPv4 name server: %v", d)
	}
	if len(d) > 0 && d[0].Control == nil {
		t.Error("a dialer of the name server does not mark its socket")
	}
	d = uplinkDialers("tcp", "[2001:db8::53]:53", src, 0)
	if len(d) != 1 || d[0].LocalAddr.String() != "[2001:db8::2]:0" || d[0].LocalAddr.Network() != "tcp" {
		t.Errorf("IPv6 name server over TCP: %v", d)
	}
}
