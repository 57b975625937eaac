package tun_test

import (
	"net/netip"
	"os/exec"
	"strings"
	"testing"

	"github.com/bondtun/bondtun/tun"
)

// TestSystemGateway installs a gateway with the real nft and /proc/sys in a fresh network
// namespace, checks that the kernel took the table and forwarding, and that Down, and
// GatewayCleanup after a "crash", leave the ruleset and the sysctls as they were.
func TestSystemGateway(t *testing.T) {
	if _, err := exec.LookPath("nft"); err != nil {
		t.Skip("needs nft (scripts/setup.sh installs nftables)")
	}
	enterFreshNetns(t)
	nft, sys := tun.SystemNFT(), tun.SystemSysctls()
	ruleset := func() string {
		out, err := nft("", "list", "ruleset")
		if err != nil {
			t.Fatal(err)
		}
		return string(out)
	}
	sysctls := func() string {
		var s []string
		for _, n := range []string{tun.SysctlForwardIPv4, tun.SysctlForwardIPv6} {
			v, err := sys.Get(n)
			if err != nil {
				t.Fatal(err)
			}
			s = append(s, n+"="+v)
		}
		return strings.Join(s, " ")
	}
	// Someone else's table, which must survive.
	if _, err := nft("table inet other {\n\tchain c {\n\t\ttype filter hook forward priority 0; policy accept;\n\t}\n}\n", "-f", "-"); err != nil {
		t.Skipf("nftables unusable here: %v", err)
	}
	beforeRules, beforeSys := ruleset(), sysctls()
	plan := tun.GatewayPlan{
		Device: "bt0", MTU: 1420, Out: []string{"eth0"},
		Forward4: true, Forward6: true, NAT4: true, NAT6: true,
		Peers: []netip.Prefix{pfx("10.77.0.2/32"), pfx("fd77::2/128")},
	}
	g := tun.NewGateway(nft, sys, quiet)
	if err := g.Up(plan); err != nil {
		t.Fatalf("Up: %v", err)
	}
	got := ruleset()
	for _, want := range []string{
		"table inet bondtun_bt0 {",
		`comment "bondtun gateway of bt0; saved net.ipv4.ip_forward=0 net.ipv6.conf.all.forwarding=0"`,
		`ip saddr @peers4 oifname "eth0" masquerade`,
		`ip6 saddr @peers6 oifname "eth0" masquerade`,
		`iifname "eth0" oifname "bt0" meta nfproto ipv4 ct state != { established, related } drop`,
		"table inet other",
	} {
		if !strings.Contains(got, want) {
			t.Errorf("ruleset lacks %q:\n%s", want, got)
		}
	}
	if s := sysctls(); s != "net.ipv4.ip_forward=1 net.ipv6.conf.all.forwarding=1" {
		t.Errorf("sysctls after Up: %s", s)
	}
	// A reload's new peer sets (Update), in the kernel, with the saved values kept.
	plan.Peers = []netip.Prefix{pfx("10.77.0.3/32"), pfx("fd77::2/128")}
	if err := g.Update(plan); err != nil {
		t.Fatalf("Update: %v", err)
	}
	if got := ruleset(); !strings.Contains(got, "10.77.0.3") || strings.Contains(got, "10.77.0.2") ||
		!strings.Contains(got, "saved net.ipv4.ip_forward=0 net.ipv6.conf.all.forwarding=0") {
		t.Errorf("ruleset after Update:\n%s", got)
	}
	if err := g.Down(); err != nil {
		t.Fatalf("Down: %v", err)
	}
	if r, s := ruleset(), sysctls(); r != beforeRules || s != beforeSys {
		t.Errorf("after Down:\n%s\n%s\nwant\n%s\n%s", r, s, beforeRules, beforeSys)
	}
	// A crash: the table stays behind with its saved values; cleanup restores them.
	if err := tun.NewGateway(nft, sys, quiet).Up(plan); err != nil {
		t.Fatalf("Up again: %v", err)
	}
	if err := tun.GatewayCleanup(nft, sys, "bt0", quiet); err != nil {
		t.Fatalf("GatewayCleanup: %v", err)
	}
	if r, s := ruleset(), sysctls(); r != beforeRules || s != beforeSys {
		t.Errorf("after GatewayCleanup:\n%s\n%s\nwant\n%s\n%s", r, s, beforeRules, beforeSys)
	}
}
