package main

import (
	"net/netip"
	"reflect"
	"strings"
	"testing"

	"github.com/bondtun/bondtun/config"
	"github.com/bondtun/bondtun/tun"
	"github.com/bondtun/bondtun/tun/tuntest"
)

func loadVariant(t *testing.T, name string, replace ...string) *config.Config {
	t.Helper()
	cfg, err := config.Load(writeDemoVariant(t, name, replace...))
	if err != nil {
		t.Fatal(err)
	}
	return cfg
}

// TestRPFPlanFromConfig: the port, mark and IPv4 listen addresses; a server listening
// only on IPv6 needs nothing, one on the wildcard matches every local address.
func TestRPFPlanFromConfig(t *testing.T) {
	for _, tc := range []struct {
		listen string
		want   []netip.Addr
		v4     bool
	}{
		{"addresses: [10.99.0.1]", []netip.Addr{netip.MustParseAddr("10.99.0.1")}, true},
		{`addresses: [10.99.0.1, "2001:db8::1"]`, []netip.Addr{netip.MustParseAddr("10.99.0.1")}, true},
		{`addresses: ["2001:db8::1"]`, nil, false},
		{"addresses: []", nil, true},
	} {
		cfg := loadVariant(t, "server.yaml", "addresses: [10.99.0.1]", tc.listen)
		p, v4 := rpfPlan(cfg, "bt3")
		want := tun.RPFPlan{Device: "bt3", Mark: 0x1cb5, Port: 7350, Addresses: tc.want}
		if !reflect.DeepEqual(p, want) || v4 != tc.v4 {
			t.Errorf("%s: plan %+v, %v; want %+v, %v", tc.listen, p, v4, want, tc.v4)
		}
		if v4 {
			if err := p.Validate(); err != nil {
				t.Errorf("%s: %v", tc.listen, err)
			}
		}
	}
}

// TestCheckRPF: `check` says what `up` will do about strict filtering: nothing where it
// is loose or off, nothing on a client, the table and the sysctl on a server.
func TestCheckRPF(t *testing.T) {
	host := func(conf map[string]string) checkHost {
		h := fakeCheckHost(tuntest.New(), nil)
		h.rpFilter = func() (map[string]string, error) { return conf, nil }
		h.sysctl = func(string) (string, error) { return "0", nil }
		return h
	}
	strict := map[string]string{"all": "1", "default": "1", "lo": "0", "eth0": "0"}
	loose := map[string]string{"all": "2", "default": "1", "eth0": "1"}
	server := loadVariant(t, "server.yaml")
	client := loadVariant(t, "client.yaml")
	if got := checkRPF(server, host(loose)); len(got) != 0 {
		t.Errorf("loose: %v", got)
	}
	if got := checkRPF(server, fakeCheckHost(tuntest.New(), nil)); len(got) != 0 {
		t.Errorf("no reader: %v", got)
	}
	got := checkRPF(server, host(strict))
	if len(got) != 1 {
		t.Fatalf("server: %v", got)
	}
	if f := got[0]; tun.NFTInstalled() {
		msg := f.err.Error()
		if !f.note || !strings.Contains(msg, "rp_filter=1) on default, eth0") || !strings.Contains(msg, "table ip bondtun_bt0") ||
			!strings.Contains(msg, "port 7350") || !strings.Contains(msg, tun.SysctlSrcValidMark+"=1 (now 0)") {
			t.Errorf("server: note=%v %v", f.note, f.err)
		}
	} else if !f.warning || !strings.Contains(f.err.Error(), "nft") {
		t.Errorf("server without nft: warning=%v %v", f.warning, f.err)
	}
	got = checkRPF(client, host(strict))
	if len(got) != 1 || !got[0].note || !strings.Contains(got[0].err.Error(), "nothing to do on a client") {
		t.Errorf("client: %v", got)
	}
	v6 := loadVariant(t, "server.yaml", "addresses: [10.99.0.1]", `addresses: ["2001:db8::1"]`)
	got = checkRPF(v6, host(strict))
	if len(got) != 1 || !got[0].note || !strings.Contains(got[0].err.Error(), "no IPv4 listen address") {
		t.Errorf("IPv6 server: %v", got)
	}
}
