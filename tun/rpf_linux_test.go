package tun_test

import (
	"net/netip"
	"os/exec"
	"strings"
	"testing"

	"github.com/bondtun/bondtun/tun"
)

// TestSystemRPF installs the reverse-path marks with the real nft and /proc/sys in a
// fresh network namespace beside a gateway on the same device: the kernel takes the
// script (fib, the raw ICMP payload match), src_valid_mark goes on, and Down, and
// RPFCleanup after a "crash", leave the ruleset and the sysctl as they were and the
// gateway's table alone.
func TestSystemRPF(t *testing.T) {
	if _, err := exec.LookPath("nft"); err != nil {
		t.Skip("needs nft (scripts/setup.sh installs nftables)")
	}
	enterFreshNetns(t)
	nft, sys := tun.SystemNFT(), tun.SystemSysctls()
	state := func() string {
		out, err := nft("", "list", "ruleset")
		if err != nil {
			t.Fatal(err)
		}
		v, err := sys.Get(tun.SysctlSrcValidMark)
		if err != nil {
			t.Fatal(err)
		}
		return string(out) + tun.SysctlSrcValidMark + "=" + v
	}
	gw := tun.NewGateway(nft, sys, quiet)
	if err := gw.Up(tun.GatewayPlan{Device: "bt0", MTU: 1420, Forward4: true, NAT4: true, Peers: []netip.Prefix{pfx("10.77.0.2/32")}}); err != nil {
		t.Skipf("nftables unusable here: %v", err)
	}
	defer gw.Down()
	before := state()
	if !strings.HasSuffix(before, "=0") {
		t.Fatalf("a fresh namespace has %s", before[strings.LastIndex(before, "\n")+1:])
	}
	for _, plan := range []tun.RPFPlan{
		{Device: "bt0", Mark: 0x1cb5, Port: 7350},
		{Device: "bt0", Mark: 0x1cb5, Port: 7350, Addresses: []netip.Addr{netip.MustParseAddr("192.0.2.1")}},
	} {
		r := tun.NewRPF(nft, sys, quiet)
		if err := r.Up(plan); err != nil {
			t.Fatalf("Up: %v", err)
		}
		got := state()
		for _, want := range []string{
			"table ip bondtun_bt0 {",
			`comment "bondtun reverse-path marks of bt0; saved net.ipv4.conf.all.src_valid_mark=0"`,
			"type filter hook prerouting priority mangle; policy accept;",
			`iifname != "bt0" meta mark 0x00000000 meta l4proto { tcp, udp } th dport 7350`,
			"meta mark set 0x00001cb5",
			"icmp type { destination-unreachable, time-exceeded, parameter-problem } @th,224,16 0x1cb6",
			"table inet bondtun_bt0 {",
			tun.SysctlSrcValidMark + "=1",
		} {
			if !strings.Contains(got, want) {
				t.Errorf("state lacks %q:\n%s", want, got)
			}
		}
		if err := r.Down(); err != nil {
			t.Fatalf("Down: %v", err)
		}
		if got := state(); got != before {
			t.Errorf("after Down:\n%s\nwant\n%s", got, before)
		}
		// A crash: the table stays behind with its saved value; cleanup restores it.
		if err := tun.NewRPF(nft, sys, quiet).Up(plan); err != nil {
			t.Fatalf("Up again: %v", err)
		}
		if err := tun.RPFCleanup(nft, sys, "bt0", quiet); err != nil {
			t.Fatalf("RPFCleanup: %v", err)
		}
		if got := state(); got != before {
			t.Errorf("after RPFCleanup:\n%s\nwant\n%s", got, before)
		}
	}
}
