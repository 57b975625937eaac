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

func gatewayConfig(t *testing.T) *config.Config {
	t.Helper()
	file := writeDemoVariant(t, "server.yaml", "allowed_ips: [10.77.0.2/32]", `allowed_ips: [10.77.0.2/32, "fd77::2/128"]`,
		"# gateway:\n#   out: eth0\n", "gateway:\n  out: [eth0, wwan0]\n  nat: [ipv4]\n")
	cfg, err := config.Load(file)
	if err != nil {
		t.Fatal(err)
	}
	return cfg
}

func TestGatewayPlanFromConfig(t *testing.T) {
	got := gatewayPlan(gatewayConfig(t), "bt3")
	want := tun.GatewayPlan{
		Device: "bt3", MTU: 1440, Out: []string{"eth0", "wwan0"},
		Forward4: true, Forward6: true, NAT4: true,
		Peers: []netip.Prefix{netip.MustParsePrefix("10.77.0.2/32"), netip.MustParsePrefix("fd77::2/128")},
	}
	if !reflect.DeepEqual(got, want) {
		t.Fatalf("plan %+v\nwant %+v", got, want)
	}
	if err := got.Validate(); err != nil {
		t.Fatal(err)
	}
}

// TestCheckGateway: an out interface missing now is a warning naming the field.
func TestCheckGateway(t *testing.T) {
	cfg := gatewayConfig(t)
	nl := tuntest.New()
	nl.AddLink("eth0", 1500)
	got := checkGateway(cfg, fakeCheckHost(nl, nil))
	var warnings []string
	for _, f := range got {
		if f.warning {
			warnings = append(warnings, f.err.Error())
		} else if !strings.Contains(f.err.Error(), "nft") || tun.NFTInstalled() {
			t.Errorf("problem: %v", f.err)
		}
	}
	if len(warnings) != 1 || !strings.Contains(warnings[0], `gateway.out[1]: no interface "wwan0"`) {
		t.Errorf("warnings %q, want one for wwan0", warnings)
	}
	cfg.Gateway = nil
	if got := checkGateway(cfg, fakeCheckHost(nl, nil)); len(got) != 0 {
		t.Errorf("findings without a gateway: %v", got)
	}
}
